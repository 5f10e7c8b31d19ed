import os

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# The tests share two cores with the other database's suite: generating inputs may be slow
# for reasons that say nothing about the code, and a timing health check would then fail
# a correct property. Properties still run every example; only the timing checks go.
hypothesis_settings.register_profile("shared-machine", deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("shared-machine")


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return f"sahab database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''}"


@pytest.fixture(autouse=True, scope="session")
def _one_set_of_dkim_keys():
    """RSA key generation is slow (tens of ms) and proves nothing here: every test domain,
    the demo's and the factories' as well as the mail tests', shares one set of keys (each
    domain still seals its own copy)."""
    from sahab.mail import dkim

    keys = dkim.generate_keys()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dkim, "generate_keys", lambda: keys)
        yield


@pytest.fixture(autouse=True)
def _english(settings):
    """Assertions read English messages unless a test switches language."""
    settings.LANGUAGE_CODE = "en"
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _ledger_signer_record(settings, tmp_path):
    """Each test's ledger signer keeps its record of what it signed apart, as each test's
    database starts empty."""
    settings.LEDGER_SIGNER_DIR = str(tmp_path / "ledger-signer")


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """Run a call and what waits for its commit (notices go only for committed changes)."""
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)
    return run


@pytest.fixture(autouse=True)
def _fresh_routing_cache():
    """Each test's database starts again from routing version 0: drop the cached table (mail
    to agents of one test would otherwise go to the mailboxes of the one before)."""
    from sahab.mail import webmail

    webmail._cached = None
    yield
    webmail._cached = None


@pytest.fixture
def report_at_once(monkeypatch):
    """The ledger's status reports a row left without its index once its entry is older
    than the merge delay; here at once."""
    from sahab.ledger import services as ledger

    monkeypatch.setattr(ledger, "MAX_MERGE_DELAY_SECONDS", 0)


@pytest.fixture(autouse=True, scope="session")
def _ledger_key():
    """The test run's SAHAB_HOME holds a ledger key, as every installation does (``sahab
    init``): the log's entries carry a MAC derived from it."""
    from sahab.core import keys

    keys.ensure_ledger_key()


@pytest.fixture
def sahab_home(settings, tmp_path):
    """A fresh SAHAB_HOME for tests that write keys or demo files; it has the ledger key
    that writing to the log needs, as an installation has."""
    from sahab.core import keys

    settings.SAHAB_HOME = tmp_path
    keys.ensure_ledger_key()
    return tmp_path


def shared_static_root() -> str:
    """The run's collected static files (SAHAB_STATIC_ROOT) for the servers the tests start:
    compressed once per run rather than by each installation's ``sahab init``."""
    return str(settings.STATIC_ROOT)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def wsgi_http():
    """An httpx client that calls sahab in-process (same test database, no server)."""
    import httpx

    from sahab.core.inprocess import InProcessWSGI

    with httpx.Client(transport=httpx.WSGITransport(app=InProcessWSGI()),
                      base_url="http://testserver") as client:
        yield client


def require_all() -> bool:
    """Whether a missing tool (Dovecot, Chromium, PostgreSQL, Go, strace) fails the tests
    instead of skipping them: with ``CI=true`` and under ``make test`` (which sets
    ``SAHAB_TESTS_REQUIRE_ALL=1``), since both install them all."""
    return in_ci() or os.environ.get("SAHAB_TESTS_REQUIRE_ALL", "") == "1"


def missing(what: str, packages: str) -> None:
    """A tool the tests need is not installed: a failure where everything must run (see
    ``require_all``), else a skip that says what to install."""
    if require_all():
        pytest.fail(f"{what} is missing: make test installs {packages}", pytrace=False)
    pytest.skip(f"{what} is not installed (make test installs {packages})")
