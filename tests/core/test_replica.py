"""sahab on a real PostgreSQL primary and streaming standby.

The tests start both clusters (initdb, pg_basebackup -R, standby.signal) and sahab's web
server on free ports, then check from the outside that public pages are read from the
standby, that a lagging standby is not read beyond the bound, that a signed-in user reads
their own writes, and that public pages are still served when the primary is stopped.

Which database served a page shows in two ways: a company written on the primary while
the standby's replay is paused (visible on the primary only), and the standby's
``pg_stat_activity``, where each web server's connections carry its name.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from sahab.core.dbrouting import RECENT_WRITE_COOKIE
from tests.conftest import missing, shared_static_root
from tests.databases import Cluster, free_port, postgres_bindir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SAHAB_TEST_DB") != "postgres",
                       reason="the PostgreSQL suite runs the replica tests"),
]

_numbers = itertools.count(int(time.time()) % 1_000_000)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting, after {timeout} s, for {what}")
        time.sleep(0.1)


# --- the databases ----------------------------------------------------------------------

class Replication:
    """A primary, its standby, and the levers the tests pull on them."""

    def __init__(self, primary: Cluster, standby: Cluster) -> None:
        self.primary, self.standby = primary, standby

    def caught_up(self) -> bool:
        position = self.primary.query("SELECT pg_current_wal_lsn()")[0][0]
        return self.standby.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                  (position,))[0][0]

    def streaming(self) -> bool:
        return self.standby.query(
            "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")[0][0] == 1

    def wait_in_sync(self) -> None:
        wait_for(lambda: self.streaming() and self.caught_up(), "the standby to catch up")

    @contextlib.contextmanager
    def replay_paused(self):
        """The standby receives the primary's changes but does not apply them."""
        self.standby.query("SELECT pg_wal_replay_pause()")
        wait_for(lambda: self.standby.query(
            "SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused", "replay to pause")
        try:
            yield
        finally:
            self.standby.query("SELECT pg_wal_replay_resume()")
            self.wait_in_sync()

    @contextlib.contextmanager
    def stopped(self, cluster: Cluster):
        cluster.stop("fast")
        try:
            yield
        finally:
            cluster.start()
            self.wait_in_sync()

    def ran_on_standby(self, server: str, text: str) -> bool:
        """Whether one of ``server``'s connections to the standby last ran a query
        containing ``text``."""
        rows = self.standby.query(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s",
            (f"sahab-{server}",))
        return any(text in query for (query,) in rows)


@pytest.fixture(scope="module")
def replication():
    bindir = postgres_bindir()
    if bindir is None:
        missing("The PostgreSQL server binaries", "postgresql")
    root = Path(tempfile.mkdtemp(prefix="sahab-replica-"))
    primary = Cluster(bindir, root, "primary").initdb().start()
    standby = None
    try:
        primary.query("CREATE DATABASE sahab")
        standby = primary.standby()
        # room in pg_stat_activity for whole queries: the tests look for their words
        standby.settings["track_activity_query_size"] = "32kB"
        standby.start()
        replication = Replication(primary, standby)
        replication.wait_in_sync()
        yield replication
    finally:
        for cluster in (standby, primary):
            if cluster is not None:
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# --- sahab's web servers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def sahab_home(replication):
    """An initialised SAHAB_HOME whose database is the primary (the standby follows)."""
    home = Path(tempfile.mkdtemp(prefix="sahab-replica-home-"))
    env = _environment(home, replication)
    subprocess.run([sys.executable, "-m", "sahab.cli", "init"], env=env, check=True,
                   capture_output=True, timeout=300)
    replication.wait_in_sync()
    yield home
    shutil.rmtree(home, ignore_errors=True)


def _environment(home: Path, replication: Replication, name: str = "init", **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env.pop("DATABASE_URL", None)
    env.pop("DATABASE_REPLICA_URL", None)
    return env | {
        "DJANGO_SETTINGS_MODULE": "sahab.settings", "SAHAB_HOME": str(home),
        "SAHAB_STATIC_ROOT": shared_static_root(),
        "DATABASE_URL": replication.primary.url("sahab"),
        "DATABASE_REPLICA_URL": replication.standby.url("sahab") +
        f"?application_name=sahab-{name}",
        **extra}


@contextlib.contextmanager
def _web_server(home: Path, replication: Replication, name: str, *, max_lag: float,
                check_every: float):
    port = free_port()
    env = _environment(home, replication, name,
                       SAHAB_REPLICA_MAX_LAG_SECONDS=str(max_lag),
                       SAHAB_REPLICA_CHECK_SECONDS=str(check_every))
    log = open(home / f"{name}.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "sahab.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--access-logfile", "-"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the {name} web server stopped:\n"
                               + (home / f"{name}.log").read_text(errors="replace"))
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, f"the {name} web server")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def tolerant(sahab_home, replication):
    """A web server that accepts a standby up to ten minutes behind."""
    with _web_server(sahab_home, replication, "tolerant", max_lag=600, check_every=0.2) as url:
        yield url


@pytest.fixture(scope="module")
def strict(sahab_home, replication):
    """A web server that reads from the standby only while it is less than 1 s behind."""
    with _web_server(sahab_home, replication, "strict", max_lag=1, check_every=0.2) as url:
        yield url


@pytest.fixture(scope="module")
def unchecked(sahab_home, replication):
    """A web server that measures the databases once an hour only: it learns that a
    database is gone from the requests that fail on it."""
    with _web_server(sahab_home, replication, "unchecked", max_lag=600,
                     check_every=3600) as url:
        yield url


# --- people -----------------------------------------------------------------------------

def browser(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Accept-Language": "en"}, timeout=30)


def company_registration(client: httpx.Client) -> tuple[str, httpx.Response]:
    """A company registers itself on the web: its name, and the answer to the form."""
    n = next(_numbers)
    name = f"Replica {uuid.uuid4().hex[:12]}"
    form = client.get("/accounts/register-company/")
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    return name, client.post("/accounts/register-company/", data={
        "csrfmiddlewaretoken": token, "name": name, "matricule_fiscal": f"{n:07d}B/A/M/000",
        "email": f"contact{n}@example.tn", "admin_username": f"replica{n}",
        "admin_first_name": "Amel", "admin_last_name": "Ben Salah",
        "admin_email": f"amel{n}@example.tn", "admin_password": "a long enough passphrase"})


def register_company(client: httpx.Client) -> str:
    """A registered company, whose first user is then signed in on ``client``."""
    name, response = company_registration(client)
    assert response.status_code == 302, response.text
    assert "sessionid" in client.cookies
    return name


def sequencer_tick(home: Path, replication: Replication) -> None:
    """What the worker does every second, on the primary: integrate the pending ledger
    entries (a company's registration writes its entry pending; these servers run no
    worker)."""
    subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "shell", "-c",
                    "from sahab.ledger.services import integrate_pending; integrate_pending()"],
                   env=_environment(home, replication), check=True, capture_output=True,
                   timeout=120)


