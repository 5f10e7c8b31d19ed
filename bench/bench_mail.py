"""Mail: messages per second accepted and delivered to Maildir, sahab against Postfix.

The servers run on this machine in the same run and receive the same load: C client
connections sending N messages of about 2 KB between two hosted domains. sahab takes
them on its submission port (STARTTLS, AUTH, DKIM signing with Ed25519 and RSA, fsync
before 250). Two anchors come from one throwaway Postfix instance (Debian packages, free
ports of 127.0.0.1, delivery by its virtual(8) agent into a Maildir):

- like for like: Postfix's submission service with the same client code path —
  STARTTLS, AUTH PLAIN checked by a throwaway Dovecot (SASL over a socket in Postfix's
  queue directory, the same Argon2id digest and password as sahab's mailbox), the sender
  checked against the login — and DKIM signing with Ed25519 and RSA by OpenDKIM as
  milters on Unix sockets (two OpenDKIM processes: each signs with one algorithm only);
- plain, for reference: Postfix's smtpd over plain SMTP, no TLS, AUTH or DKIM.

A round ends when every message is in its Maildir; counts are checked, so a lost message
fails the benchmark, and after the rounds every delivered message must carry the DKIM
signatures its side promises, and one message of each signing side is verified against
the public keys (given to the verifier, no DNS).
The sides take turns, round by round, and each reports its best of ROUNDS rounds (the
machine is shared and noisy). Goal: at least half of the like-for-like anchor's rate.

    SAHAB_BENCH_MAIL_MESSAGES=4000 SAHAB_BENCH_MAIL_CLIENTS=8 python -m bench mail
"""

from __future__ import annotations

import base64
import contextlib
import grp
import os
import pwd
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
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32
from pathlib import Path

import dkim

from bench.common import free_port, report, setup_django

MESSAGES = int(os.environ.get("SAHAB_BENCH_MAIL_MESSAGES", "2000"))
CLIENTS = int(os.environ.get("SAHAB_BENCH_MAIL_CLIENTS", "8"))
ROUNDS = int(os.environ.get("SAHAB_BENCH_MAIL_ROUNDS", "3"))
POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_cert_file={home}/tls.crt
  -o smtpd_tls_key_file={home}/tls.key
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_sender_login_maps=texthash:{home}/senders
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
  -o smtpd_milters={milters}
  -o milter_default_action=tempfail
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
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
# Only what Postfix's SASL client needs: an auth socket in Postfix's queue directory,
# no IMAP or POP3 listener. The passwd-file holds sahab's own Argon2id digest.
DOVECOT_CONF = """\
base_dir = {home}/dovecot/run
state_dir = {home}/dovecot/state
log_path = {home}/dovecot/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
default_login_user = dovenull
default_internal_user = dovecot
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {home}/dovecot/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {home}/queue/private/auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""
# OpenDKIM signs with one algorithm per process (its SignatureAlgorithm is global), so
# the Ed25519 and RSA signatures sahab makes take two milters in a row. Their sockets are
# Unix sockets, as Debian sets them up: over TCP, Postfix's milter client and Nagle's
# algorithm wait out delayed ACKs, about 100 ms a message. The keys are in the throwaway
# directory under /tmp, which OpenDKIM's safe-key check would refuse.
OPENDKIM_CONF = """\
Mode s
Socket local:{socket}
UMask 000
PidFile {home}/opendkim-{algorithm}.pid
UserID opendkim:opendkim
Syslog no
Domain finances.bench
Selector {algorithm}
KeyFile {home}/dkim/{algorithm}.pem
SignatureAlgorithm {algorithm}-sha256
Canonicalization relaxed/simple
SignHeaders {headers}
OversignHeaders {oversigned}
RequireSafeKeys no
Nameservers 127.0.0.1
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


