import os

import pytest
from django.conf import settings


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return f"sahab database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''}"


@pytest.fixture(autouse=True)
def _english(settings):
    """Assertions read English messages unless a test switches language."""
    settings.LANGUAGE_CODE = "en"
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def sahab_home(settings, tmp_path):
    """A fresh SAHAB_HOME for tests that write keys or demo files."""
    settings.SAHAB_HOME = tmp_path
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    return tmp_path


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class _InProcessWSGI:
    """Django's WSGI handler without closing the test's database connection after each
    request (as Django's test client does, per request)."""

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


@pytest.fixture
def wsgi_http():
    """An httpx client that calls sahab in-process (same test database, no server)."""
    import httpx

    with httpx.Client(transport=httpx.WSGITransport(app=_InProcessWSGI()),
                      base_url="http://testserver") as client:
        yield client
