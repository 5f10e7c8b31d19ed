"""Request gates that protect every pillar at once."""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from django.http import HttpResponse, HttpResponseBadRequest

from sahab.core.problems import is_machine_path, problem_response


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _body_has_nul(request) -> bool:
    content_type = request.content_type or ""
    if content_type == "application/x-www-form-urlencoded":
        return b"\x00" in unquote_to_bytes(request.body)
    if content_type.endswith("json") and b"\\u0000" in request.body:
        try:
            return _has_nul(json.loads(request.body))
        except ValueError:
            return False  # malformed JSON gets its own 400 from the API
    return False


class RequestGateMiddleware:
    """Refuse oversized bodies with a 413, and text containing NUL characters with a 400.

    No text field of the platform may hold one, and PostgreSQL cannot store or even
    compare them: without this gate such input would become a 500 on PostgreSQL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            detail = (f"The request is larger than "
                      f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)} MB.")
            if is_machine_path(request.path):
                return problem_response(413, "Request too large", detail)
            return HttpResponse(detail, status=413)
        if (b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", ""))
                or "\x00" in request.path or _body_has_nul(request)):
            detail = "Text may not contain NUL characters."
            if is_machine_path(request.path):
                return problem_response(400, "Bad request", detail)
            return HttpResponseBadRequest(detail)
        return self.get_response(request)