def api_token(client: httpx.Client) -> str:
    """The signed-in user makes an API token for their scripts."""
    response = client.post("/api/tokens", json={"name": "scripts"},
                           headers={"X-CSRFToken": client.cookies["csrftoken"]})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def shown(client: httpx.Client, name: str) -> tuple[bool, bool]:
    """Whether the public company API and the public company page show ``name``: two
    requests, each of which picks its database on its own."""
    api = client.get("/api/companies", params={"q": name})
    page = client.get("/directory/companies/", params={"q": name})
    assert api.status_code == page.status_code == 200
    return ([c["name"] for c in api.json()["items"]] == [name],
            f"<td>{name}</td>" in page.text)


def listed(client: httpx.Client, name: str) -> bool:
    """Whether the public company list (API and page) shows ``name``, once the choice of
    database is settled (both requests must agree)."""
    in_api, in_page = shown(client, name)
    assert in_api == in_page, "the API and the page disagree"
    return in_api


# --- the stories ------------------------------------------------------------------------

def test_public_pages_are_read_from_the_standby(replication, tolerant):
    visitor = browser(tolerant)
    word = uuid.uuid4().hex
    assert visitor.get("/api/companies", params={"q": word}).json()["items"] == []
    assert replication.ran_on_standby("tolerant", word)
    for path in ("/", "/tenders/", "/ocds/releases", "/ledger/checkpoint",
                 "/directory/companies/"):
        assert visitor.get(path).status_code == 200, path


def test_a_signed_in_user_reads_their_own_writes_while_visitors_read_the_standby(
        replication, tolerant):
    company, visitor = browser(tolerant), browser(tolerant)
    with replication.replay_paused():
        name = register_company(company)
        assert listed(company, name)  # signed in: from the primary
        assert not listed(visitor, name)  # from the standby, which has not applied it yet
        assert replication.ran_on_standby("tolerant", name)

        signed_out = company.post("/accounts/logout/",
                                  headers={"X-CSRFToken": company.cookies["csrftoken"]})
        assert signed_out.status_code == 302
        assert "sessionid" not in company.cookies
        assert RECENT_WRITE_COOKIE in company.cookies
        assert listed(company, name)  # signed out, but wrote a moment ago: still the primary
        assert not listed(visitor, name)
    assert listed(visitor, name)  # the standby caught up