def _signature_algorithms(path: Path) -> set[str]:
    """The ``a=`` tags of the DKIM-Signature fields of one delivered message."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(path.read_bytes())
    found = set()
    for value in headers.get_all("DKIM-Signature") or []:
        tags = dict(t.strip().split("=", 1) for t in str(value).split(";") if "=" in t)
        found.add(tags.get("a", "").strip())
    return found


@dataclass
class Side:
    """One server under load: where to send, as whom, and where the messages land."""

    name: str
    port: int
    sender: str
    to: str
    login: tuple[str, str] | None
    maildir: Path
    signed_with: frozenset[str] = frozenset()  # DKIM algorithms every message must carry
    dkim_records: dict[bytes, bytes] = field(default_factory=dict)  # name. -> TXT, no DNS
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

    def delivered_files(self) -> list[Path]:
        return [p for d in ("new", "cur") for p in (self.maildir / d).iterdir()]

    def check(self) -> None:
        """After the rounds: every message is there, signed as this side promises."""
        files = self.delivered_files()
        if len(files) != self.delivered:
            raise RuntimeError(f"{self.name}: {len(files)} messages, {self.delivered} sent")
        for path in files:
            missing = self.signed_with - _signature_algorithms(path)
            if missing:
                raise RuntimeError(f"{self.name}: {path.name} has no {sorted(missing)} "
                                   "DKIM signature")
        if self.signed_with:  # the signatures are not only there, they verify
            message = files[0].read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            checker = dkim.DKIM(message)
            for idx in range(len(self.signed_with)):
                if not checker.verify(idx=idx, dnsfunc=lambda name, timeout=5:
                                      self.dkim_records.get(name, b"")):
                    raise RuntimeError(f"{self.name}: DKIM signature {idx} of "
                                       f"{files[0].name} does not verify")


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

    from sahab.mail import routing
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
        records = {f"{name}.".encode(): record.encode()
                   for name, record in routing.load().records.items()}
        yield Side("sahab", submission_port, sender, to, (sender, password), maildir,
                   signed_with=frozenset({"ed25519-sha256", "rsa-sha256"}),
                   dkim_records=records)
    finally:
        server.terminate()
        server.wait(30)


def _dkim_keys(directory: Path) -> dict[bytes, bytes]:
    """An RSA-2048 and an Ed25519 key for OpenDKIM, as sahab's; returns their TXT records."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from sahab.mail.dkim import ed25519_record, rsa_record

    directory.mkdir(mode=0o755)  # the milter sockets are there too
    opendkim = pwd.getpwnam("opendkim")
    records = {}
    for algorithm, key in (("rsa", rsa.generate_private_key(public_exponent=65537,
                                                             key_size=2048)),
                           ("ed25519", ed25519.Ed25519PrivateKey.generate())):
        path = directory / f"{algorithm}.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        os.chown(path, opendkim.pw_uid, opendkim.pw_gid)
        if algorithm == "rsa":
            public = base64.b64encode(key.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
            record = rsa_record(public)
        else:
            public = base64.b64encode(key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
            record = ed25519_record(public)
        records[f"{algorithm}._domainkey.finances.bench.".encode()] = record.encode()
    os.chown(directory, opendkim.pw_uid, opendkim.pw_gid)
    return records


def _daemon(stack: contextlib.ExitStack, argv: list[str]) -> subprocess.Popen:
    """Start a foreground daemon that ``stack`` stops (by its own pid) when it closes."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)

    stack.callback(stop)
    return proc


def _wait_socket(path: Path, proc: subprocess.Popen, name: str,
                 log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            said = log.read_text() if log and log.exists() else ""
            raise RuntimeError(f"{name} did not start: {said[-2000:]}"
                               f"{proc.stderr.read().decode() if proc.poll() is not None else ''}")
        time.sleep(0.1)


def _opendkim(stack: contextlib.ExitStack, home: Path, algorithm: str) -> str:
    """One OpenDKIM milter signing for finances.bench; returns its Postfix milter address."""
    from sahab.mail.dkim import OVERSIGNED_HEADERS, SIGNED_HEADERS

    conf = home / f"opendkim-{algorithm}.conf"
    socket_path = home / "dkim" / f"{algorithm}.sock"
    conf.write_text(OPENDKIM_CONF.format(
        socket=socket_path, home=home, algorithm=algorithm,
        headers=",".join(h.decode() for h in SIGNED_HEADERS),
        oversigned=",".join(h.decode() for h in OVERSIGNED_HEADERS)))
    proc = _daemon(stack, ["opendkim", "-f", "-x", str(conf)])
    _wait_socket(socket_path, proc, "OpenDKIM")
    return f"unix:{socket_path}"


def _dovecot_auth(stack: contextlib.ExitStack, home: Path, login: str, digest: str) -> None:
    """A throwaway Dovecot whose only job is Postfix's SASL: ``login`` with ``digest``."""
    base = home / "dovecot"
    base.mkdir()
    (base / "passwd").write_text(f"{login}:{digest}\n")
    os.chown(base / "passwd", 0, grp.getgrnam("dovecot").gr_gid)
    (base / "passwd").chmod(0o640)
    (base / "dovecot.conf").write_text(DOVECOT_CONF.format(home=home))
    proc = _daemon(stack, ["dovecot", "-F", "-c", str(base / "dovecot.conf")])
    _wait_socket(home / "queue" / "private" / "auth", proc, "Dovecot", base / "dovecot.log")


@contextlib.contextmanager
def _postfix_servers(password: str, digest: str,
                     tls: tuple[Path, Path]) -> Iterator[tuple[Side, Side] | None]:
    """Postfix's two anchors: its submission service (STARTTLS, AUTH through Dovecot,
    OpenDKIM) and its plain smtpd. ``password`` and ``digest`` are those of sahab's
    sender (Argon2id); ``tls`` is sahab's certificate and key (ECDSA P-256)."""
    missing = [p for p in ("postfix", "opendkim", "dovecot") if shutil.which(p) is None]
    if missing or os.geteuid() != 0:
        print(f"  Postfix: not run (needs root and {', '.join(missing) or 'the packages'}); "
              "make bench installs them")
        yield None
        return
    home = Path(tempfile.mkdtemp(prefix="sahab-bench-postfix-"))
    home.chmod(0o755)  # virtual(8) delivers as nobody, Dovecot's auth runs as dovecot
    nobody = pwd.getpwnam("nobody")
    port, submission_port = free_port(), free_port()
    for sub in ("mail", "data", "queue"):
        (home / sub).mkdir()
    os.chown(home / "mail", nobody.pw_uid, nobody.pw_gid)
    for source, name in zip(tls, ("tls.crt", "tls.key"), strict=True):
        shutil.copyfile(source, home / name)
        (home / name).chmod(0o600)
    sender = "sender@finances.bench"
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
relayhost =
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtpd_peername_lookup = no
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
    (home / "vmailbox").write_text("bob@sante.bench sante.bench/bob/\n"
                                   "alice@sante.bench sante.bench/alice/\n")
    (home / "senders").write_text(f"{sender} {sender}\n")
    postfix = ["postfix", "-c", str(home)]
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        records = _dkim_keys(home / "dkim")
        milters = ",".join(_opendkim(stack, home, a) for a in ("ed25519", "rsa"))
        (home / "master.cf").write_text(POSTFIX_MASTER.format(
            port=port, submission_port=submission_port, home=home, milters=milters))
        subprocess.run([*postfix, "set-permissions"], capture_output=True, check=False)
        stack.callback(subprocess.run, [*postfix, "stop"], capture_output=True, check=False)
        started = subprocess.run([*postfix, "start"], capture_output=True, text=True)
        if started.returncode:
            raise RuntimeError(f"Postfix did not start: {started.stderr}")
        _dovecot_auth(stack, home, sender, digest)
        _wait_port(port)
        _wait_port(submission_port)
        mail = home / "mail" / "sante.bench"
        yield (Side("Postfix plain", port, sender, "bob@sante.bench", None, mail / "bob"),
               Side("Postfix submission", submission_port, sender, "alice@sante.bench",
                    (sender, password), mail / "alice",
                    signed_with=frozenset({"ed25519-sha256", "rsa-sha256"}),
                    dkim_records=records))


SAHAB_DID = ("sahab: submission port, STARTTLS + AUTH (Argon2id), sender checked against "
             "the login, DKIM-signed (Ed25519 and RSA), each copy and its directory fsynced "
             "before 250, delivered to a Maildir")
SUBMISSION_DID = ("Postfix: submission port, STARTTLS + AUTH (Dovecot SASL, the same "
                  "Argon2id digest), sender checked against the login, DKIM-signed (Ed25519 "
                  "and RSA) by two OpenDKIM milters, virtual(8) into a Maildir")
PLAIN_DID = ("Postfix: plain SMTP, no TLS, no AUTH, no DKIM, virtual(8) into a Maildir "
             "(a lighter job, for reference)")


def main() -> None:
    setup_django()
    print(f"  {MESSAGES} messages of ~2 KB over {CLIENTS} connections, {ROUNDS} rounds each; "
          "sahab and the Postfix anchors take turns")
    from sahab.core import keys
    from sahab.mail.models import Mailbox

    with contextlib.ExitStack() as stack:
        sahab = stack.enter_context(_sahab_server(MESSAGES))
        digest = Mailbox.objects.get(address=sahab.sender).password_digest
        anchors = stack.enter_context(_postfix_servers(
            sahab.login[1], digest, (keys.tls_cert_path(), keys.tls_key_path())))
        sides = [sahab, *(anchors or ())]
        _alternate(sides, MESSAGES)
        for side in sides:
            side.check()
    if anchors is None:
        print(f"  sahab: {sahab.best[0]:,.1f} msg/s accepted, {sahab.best[1]:,.1f} delivered")
        return
    plain, submission = anchors
    for anchor, did in ((submission, SUBMISSION_DID), (plain, PLAIN_DID)):
        report("accepted (250 received), msg/s", sahab.best[0], "msg/s", anchor.name,
               anchor.best[0], subject_did=SAHAB_DID, anchor_did=did)
        report("accepted and in the Maildir, msg/s", sahab.best[1], "msg/s", anchor.name,
               anchor.best[1], subject_did=SAHAB_DID, anchor_did=did)
    total = MESSAGES * ROUNDS + 50
    print(f"  best of {ROUNDS} rounds; no message lost: {total} of {total} in each Maildir, "
          "every one DKIM-signed where promised (goal: ratio ≥ 0.5 against Postfix "
          "submission)")
