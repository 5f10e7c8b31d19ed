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
import collections
import contextlib
import hashlib
import hmac
import logging
import os
import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import uvloop
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.conf import settings

from sahab.core import keys
from sahab.mail import delivery, services
from sahab.mail.delivery import normalise
from sahab.mail.routing import LiveRouting
from sahab.ops import metrics

log = logging.getLogger("sahab.mail.smtp")


class RateLimiter:
    """At most ``limit`` messages per sender in any sliding minute (in this process)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.sent: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def allow(self, sender: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self.sent[sender]
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True


class Authenticator:
    """AUTH PLAIN/LOGIN against the mailbox passwords, with a short cache of successes
    (argon2 is deliberately slow; clients log in for every message)."""

    def __init__(self, live: LiveRouting):
        self.live = live
        self._pepper = os.urandom(32)
        self._ok: dict[str, float] = {}

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace").strip().lower()
        password = auth_data.password
        digest = self.live.table.credentials.get(login)
        if digest is None:
            return AuthResult(success=False, handled=False)
        token = hmac.new(self._pepper, digest.encode() + b"\0" + password,
                         hashlib.sha256).hexdigest()
        if self._ok.get(token, 0) > time.monotonic():
            return AuthResult(success=True, auth_data=login)
        if not services.password_matches(digest, password):
            return AuthResult(success=False, handled=False)
        self._ok[token] = time.monotonic() + 300
        return AuthResult(success=True, auth_data=login)


class Handler:
    """The SMTP hooks shared by both listeners; ``submission`` switches the rules."""

    def __init__(self, live: LiveRouting, pool: ThreadPoolExecutor, *, submission: bool,
                 rate: RateLimiter):
        self.live = live
        self.pool = pool
        self.submission = submission
        self.rate = rate

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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= settings.MAIL_MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        rcpt = normalise(address)
        if rcpt is None:
            return "553 5.1.3 Malformed recipient address"
        table = self.live.table
        if table.is_hosted(rcpt):
            if not table.knows(rcpt):
                return f"550 5.1.1 <{rcpt}>: no such mailbox here"
            if not all(route.has_room_for(0) for route in table.expand(rcpt)):
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
            headers = delivery.headers_of(data)
            allowed = self.live.table.senders.get(session.auth_data, set())
            if not set(delivery.addresses_in(headers, "From")) <= allowed:
                return "550 5.7.1 The From header names an address you may not send as"
        tls = server._tls_protocol is not None
        sub = delivery.Submission(
            mail_from=envelope.mail_from or "", recipients=list(envelope.rcpt_tos), data=data,
            auth_user=session.auth_data if self.submission else "",
            peer=(session.peer or ("?",))[0], helo=session.host_name or "",
            # RFC 3848 protocol names: S for TLS, A for authenticated
            protocol="ESMTP" + ("S" if tls else "") + ("A" if self.submission else ""))
        loop = asyncio.get_running_loop()
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
        return delivery.accept(sub, live.table, sign=sign)
    finally:
        if not all(live.table.is_hosted(r) for r in sub.recipients):
            close_old_connections()  # spooling used this thread's database connection


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
    authenticator = Authenticator(live)
    return (lambda: SMTP(relay, **common),
            lambda: SMTP(submission, require_starttls=True, auth_required=True,
                         auth_require_tls=True, authenticator=authenticator, **common))


async def _serve(live: LiveRouting, host: str, smtp_port: int, submission_port: int) -> None:
    pool = ThreadPoolExecutor(max_workers=settings.MAIL_DELIVERY_THREADS,
                              thread_name_prefix="mail-delivery")
    relay_factory, submission_factory = smtp_factories(live, pool)
    loop = asyncio.get_running_loop()
    # Several processes listen on the same ports (SO_REUSEPORT); the kernel spreads the
    # connections: signing and parsing are CPU work that one Python process cannot share.
    relay = await loop.create_server(relay_factory, host, smtp_port, reuse_port=True)
    submission = await loop.create_server(submission_factory, host, submission_port,
                                          reuse_port=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sahab mail: SMTP on {host}:{smtp_port}, submission on {host}:{submission_port} "
          f"(process {os.getpid()})", flush=True)
    await stop.wait()
    relay.close()
    submission.close()
    await relay.wait_closed()
    await submission.wait_closed()
    pool.shutdown(wait=True)  # messages being written are finished before we exit
    live.stop()


def serve(host: str = "127.0.0.1", smtp_port: int | None = None,
          submission_port: int | None = None, processes: int | None = None) -> None:
    """Run both listeners in ``processes`` processes until SIGTERM/SIGINT."""
    from django.db import connections

    ports = (smtp_port or settings.SMTP_PORT, submission_port or settings.SUBMISSION_PORT)
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


def _run_one(host: str, smtp_port: int, submission_port: int) -> None:
    live = LiveRouting().start()  # read before the loop runs: the loop never queries
    # uvloop's TLS and transports are compiled: a quarter more messages per second here.
    uvloop.run(_serve(live, host, smtp_port, submission_port))