def test_a_standby_lagging_beyond_the_bound_is_not_read(replication, tolerant, strict):
    visitor, tolerant_visitor = browser(strict), browser(tolerant)
    word = uuid.uuid4().hex
    wait_for(lambda: visitor.get("/api/companies", params={"q": word}).status_code == 200
             and replication.ran_on_standby("strict", word),
             "the strict server to read from the standby in sync")
    with replication.replay_paused():
        name = register_company(browser(tolerant))
        # the standby misses the company; once it is more than 1 s behind, the strict
        # server reads from the primary and shows it, the tolerant one still does not
        # the lag crosses the bound at a moment of its own, maybe between the API's
        # request and the page's: wait until both read the primary
        wait_for(lambda: shown(visitor, name) == (True, True),
                 "the strict server to leave the standby")
        assert listed(visitor, name)
        assert not listed(tolerant_visitor, name)
    # caught up again: the strict server returns to the standby
    word = uuid.uuid4().hex
    wait_for(lambda: visitor.get("/api/companies", params={"q": word}).status_code == 200
             and replication.ran_on_standby("strict", word),
             "the strict server to return to the standby")


def test_a_checkpoint_signed_for_a_visitor_is_the_primary_log_not_the_standby_past(
        replication, tolerant, sahab_home):
    visitor, company = browser(tolerant), browser(tolerant)
    register_company(company)
    sequencer_tick(sahab_home, replication)
    replication.wait_in_sync()
    index = visitor.get("/ledger/entries", params={"type": "directory.company.registered"}
                        ).json()["items"][0]["index"]
    with replication.replay_paused():
        register_company(browser(tolerant))
        sequencer_tick(sahab_home, replication)
        # the primary signs a checkpoint for its newest entry (a signed-in user asked)
        newest = company.get("/ledger/entries", params={"type": "directory.company.registered"}
                             ).json()["items"][0]["index"]
        size = company.get(f"/ledger/entries/{newest}").json()["size"]
        # a visitor asks for an entry that the standby has but no checkpoint there covers:
        # the checkpoint comes from the primary, not from the standby's older tree
        entry = visitor.get(f"/ledger/entries/{index}")
        assert entry.status_code == 200
        assert entry.json()["size"] == size
    sizes = [size for (size,) in replication.primary.query(
        "SELECT size FROM ledger_checkpoint ORDER BY id", dbname="sahab")]
    assert sizes == sorted(sizes), "a checkpoint older than the latest was signed after it"


def test_public_pages_are_served_while_the_primary_is_stopped(replication, tolerant, strict,
                                                              sahab_home):
    company, visitor = browser(tolerant), browser(tolerant)
    name = register_company(company)
    token = api_token(company)
    sequencer_tick(sahab_home, replication)
    replication.wait_in_sync()
    # the ledger entry of the registration, with its proof (a checkpoint signed for it)
    index = visitor.get("/ledger/entries", params={"type": "directory.company.registered"}
                        ).json()["items"][0]["index"]
    proof = visitor.get(f"/ledger/entries/{index}").json()
    replication.wait_in_sync()

    with replication.stopped(replication.primary):
        for url in (tolerant, strict):  # lag is not measurable now: both read the standby
            anybody = browser(url)
            assert listed(anybody, name)
            assert anybody.get(f"/ledger/entries/{index}").json() == proof
            assert int(anybody.get("/ledger/checkpoint").text.splitlines()[1]) > index
            bulk = anybody.get("/ocds/releases.json.gz")  # streamed after the view returns
            assert bulk.status_code == 200  # a .gz file, saved as it is sent
            assert "releases" in json.loads(gzip.decompress(bulk.content))
            for path in ("/", "/tenders/", "/ocds/releases", "/ocds/records", "/directory/",
                         "/ledger/", "/api/procurement/tenders", "/cloud/"):
                assert anybody.get(path).status_code == 200, path
            health = anybody.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "degraded", "primary": "unavailable",
                                     "replica": "ok"}

        # what needs the primary is refused clearly, and nothing is half-written
        page = company.get("/accounts/")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "30"
        assert "Temporarily unavailable" in page.text
        api = company.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503
        assert api.headers["Content-Type"] == "application/problem+json"
        assert "Public pages are still served" in api.json()["detail"]
        refused, response = company_registration(browser(tolerant))
        assert response.status_code == 503

    assert company.get("/accounts/").status_code == 200  # the primary is back
    assert listed(browser(strict), name)
    assert not listed(browser(strict), refused)


def test_public_pages_are_served_while_the_standby_is_stopped(replication, tolerant, unchecked):
    assert browser(unchecked).get("/").status_code == 200  # it measured the databases once
    with replication.stopped(replication.standby):
        # one server notices at its next check, the other when a request fails on the
        # standby: that request is read again from the primary
        name = register_company(browser(tolerant))
        for url in (tolerant, unchecked):
            visitor = browser(url)
            assert listed(visitor, name)
            assert visitor.get("/").status_code == 200
            assert visitor.get("/healthz").json() == {"status": "ok"}
