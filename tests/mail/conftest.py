"""Two ministries with mail: finances.test and sante.test, an agent with a mailbox and a
password in each, their registry offices; a real SMTP server on 127.0.0.1 and, where
Dovecot is installed, a real IMAP server over the same Maildirs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sahab.core import keys
from sahab.directory.models import Role
from sahab.directory.selectors import SYSTEM
from sahab.mail import letters, services
from sahab.mail.models import Mailbox
from tests import factories
from tests.conftest import missing
from tests.e2e.conftest import free_port


def client_tls() -> ssl.SSLContext:
    """The servers use the platform's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class MailWorld:
    finances: object
    sante: object
    alice: object  # agent of finances
    bob: object  # agent of sante
    alice_box: Mailbox
    bob_box: Mailbox
    passwords: dict[str, str] = field(default_factory=dict)
    registry_finances: Mailbox | None = None
    registry_sante: Mailbox | None = None
    clerk: object = None  # agent of sante who works in its registry office


def make_world() -> MailWorld:
    keys.ensure_secrets_key()
    finances = factories.administration(code="MF", mail_domain="finances.test",
                                        name_fr="Ministère des Finances")
    sante = factories.administration(code="MS", mail_domain="sante.test",
                                     name_fr="Ministère de la Santé")
    alice = factories.agent(administration=finances, username="alice")
    bob = factories.agent(administration=sante, username="bob")
    clerk = factories.agent(administration=sante, username="clerk")
    admin_ms = factories.agent(administration=sante, username="admin.ms",
                               roles=[Role.ADMINISTRATION_ADMIN])
    alice_box = services.provision_agent_mailbox(alice)
    bob_box = services.provision_agent_mailbox(bob)
    services.provision_agent_mailbox(clerk)
    world = MailWorld(finances, sante, alice, bob, alice_box, bob_box, clerk=clerk)
    for box in (alice_box, bob_box):
        world.passwords[box.address] = services.set_password(actor=SYSTEM, mailbox=box)
    world.registry_finances = services.create_shared_mailbox(
        actor=SYSTEM, administration=finances, local_part="bureau-ordre",
        display_name="Bureau d'ordre central — Finances", registry=True)
    world.registry_sante = services.create_shared_mailbox(
        actor=SYSTEM, administration=sante, local_part="bureau-ordre",
        display_name="Bureau d'ordre central — Santé", registry=True)
    services.delegate(actor=admin_ms.user, mailbox=world.registry_sante, agent=clerk,
                      can_send=False)
    letters.ensure_receipts_key()
    return world


@pytest.fixture
def sahab_home(settings):
    """A fresh SAHAB_HOME outside pytest's private temporary folder, so that Dovecot's
    unprivileged account can reach the Maildirs in it; with the ledger key, as
    ``tests.conftest.sahab_home``."""
    from sahab.core import keys

    home = Path(tempfile.mkdtemp(prefix="sahab-mail-test-"))
    settings.SAHAB_HOME = home
    keys.ensure_ledger_key()
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def world(db, sahab_home) -> MailWorld:
    return make_world()


@pytest.fixture
def committed_world(transactional_db, sahab_home) -> MailWorld:
    """The same, committed: servers in other threads and processes see it."""
    return make_world()


@dataclass
class SmtpServer:
    host: str
    smtp_port: int
    submission_port: int
    live: object
    smtps_port: int = 0


@contextlib.contextmanager
def running_smtp(settings, rate_per_minute: int):
    """Both listeners in a thread of this process, on free ports, with the sender rate
    limit at ``rate_per_minute``; stopped on exit."""
    from sahab.mail import smtp
    from sahab.mail.routing import LiveRouting

    settings.MAIL_RATE_PER_MINUTE = rate_per_minute
    keys.ensure_tls_certificate()
    live = LiveRouting(interval=0.2).start()
    pool = ThreadPoolExecutor(max_workers=4)
    relay_factory, submission_factory, smtps_factory = smtp.smtp_factories(live, pool)
    loop = asyncio.new_event_loop()
    servers = []
    failure: list[BaseException] = []
    ready = threading.Event()

    def run() -> None:
        # Port 0 lets the kernel pick: a port chosen beforehand can be taken by another
        # suite running on the same machine before the listener binds it.
        asyncio.set_event_loop(loop)
        try:
            for factory, ssl in ((relay_factory, None), (submission_factory, None),
                                 (smtps_factory, smtp.tls_context())):
                servers.append(loop.run_until_complete(
                    loop.create_server(factory, "127.0.0.1", 0, ssl=ssl)))
        except BaseException as exc:  # handed to the test below, which fails with it
            failure.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(60), "the SMTP listeners did not start within a minute"
    if failure:
        raise failure[0]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    try:
        yield SmtpServer("127.0.0.1", ports[0], ports[1], live, ports[2])
    finally:
        for server in servers:
            loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        pool.shutdown()
        live.stop()


