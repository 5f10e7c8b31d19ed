"""The SMTP server (aiosmtpd): the MX/relay listener and the submission listener.

- Relay (``SAHAB_SMTP_PORT``): mail from other servers, for hosted addresses only —
  an unknown mailbox is refused at RCPT with 550, any other domain with 554.
- Submission (``SAHAB_SUBMISSION_PORT``): agents' mail clients; STARTTLS, then AUTH
  PLAIN or LOGIN with the mailbox password, then only the agent's own addresses.

The event loop never touches the database: the routing table is in memory, and the
work of a message (signing, fsyncs, spooling) runs in a thread pool. 250 is sent only
after every copy is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import uvloop
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.conf import settings

from sahab.core import keys
from sahab.core.ratelimit import SlidingWindow
from sahab.mail import authguard, delivery, inbound, routing, services
from sahab.mail.delivery import normalise
from sahab.mail.routing import LiveRouting
from sahab.ops import metrics

log = logging.getLogger("sahab.mail.smtp")


class RateLimiter(SlidingWindow):
    """At most ``limit`` messages per sender in any sliding minute (in this process)."""

    def __init__(self, limit: int):
        super().__init__(60.0)
        self.limit = limit

    def allow(self, sender: str, now: float | None = None) -> bool:  # type: ignore[override]
        return super().allow(sender, self.limit, time.monotonic() if now is None else now)


class Authenticator:
    """AUTH PLAIN/LOGIN against the mailbox passwords, run in the thread pool: argon2 is
    deliberately slow and the failure counts are in the database, so neither may block
    the event loop. Successes are remembered a few minutes (clients log in for every
    message)."""

    def __init__(self, live: LiveRouting):
        self.live = live
        self._pepper = os.urandom(32)
        self._ok: dict[str, float] = {}

    def check(self, client: str, login_bytes: bytes, password: bytes
              ) -> tuple[str | None, authguard.Standing | None]:
        """(login, None) for the right password; (None, the counts) otherwise."""
        from django.db import close_old_connections

        login = login_bytes.decode("utf-8", "replace").strip().lower()
        try:
            before = authguard.standing(client, login)
            if before.locked:  # refused, whatever the password, until the window passes
                return None, before
            digest = self.live.table.credentials.get(login)
            if digest is not None and self._matches(digest, password):
                if before.login_failures:
                    authguard.succeeded(login)
                return login, None
            return None, authguard.failed(client, login)
        finally:
            close_old_connections()

    def _matches(self, digest: str, password: bytes) -> bool:
        token = hmac.new(self._pepper, digest.encode() + b"\0" + password,
                         hashlib.sha256).hexdigest()
        if self._ok.get(token, 0) > time.monotonic():
            return True
        if not services.password_matches(digest, password):
            return False
        self._ok[token] = time.monotonic() + 300
        return True


# RFC 3463 codes for the replies aiosmtpd words itself without one (RFC 2034 asks for
# one on every reply once ENHANCEDSTATUSCODES is advertised).
_ENHANCED = {"221": "2.0.0", "250": "2.0.0", "235": "2.7.0", "421": "4.3.0", "450": "4.2.0",
             "451": "4.3.0", "452": "4.3.1", "454": "4.7.0", "500": "5.5.2", "501": "5.5.4",
             "502": "5.5.1", "503": "5.5.1", "504": "5.5.4", "530": "5.7.0", "535": "5.7.8",
             "538": "5.7.11", "550": "5.0.0", "552": "5.3.4", "553": "5.1.7", "554": "5.0.0",
             "555": "5.5.4"}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")


class SahabSMTP(SMTP):
    """aiosmtpd's server with what sahab adds to the protocol: credentials checked off
    the event loop with growing delays and a closed door after repeated failures, and an
    enhanced status code on every reply."""

    def __init__(self, handler, *, guard: Authenticator | None = None,
                 pool: ThreadPoolExecutor | None = None, **kwargs):
        super().__init__(handler, authenticator=self._never_called if guard else None,
                         **kwargs)
        self.guard = guard
        self.pool = pool
        self.auth_failures = 0
        self._credentials: LoginPassword | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.encrypted:
            # implicit TLS (port 465): aiosmtpd counts only STARTTLS as encryption and
            # would neither offer nor accept AUTH on a connection encrypted from the start
            self._auth_require_tls = False

    @property
    def encrypted(self) -> bool:
        """STARTTLS done, or a connection to the implicit-TLS port."""
        return self._tls_protocol is not None or (
            self.transport is not None and self.transport.get_extra_info("ssl_object") is not None)

    @staticmethod
    def _never_called(*args):  # pragma: no cover (_authenticate is overridden)
        return AuthResult(success=False)

    async def push(self, status):
        if isinstance(status, str) and not _HAS_ENHANCED.match(status):
            code = status[:3]
            if code in _ENHANCED and status[3:4] == " ":
                status = f"{code} {_ENHANCED[code]} {status[4:]}"
        await super().push(status)

    def _authenticate(self, mechanism: str, auth_data) -> AuthResult:
        # aiosmtpd calls this synchronously inside smtp_AUTH: keep the credentials and let
        # smtp_AUTH check them in the thread pool once aiosmtpd is done parsing.
        self._credentials = auth_data if isinstance(auth_data, LoginPassword) else None
        return AuthResult(success=False, handled=True)

    async def smtp_AUTH(self, arg: str) -> None:
        self._credentials = None
        await super().smtp_AUTH(arg)
        credentials, self._credentials = self._credentials, None
        if credentials is None or self.guard is None:
            return
        client = (self.session.peer or ("?",))[0]
        loop = asyncio.get_running_loop()
        login, standing = await loop.run_in_executor(
            self.pool, self.guard.check, client, credentials.login, credentials.password)
        if login is not None:
            self.session.authenticated = True
            self.session.auth_data = login
            self.session.login_data = login
            await self.push("235 2.7.0 Authentication successful")
            return
        self.auth_failures += 1
        await asyncio.sleep(authguard.delay(self.auth_failures))
        if standing.locked or self.auth_failures >= settings.MAIL_AUTH_FAILURES_PER_CONNECTION:
            log.warning("closing %s after failed logins (%s)", client, standing)
            await self.push("421 4.7.0 Too many failed logins; closing the connection")
            self._handler_coroutine.cancel()
            self.transport.close()
            return
        await self.push("535 5.7.8 Authentication credentials invalid")


class Handler:
    """The SMTP hooks shared by both listeners; ``submission`` switches the rules."""

    def __init__(self, live: LiveRouting, pool: ThreadPoolExecutor, *, submission: bool,
                 rate: RateLimiter):
        self.live = live
        self.pool = pool
        self.submission = submission
        self.rate = rate

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """What this server does besides aiosmtpd's defaults (SIZE, 8BITMIME, SMTPUTF8,
        STARTTLS, AUTH): commands may be pipelined (RFC 2920) and every reply carries
        an enhanced status code (RFC 2034)."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.submission:
            login = session.auth_data if session.authenticated else None
            sender = normalise(address) if address else None
            if login is None:
                return "530 5.7.0 Authentication required"
            if sender is None or sender not in self.live.table.senders.get(login, ()):
                return f"553 5.7.1 <{address}>: sender address not owned by {login}"
            if not self.rate.allow(login):
                return "450 4.7.1 Too many messages from this sender; try again in a minute"
            address = sender
        elif address:
            checked = normalise(address)
            if checked is None:
                return "553 5.1.7 Malformed sender address"
            address = checked
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    @staticmethod
    def declared_size(envelope) -> int:
        """The SIZE the client announced with MAIL FROM (RFC 1870), else 0."""
        for option in envelope.mail_options:
            name, _, value = option.partition("=")
            if name.upper() == "SIZE" and value.isdigit():
                return int(value)
        return 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= settings.MAIL_MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        rcpt = routing.POSTMASTER if address.strip().lower() == routing.POSTMASTER \
            else normalise(address)
        if rcpt is None:
            return "553 5.1.3 Malformed recipient address"
        table = self.live.table
        registry = routing.letter_registry(rcpt) if self.submission else ""
        if registry and registry in table.registries:
            if envelope.rcpt_tos:  # a letter is a message of its own
                return "452 4.5.3 A registered letter goes to its registry office alone"
            envelope.rcpt_tos.append(rcpt)
            return "250 2.1.5 OK (registered letter)"
        if any(routing.letter_registry(r) for r in envelope.rcpt_tos):
            return "452 4.5.3 A registered letter goes to its registry office alone"
        if table.is_hosted(rcpt):
            if not table.knows(rcpt):
                return f"550 5.1.1 <{rcpt}>: no such mailbox here"
            size = self.declared_size(envelope)
            if not all(route.has_room_for(size) for route in table.expand(rcpt)):
                return f"452 4.2.2 <{rcpt}>: mailbox full"
        elif not self.submission:
            return "554 5.7.1 Relay access denied"
        if rcpt not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(rcpt)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await self._data(server, session, envelope)
        metrics.count_smtp("submission" if self.submission else "relay", reply)
        return reply

    async def _data(self, server, session, envelope):
        data = envelope.original_content or b""
        if self.submission:
            try:
                delivery.check_submitted_senders(
                    data, self.live.table.senders.get(session.auth_data, set()))
            except delivery.Refused as refused:
                return refused.reply
        tls = server.encrypted
        sub = delivery.Submission(
            mail_from=envelope.mail_from or "", recipients=list(envelope.rcpt_tos), data=data,
            auth_user=session.auth_data if self.submission else "",
            peer=(session.peer or ("?",))[0], helo=session.host_name or "",
            # RFC 3848 protocol names: S for TLS, A for authenticated
            protocol="ESMTP" + ("S" if tls else "") + ("A" if self.submission else ""))
        loop = asyncio.get_running_loop()
        if self.submission and routing.letter_registry(sub.recipients[0]):
            try:
                reference = await loop.run_in_executor(self.pool, _letter, sub)
            except delivery.Refused as refused:
                return refused.reply
            return f"250 2.0.0 OK registered letter {reference} accepted"
        try:
            accepted = await loop.run_in_executor(self.pool, _accept, sub, self.live,
                                                  self.submission)
        except delivery.Refused as refused:
            return refused.reply
        except Exception:
            log.exception("delivery failed; the client will retry")
            return "451 4.3.0 Local error in processing; try again later"
        return f"250 2.0.0 OK queued as {accepted.queue_id}"


