"""The first middleware: a request id for the logs, timing and counting for the metrics."""

from __future__ import annotations

import logging
import time

from sahab.ops import logs, metrics

log = logging.getLogger("sahab.request")


def route_of(request) -> str:
    """The URL pattern that answered (bounded, unlike paths), or "unmatched"."""
    match = getattr(request, "resolver_match", None)
    return (match.route or match.view_name or "unmatched") if match else "unmatched"


class OperationsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.new_request_id(request.headers.get("X-Request-ID"))
        token = logs.REQUEST_ID.set(request_id)
        request.request_id = request_id
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = route_of(request)
            metrics.HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
            metrics.HTTP_LATENCY.labels(route, request.method).observe(elapsed)
            response["X-Request-ID"] = request_id
            log.info("%s %s %s", request.method, request.path, response.status_code,
                     extra={"route": route, "status": response.status_code,
                            "duration_ms": round(elapsed * 1000, 2)})
            return response
        finally:
            logs.REQUEST_ID.reset(token)
