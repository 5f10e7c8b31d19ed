"""Request gates that protect every pillar at once."""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed

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


# The methods sahab answers (ASVS 14.5.1): pages are read and forms posted; the machine
# interfaces (API, brokers, the exchange) also put, patch and delete. TRACE, CONNECT and
# the rest get a 405 everywhere.
PAGE_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
MACHINE_METHODS = (*PAGE_METHODS, "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _is_json(content_type: str | None) -> bool:
    content_type = (content_type or "").lower()
    return content_type == "application/json" or content_type.endswith("+json")


class RequestGateMiddleware:
    """Refuse methods sahab does not use with a 405, oversized bodies with a 413, API
    bodies that are not JSON with a 415 (ASVS 13.2.5), and text containing NUL
    characters with a 400.

    No text field of the platform may hold one, and PostgreSQL cannot store or even
    compare them: without this gate such input would become a 500 on PostgreSQL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        allowed = MACHINE_METHODS if is_machine_path(request.path) else PAGE_METHODS
        if request.method not in allowed:
            if is_machine_path(request.path):
                return problem_response(405, "Method not allowed",
                                        f"{request.method} is not a method of this interface.",
                                        headers={"Allow": ", ".join(allowed)})
            return HttpResponseNotAllowed(allowed)
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
        if (request.path.startswith("/api/") and length and request.method in BODY_METHODS
                and not _is_json(request.content_type)):
            return problem_response(415, "Unsupported media type",
                                    "The API reads JSON bodies: send Content-Type: "
                                    "application/json.")
        if (b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", ""))
                or "\x00" in request.path or _body_has_nul(request)):
            detail = "Text may not contain NUL characters."
            if is_machine_path(request.path):
                return problem_response(400, "Bad request", detail)
            return HttpResponseBadRequest(detail)
        return self.get_response(request)
