"""Calling sahab's own HTTP interface in the same process and database transaction.

The demo loader reads the reference broker's catalogue and provisions its databases
before any server runs, and tests call the HTTP interfaces without sockets; both go
through Django's full request handling (middleware, auth, URL routing), only without
a network hop.
"""

from __future__ import annotations


class InProcessWSGI:
    """Django's WSGI handler that keeps the caller's database connection open.

    Django closes connections at the end of each request; inside the caller's
    transaction that would close it under the caller's feet.
    """

    def __init__(self):
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        from django.core import signals
        from django.db import close_old_connections

        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            result = self.handler(environ, start_response)
            body = b"".join(result)
            if hasattr(result, "close"):
                result.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return [body]


def transport():
    """An httpx transport that sends requests to this process's Django application."""
    import httpx

    return httpx.WSGITransport(app=InProcessWSGI())
