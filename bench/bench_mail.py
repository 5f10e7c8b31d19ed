"""Mail: messages per second accepted and delivered to Maildir, sahab against Postfix.

Both servers run on this machine in the same run and receive the same load: C client
connections sending N messages of about 2 KB between two hosted domains. sahab takes
them on its submission port (STARTTLS, AUTH, DKIM signing with Ed25519 and RSA, DKIM
verification, fsync before 250); Postfix (Debian package, its own throwaway instance
on a free port) takes them over plain SMTP and delivers them with its virtual(8) agent
into a Maildir. A round ends when every message is in its Maildir; counts are checked,
so a lost message fails the benchmark; the two servers take turns, round by round, and each
side reports its best of ROUNDS rounds (the machine is shared and noisy). Goal: at least
half of Postfix's rate.

    SAHAB_BENCH_MAIL_MESSAGES=4000 SAHAB_BENCH_MAIL_CLIENTS=8 python -m bench mail
"""

from __future__ import annotations

import contextlib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from bench.common import free_port, report, setup_django

MESSAGES = int(os.environ.get("SAHAB_BENCH_MAIL_MESSAGES", "2000"))
CLIENTS = int(os.environ.get("SAHAB_BENCH_MAIL_CLIENTS", "8"))
ROUNDS = int(os.environ.get("SAHAB_BENCH_MAIL_ROUNDS", "3"))
POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def _wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the server on port {port} stopped") from None
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _message(sender: str, to: str, n: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, f"Note de service n° {n}"
    m["Message-ID"] = f"<bench-{n}-{time.time_ns()}@{sender.split('@')[1]}>"
    m.set_content(("Objet : point d'avancement hebdomadaire du projet.\n" * 36)[:2000])
    return m.as_bytes(policy=SMTP)


def _messages(sender: str, to: str, count: int) -> list[bytes]:
    """Built before the clock starts: the load generator must not be what is measured."""
    return [_message(sender, to, n) for n in range(count)]


def _load(port: int, sender: str, to: str, login: tuple[str, str] | None,
          messages: list[bytes]) -> float:
    """Send the messages over CLIENTS connections; returns the seconds taken."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    failures: list[BaseException] = []
    count = len(messages)
    per_client = [count // CLIENTS + (1 if i < count % CLIENTS else 0) for i in range(CLIENTS)]

    def client(share: int, offset: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                if login:
                    smtp.starttls(context=context)
                    smtp.login(*login)
                for i in range(share):
                    smtp.sendmail(sender, [to], messages[offset + i])
        except BaseException as exc:  # reported below: a benchmark must not hide a loss
            failures.append(exc)

    threads, offset = [], 0
    for share in per_client:
        threads.append(threading.Thread(target=client, args=(share, offset)))
        offset += share
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} client(s) failed: {failures[0]!r}")
    return time.perf_counter() - start


def _wait_delivered(maildir: Path, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sum(len(os.listdir(maildir / d)) for d in ("new", "cur")
                    if (maildir / d).is_dir())
        if found >= expected:
            if found > expected:
                raise RuntimeError(f"{found} messages in {maildir}, {expected} sent")
            return
        time.sleep(0.01)
    raise RuntimeError(f"only some of {expected} messages reached {maildir}")


@dataclass
class Side:
    """One server under load: where to send, as whom, and where the messages land."""

    name: str
    port: int
    sender: str
    to: str
    login: tuple[str, str] | None
    maildir: Path
    delivered: int = 0
    best: tuple[float, float] = (0.0, 0.0)  # (accepted/s, accepted and delivered/s)

    def round(self, count: int) -> None:
        """One round of ``count`` messages; keeps the best round."""
        messages = _messages(self.sender, self.to, count)
        start = time.perf_counter()
        accepted = _load(self.port, self.sender, self.to, self.login, messages)
        self.delivered += count
        _wait_delivered(self.maildir, self.delivered)
        self.best = max(self.best, (count / accepted, count / (time.perf_counter() - start)),
                        key=lambda r: r[1])


def _alternate(sides: list[Side], count: int) -> None:
    """Warm every side up, then ROUNDS rounds each, taking turns (who goes first changes
    every round): a slow moment of the shared machine falls on both sides alike."""
    for side in sides:
        side.round(50)
        side.best = (0.0, 0.0)  # the warm-up round does not count
    for n in range(ROUNDS):
        for side in sides if n % 2 == 0 else reversed(sides):
            side.round(count)


def _sahab_world() -> tuple[str, str, str]:
    from sahab.core import keys
    from sahab.directory import services as directory
    from sahab.directory.models import AdministrationKind
    from sahab.directory.selectors import SYSTEM
    from sahab.mail import services

    keys.ensure_secrets_key()
    keys.ensure_tls_certificate()
    boxes = []
    for code, domain, user in (("MF", "finances.gov.tn", "sender"), ("MS", "sante.gov.tn", "bob")):
        admin = directory.create_administration(
            actor=SYSTEM, code=code, kind=AdministrationKind.MINISTRY, parent=None,
            name_fr=code, name_ar=code, mail_domain=domain)
        agent, _ = directory.create_agent(actor=SYSTEM, administration=admin, username=user,
                                          email=f"{user}@{domain}", first_name=user,
                                          last_name="Bench", password="bench-password-1")
        boxes.append(services.provision_agent_mailbox(agent))
    password = services.set_password(actor=SYSTEM, mailbox=boxes[0])
    return boxes[0].address, boxes[1].address, password


@contextlib.contextmanager
def _sahab_server(count: int) -> Iterator[Side]:
    from django.db import connection

    from sahab.mail.models import Mailbox

    sender, to, password = _sahab_world()
    smtp_port, submission_port = free_port(), free_port()
    env = {**os.environ, "SAHAB_SMTP_PORT": str(smtp_port),
           "SAHAB_SUBMISSION_PORT": str(submission_port), "SAHAB_SMTPS_PORT": str(free_port()),
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
           "SAHAB_MAIL_RATE_PER_MINUTE": str(10 * count), "SAHAB_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "sahab.cli", "mail", "smtp"], env=env,
                              stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(submission_port, server)
        maildir = Mailbox.objects.get(address=to).maildir
        yield Side("sahab", submission_port, sender, to, (sender, password), maildir)
    finally:
        server.terminate()
        server.wait(30)


@contextlib.contextmanager
def _postfix_server() -> Iterator[Side | None]:
    if shutil.which("postfix") is None or os.geteuid() != 0:
        print("  Postfix: not run (needs the postfix package and root); make bench installs it")
        yield None
        return
    import pwd

    home = Path(tempfile.mkdtemp(prefix="sahab-bench-postfix-"))
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    for sub in ("mail", "data", "queue"):
        (home / sub).mkdir()
    os.chown(home / "mail", nobody.pw_uid, nobody.pw_gid)
    (home / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {home}/queue
data_directory = {home}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench
mydestination =
virtual_mailbox_domains = sante.bench
virtual_mailbox_base = {home}/mail
virtual_mailbox_maps = texthash:{home}/vmailbox
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = 1
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = {home}/maillog
maillog_file_prefixes = {home}
smtputf8_enable = no
""")
    (home / "master.cf").write_text(POSTFIX_MASTER.format(port=port))
    (home / "vmailbox").write_text("bob@sante.bench sante.bench/bob/\n")
    postfix = ["postfix", "-c", str(home)]
    subprocess.run([*postfix, "set-permissions"], capture_output=True, check=False)
    subprocess.run([*postfix, "start"], capture_output=True, check=True)
    try:
        _wait_port(port)
        maildir = home / "mail" / "sante.bench" / "bob"
        yield Side("Postfix", port, "sender@finances.bench", "bob@sante.bench", None, maildir)
    finally:
        subprocess.run([*postfix, "stop"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


SAHAB_DID = ("sahab: submission port, STARTTLS + AUTH, DKIM-signed (Ed25519 and RSA), "
             "each copy and its directory fsynced before 250")
POSTFIX_DID = ("Postfix: plain SMTP, no TLS, no AUTH, no DKIM, virtual(8) into a Maildir "
               "(a lighter job: the anchor is conservative)")


def main() -> None:
    setup_django()
    print(f"  {MESSAGES} messages of ~2 KB over {CLIENTS} connections, {ROUNDS} rounds each, "
          f"sahab and Postfix taking turns")
    with _sahab_server(MESSAGES) as sahab, _postfix_server() as postfix:
        _alternate([s for s in (sahab, postfix) if s is not None], MESSAGES)
    if postfix is None:
        print(f"  sahab: {sahab.best[0]:,.1f} msg/s accepted, {sahab.best[1]:,.1f} delivered")
        return
    report("accepted (250 received), msg/s", sahab.best[0], "msg/s", "Postfix",
           postfix.best[0], subject_did=SAHAB_DID, anchor_did=POSTFIX_DID)
    report("accepted and in the Maildir, msg/s", sahab.best[1], "msg/s", "Postfix",
           postfix.best[1], subject_did=SAHAB_DID, anchor_did=POSTFIX_DID)
    total = MESSAGES * ROUNDS + 50
    print(f"  best of {ROUNDS} rounds; no message lost: {total} of {total} in each Maildir "
          f"(goal: ratio ≥ 0.5 with DKIM signing)")
