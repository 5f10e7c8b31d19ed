"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Paths of the machine interfaces: their errors are problem documents, not HTML pages.
MACHINE_PREFIXES = ("/api/", "/ledger/", "/ocds/", "/osb/", "/exchange/")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


def problem_response(status: int, title: str, detail: str = "", *,
                     errors: dict | list | None = None, headers: dict | None = None,
                     type_: str = "about:blank") -> JsonResponse:
    body: dict = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE,
                            json_dumps_params={"ensure_ascii": False})
    for key, value in (headers or {}).items():
        response[key] = value
    return response