def _accept(sub: delivery.Submission, live: LiveRouting, sign: bool) -> delivery.Accepted:
    from django.db import close_old_connections

    try:
        verdict = None
        if not sign:  # from the MX port: who really sent it decides whether and where
            delivery.check_headers(sub.data)
            verdict = inbound.authenticate(sub.data, peer=sub.peer, helo=sub.helo,
                                           mail_from=sub.mail_from, routing=live.table)
        return delivery.accept(sub, live.table, sign=sign, verdict=verdict)
    finally:
        if not all(live.table.is_hosted(r) for r in sub.recipients):
            close_old_connections()  # spooling used this thread's database connection


def _letter(sub: delivery.Submission) -> str:
    from django.db import close_old_connections

    from sahab.mail import letters

    try:
        return letters.send_from_mail_client(login=sub.auth_user, mail_from=sub.mail_from,
                                             registry=routing.letter_registry(
                                                 sub.recipients[0]), data=sub.data).reference
    finally:
        close_old_connections()


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(keys.tls_cert_path(), keys.tls_key_path())
    return context


def smtp_factories(live: LiveRouting, pool: ThreadPoolExecutor):
    """The protocol factories of the relay and the submission listeners."""
    context = tls_context()
    rate = RateLimiter(settings.MAIL_RATE_PER_MINUTE)
    common = dict(data_size_limit=settings.MAIL_MAX_MESSAGE_BYTES, enable_SMTPUTF8=True,
                  decode_data=False, hostname=settings.MAIL_HOSTNAME, ident="sahab ESMTP",
                  tls_context=context, timeout=120)
    relay = Handler(live, pool, submission=False, rate=rate)
    submission = Handler(live, pool, submission=True, rate=rate)
    guard = Authenticator(live)
    return (lambda: SahabSMTP(relay, **common),
            lambda: SahabSMTP(submission, require_starttls=True, auth_required=True,
                              auth_require_tls=True, guard=guard, pool=pool, **common),
            # implicit TLS (RFC 8314): the connection is encrypted before the greeting
            lambda: SahabSMTP(submission, auth_required=True, guard=guard, pool=pool,
                              **(common | {"tls_context": None})))