@pytest.fixture
def smtp_server(committed_world, settings):
    """The SMTP server with the sender rate limit out of the way (tests send many)."""
    with running_smtp(settings, 10_000) as server:
        yield server


RATE_LIMIT = 3


@pytest.fixture
def rate_limited_smtp_server(committed_world, settings):
    """The SMTP server with the sender rate limit on, as in production but lower: at most
    ``RATE_LIMIT`` messages per sender and minute."""
    with running_smtp(settings, RATE_LIMIT) as server:
        yield server


@dataclass
class Dovecot:
    port: int
    imaps_port: int
    managesieve_port: int

    def __int__(self) -> int:
        return self.port


@pytest.fixture
def dovecot(committed_world, settings, live_server):
    """Dovecot on free ports, configured by sahab, calling back the web application it
    asks about logins and tells about letters being read; stopped at the end."""
    from sahab.mail import dovecot as glue

    if glue.binary() is None or not Path("/usr/lib/dovecot/modules/lib90_sieve_plugin.so") \
            .exists():
        missing("Dovecot", "dovecot-imapd, dovecot-sieve and dovecot-managesieved")
    port = free_port()
    settings.IMAPS_PORT, settings.MANAGESIEVE_PORT = free_port(), free_port()
    settings.MAIL_DOVECOT_CALLBACK_URL = f"{live_server.url}/mail/dovecot/"
    argv = glue.command(port)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                log = glue.directory() / "dovecot.log"
                raise RuntimeError("Dovecot did not start: " + output +
                                   (log.read_text() if log.exists() else "")) from None
            time.sleep(0.1)
    yield Dovecot(port, settings.IMAPS_PORT, settings.MANAGESIEVE_PORT)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(glue.directory() / "run", ignore_errors=True)


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


os.environ.setdefault("SAHAB_MAIL_RATE_PER_MINUTE", "10000")


def database_url_of_tests() -> str:
    """The URL of the (committed) test database, for servers run as subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
    return f"postgresql://{auth}{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def smtp_subprocess(home: Path, smtp_port: int, submission_port: int,
                    wrapper: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
                    ) -> subprocess.Popen:
    """``sahab mail smtp`` in its own process group, on the test database (run through
    ``wrapper``, e.g. strace, with ``extra_env`` added to its environment)."""
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env |= {"SAHAB_HOME": str(home), "DATABASE_URL": database_url_of_tests(),
            "DJANGO_SETTINGS_MODULE": "sahab.settings", "SAHAB_MAIL_RATE_PER_MINUTE": "100000",
            "SAHAB_SMTP_PORT": str(smtp_port), "SAHAB_SUBMISSION_PORT": str(submission_port),
            "SAHAB_SMTPS_PORT": str(free_port())} | (extra_env or {})
    log = home / f"smtp-{submission_port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([*wrapper, sys.executable, "-m", "sahab.cli", "mail", "smtp"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", submission_port), 0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sahab mail smtp did not start: " +
                                   log.read_text(errors="replace")) from None
            time.sleep(0.1)


class Zone:
    """DNS answers of the outside world for the tests: name → TXT records, and records of
    other types (MX, CNAME, SRV…) in zone-file syntax."""

    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.other: dict[tuple[str, str], list[str]] = {}

    def add_txt(self, name: str, value: str) -> None:
        self.txt.setdefault(name.rstrip(".").lower(), []).append(value)

    def add(self, name: str, type_: str, value: str) -> None:
        """A record of ``type_`` whose data is ``value`` as a zone file writes it."""
        if type_ == "TXT":
            self.add_txt(name, value)
        else:
            self.other.setdefault((name.rstrip(".").lower(), type_), []).append(value)

    def names(self) -> set[str]:
        return set(self.txt) | {name for name, _ in self.other}


@pytest.fixture
def dns_zone(settings):
    """A real DNS server on 127.0.0.1 (dnslib) answering from a ``Zone``; sahab's resolver
    setting points at it, as an operator's would point at the ministry's resolver."""
    from dnslib import QTYPE, RCODE, RR, TXT
    from dnslib.server import BaseResolver, DNSLogger, DNSServer

    zone = Zone()

    class ZoneResolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            qtype = QTYPE[request.q.qtype]
            if request.q.qtype == QTYPE.TXT and name in zone.txt:
                for value in zone.txt[name]:
                    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, ttl=60, rdata=TXT(chunks)))
            elif (name, qtype) in zone.other:
                for value in zone.other[name, qtype]:
                    reply.add_answer(*RR.fromZone(f"{name}. 60 IN {qtype} {value}"))
            elif not any(n == name or n.endswith("." + name) for n in zone.names()):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply

    port = free_port()
    quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)
    server = DNSServer(ZoneResolver(), address="127.0.0.1", port=port, logger=quiet)
    tcp = DNSServer(ZoneResolver(), address="127.0.0.1", port=port, tcp=True, logger=quiet)
    server.start_thread()
    tcp.start_thread()
    settings.MAIL_DNS = f"127.0.0.1:{port}"
    yield zone
    server.stop()
    tcp.stop()
