"""RFC 9457 problem details: the one place where errors become HTTP responses.

A domain error's problem has the ``type`` ``<PUBLIC_URL>/problems/<code>`` and the member
``code`` (see docs/errors.md); the page at that address says what the code means. Problems
that are no domain error (an unknown path, a schema mismatch…) keep ``about:blank``.
"""

from __future__ import annotations

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Paths of the machine interfaces: their errors are problem documents, not HTML pages.
MACHINE_PREFIXES = ("/api/", "/ledger/", "/ocds/", "/osb/", "/exchange/", "/problems/")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


def problem_response(status: int, title: str, detail: str = "", *,
                     errors: dict | list | None = None, headers: dict | None = None,
                     type_: str = "about:blank", code: str = "") -> JsonResponse:
    body: dict = {"type": type_, "title": title, "status": status}
    if code:
        body["code"] = code
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE,
                            json_dumps_params={"ensure_ascii": False})
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def problem_type(code: str) -> str:
    """The ``type`` URI of a domain error's code: a page of this installation about it."""
    from django.conf import settings

    return f"{settings.PUBLIC_URL.rstrip('/')}/problems/{code}"


def domain_problem(exc, *, headers: dict | None = None) -> JsonResponse:
    """The problem document of a :class:`~sahab.core.errors.DomainError`, in the active
    language (the request's)."""
    return problem_response(exc.status, exc.title, exc.detail,
                            errors=exc.field_errors or None, headers=headers,
                            type_=problem_type(exc.code), code=exc.code)