async def _serve(live: LiveRouting, host: str, smtp_port: int, submission_port: int,
                 smtps_port: int) -> None:
    pool = ThreadPoolExecutor(max_workers=settings.MAIL_DELIVERY_THREADS,
                              thread_name_prefix="mail-delivery")
    relay_factory, submission_factory, smtps_factory = smtp_factories(live, pool)
    loop = asyncio.get_running_loop()
    # Several processes listen on the same ports (SO_REUSEPORT); the kernel spreads the
    # connections: signing and parsing are CPU work that one Python process cannot share.
    servers = [
        await loop.create_server(relay_factory, host, smtp_port, reuse_port=True),
        await loop.create_server(submission_factory, host, submission_port, reuse_port=True),
        await loop.create_server(smtps_factory, host, smtps_port, reuse_port=True,
                                 ssl=tls_context())]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sahab mail: SMTP on {host}:{smtp_port}, submission on {host}:{submission_port} "
          f"and {host}:{smtps_port} (TLS) (process {os.getpid()})", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
    pool.shutdown(wait=True)  # messages being written are finished before we exit
    live.stop()


def serve(host: str = "127.0.0.1", smtp_port: int | None = None,
          submission_port: int | None = None, processes: int | None = None,
          smtps_port: int | None = None) -> None:
    """Run the listeners in ``processes`` processes until SIGTERM/SIGINT."""
    from django.db import connections

    ports = (smtp_port or settings.SMTP_PORT, submission_port or settings.SUBMISSION_PORT,
             smtps_port or settings.SMTPS_PORT)
    keys.ensure_tls_certificate()  # once, before the processes that read it start
    connections.close_all()  # no database connection may cross the fork
    children = []
    for _ in range(max(1, processes or settings.MAIL_PROCESSES) - 1):
        pid = os.fork()
        if pid == 0:
            try:
                _run_one(host, *ports)
            finally:
                os._exit(0)
        children.append(pid)
    try:
        _run_one(host, *ports)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _run_one(host: str, smtp_port: int, submission_port: int, smtps_port: int) -> None:
    live = LiveRouting().start()  # read before the loop runs: the loop never queries
    # uvloop's TLS and transports are compiled: a quarter more messages per second here.
    uvloop.run(_serve(live, host, smtp_port, submission_port, smtps_port))
