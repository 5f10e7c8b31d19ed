"""Killing the SMTP server while 1,000 messages are being submitted: every message that
got a 250 is complete in its Maildir and none is stored twice; when the clients then
retry what was not acknowledged, only a message that was complete on disk when the
server died (at most one per connection) can appear twice — never one that got a 250."""

from __future__ import annotations

import email.policy
import hashlib
import os
import signal
import smtplib
import threading
from email.message import EmailMessage

import pytest

from sahab.mail import maildir
from tests.mail.conftest import client_tls, free_port, smtp_subprocess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TOTAL = 1000
CLIENTS = 4
errors: list[Exception] = []


def message(sender: str, to: str, n: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, f"Message {n}"
    m["Message-ID"] = f"<fault-{n}@finances.test>"
    body = f"message {n}\n" + ("x" * 70 + "\n") * (n % 7 * 15)
    m.set_content(body + f"sha256 {hashlib.sha256(body.encode()).hexdigest()}\n")
    return m.as_bytes(policy=email.policy.SMTP)


def submit_all(port: int, sender: str, password: str, to: str, numbers: list[int],
               acked: set[int], stop_after: int | None, killer) -> None:
    """Each client sends its share over one connection until the server goes away."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.starttls(context=client_tls())
            client.login(sender, password)
            for n in numbers:
                client.sendmail(sender, [to], message(sender, to, n))
                acked.add(n)
                if stop_after is not None and len(acked) >= stop_after:
                    killer()
    except (smtplib.SMTPException, OSError) as exc:
        # the server was killed under us: what got no 250 is the client's to retry
        errors.append(exc)


def stored_numbers(mailbox) -> list[int]:
    found = []
    for stored in maildir.messages(mailbox.maildir, "INBOX"):
        raw = stored.path.read_bytes()
        assert raw.endswith(b"\n") and b"sha256 " in raw, f"incomplete file {stored.path}"
        body_start = raw.index(b"message ")
        body, _, digest = raw[body_start:].replace(b"\r\n", b"\n").rpartition(b"sha256 ")
        assert hashlib.sha256(body).hexdigest() == digest.strip().decode(), stored.path
        found.append(int(body.split(b"\n", 1)[0].split()[1]))
    return found


def test_kill_during_submission_loses_and_duplicates_nothing(committed_world, sahab_home):
    w = committed_world
    sender, password = w.alice_box.address, w.passwords[w.alice_box.address]
    ports = free_port(), free_port()
    server = smtp_subprocess(sahab_home, *ports)
    acked: set[int] = set()
    killed = threading.Event()

    def kill() -> None:
        if not killed.is_set():
            killed.set()
            os.killpg(server.pid, signal.SIGKILL)

    shares = [list(range(i, TOTAL, CLIENTS)) for i in range(CLIENTS)]
    threads = [threading.Thread(target=submit_all, args=(ports[1], sender, password,
                                                          w.bob_box.address, share, acked,
                                                          TOTAL * 2 // 5, kill))
               for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert killed.is_set(), errors
    server.wait(30)
    assert killed.is_set() and TOTAL * 2 // 5 <= len(acked) < TOTAL

    acked_before_crash = set(acked)
    after_crash = stored_numbers(w.bob_box)
    assert len(after_crash) == len(set(after_crash)), "a message was stored twice"
    assert acked <= set(after_crash), "a message that got 250 is missing"
    # nothing half-written reached new/ or cur/: partial files stay in tmp/
    leftovers = list((w.bob_box.maildir / "tmp").iterdir())
    assert len(leftovers) <= CLIENTS

    # The clients retry what got no 250: each message ends up exactly once.
    server = smtp_subprocess(sahab_home, *ports)
    try:
        missing = [n for n in range(TOTAL) if n not in acked]
        submit_all(ports[1], sender, password, w.bob_box.address, missing, acked, None, None)
    finally:
        server.terminate()
        server.wait(30)
    final = stored_numbers(w.bob_box)
    assert set(final) == set(range(TOTAL))
    twice = {n for n in final if final.count(n) > 1}
    assert len(twice) <= CLIENTS and not twice & acked_before_crash
