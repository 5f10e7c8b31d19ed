"""Dovecot glue: the configuration and the users file sahab writes for its IMAP server.

Dovecot serves the same Maildirs over IMAP (STARTTLS, then PLAIN/LOGIN). It runs as
an unprivileged account — sahab's own, or ``SAHAB_MAIL_SYSTEM_USER`` when sahab runs as
root — and reads users from a passwd-file that sahab rewrites after every change of
mailboxes or passwords (Dovecot notices the new file by itself).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from django.conf import settings

from sahab.core import keys
from sahab.mail import maildir


def binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


def directory() -> Path:
    return settings.SAHAB_HOME / "dovecot"


def passwd_path() -> Path:
    return directory() / "users"


def config_path() -> Path:
    return directory() / "dovecot.conf"


def _account() -> tuple[str, str]:
    owner = maildir.mail_owner()
    uid = owner.uid if owner else os.geteuid()
    entry = pwd.getpwuid(uid)
    import grp

    return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name


def userdb_path() -> Path:
    return directory() / "userdb"


def shared_dict_path() -> Path:
    return directory() / "state" / "shared-mailboxes.db"


def callback_key() -> str:
    """The secret Dovecot presents when it calls sahab (auth policy, letter openings)."""
    path = settings.SAHAB_HOME / "keys" / "dovecot-callback.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _write(path: Path, text: str, owner) -> None:
    """Replace ``path`` atomically, readable by Dovecot's account only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    if owner is not None:
        os.chown(tmp, owner.uid, owner.gid)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# IMAP rights (RFC 4314) of a delegation: read it, or also file, flag and delete in it.
READ_RIGHTS = "lrs"
SEND_RIGHTS = "lrwstipe"


def write_passwd_file() -> Path:
    """Dovecot's view of the mail directory, rewritten after every change:

    - ``users``: who signs in (``address:{ARGON2ID}…``), mailboxes with a password only;
    - ``userdb``: every active mailbox, its home and its quota (Dovecot's quota plugin
      answers GETQUOTAROOT with the same quota sahab enforces);
    - the ACL of each shared and registry mailbox (``Maildir/dovecot-acl``), one line
      per delegated agent, and the list of who shares with whom (``acl_shared_dict``):
      delegated agents find those mailboxes under ``shared/`` in their mail client,
      signed in as themselves.
    """
    from sahab.mail.models import Delegation, Mailbox

    boxes = list(Mailbox.objects.filter(active=True, domain__active=True)
                 .select_related("domain"))
    owner = maildir.mail_owner()
    _write(passwd_path(), "".join(f"{box.address}:{box.password_digest}\n" for box in boxes
                                  if box.password_digest), owner)
    _write(userdb_path(), "".join(
        f"{box.address}:::::{box.home}::userdb_quota_rule=*:bytes={box.quota_bytes}\n"
        for box in boxes), owner)
    rights: dict[int, list[str]] = {}
    shared_with: list[str] = []
    personal = {b.agent_id: b.address for b in boxes if b.agent_id}
    by_id = {b.pk: b for b in boxes}
    for delegation in Delegation.objects.filter(mailbox__active=True).order_by("pk"):
        user, box = personal.get(delegation.agent_id), by_id.get(delegation.mailbox_id)
        if user is None or box is None:
            continue
        granted = SEND_RIGHTS if delegation.can_send else READ_RIGHTS
        rights.setdefault(box.pk, []).append(f"user={user} {granted}\n")
        shared_with.append(f"shared/shared-boxes/user/{user}/{box.address}\n1\n")
    for box in boxes:
        if box.kind == Mailbox.Kind.PERSONAL:
            continue
        acl = box.maildir / "dovecot-acl"
        if box.pk in rights or acl.exists():
            maildir.ensure_maildir(box.home, owner=owner)
            _write(acl, "".join(rights.get(box.pk, [])), owner)
            (box.maildir / "dovecot-acl-list").unlink(missing_ok=True)  # Dovecot's cache
    _write(shared_dict_path(), "".join(shared_with), owner)
    return passwd_path()


def vacation_spool() -> Path:
    """Where the replies Sieve makes (vacation) wait for the worker to send them."""
    return settings.SAHAB_HOME / "mail" / "sieve-outbox"


def write_config(port: int | None = None) -> Path:
    """Write ``dovecot.conf`` (and a private copy of the TLS key Dovecot may read)."""
    user, group = _account()
    home = directory()
    for sub in ("run", "state"):
        (home / sub).mkdir(parents=True, exist_ok=True, mode=0o750)
    keys.ensure_tls_certificate()
    cert, key = home / "tls-cert.pem", home / "tls-key.pem"
    shutil.copyfile(keys.tls_cert_path(), cert)
    key.unlink(missing_ok=True)
    shutil.copyfile(keys.tls_key_path(), key)
    os.chmod(key, 0o600)
    owner = maildir.mail_owner()
    if owner is not None:  # Dovecot's account must be able to pass through SAHAB_HOME
        mode = settings.SAHAB_HOME.stat().st_mode
        os.chmod(settings.SAHAB_HOME, mode | 0o011)  # noqa: S103 (search only, no listing)
    mail = settings.SAHAB_HOME / "mail"
    mail.mkdir(parents=True, exist_ok=True, mode=0o700)
    outbox = vacation_spool()
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    if owner is not None:
        for path in (home, home / "run", home / "state", cert, key, mail, outbox):
            os.chown(path, owner.uid, owner.gid)
    uid = pwd.getpwnam(user).pw_uid
    callback = settings.MAIL_DOVECOT_CALLBACK_URL.rstrip("/")
    secret = callback_key()
    config = CONFIG.format(
        home=home, user=user, group=group, first_uid=min(uid, 500) or 1,
        port=port or settings.IMAP_PORT, imaps_port=settings.IMAPS_PORT,
        managesieve_port=settings.MANAGESIEVE_PORT, passwd=passwd_path(),
        userdb=userdb_path(), shared_dict=shared_dict_path(), cert=cert, key=key,
        policy_url=f"{callback}/auth-policy", secret=secret,
        nonce=hashlib.sha256(f"nonce:{secret}".encode()).hexdigest(),
        events_url=f"{callback}/events?key={secret}",
        # nobody's by default: sahab names the mailbox for each delivery it runs
        sendmail=sendmail_command(_sendmail_script(owner), "-"),
        postmaster=f"postmaster@{settings.MAIL_HOSTNAME}", hostname=settings.MAIL_HOSTNAME)
    config_path().write_text(config)
    os.chmod(config_path(), 0o600)
    if owner is not None:
        os.chown(config_path(), owner.uid, owner.gid)
    write_passwd_file()
    return config_path()


def sendmail_command(script: Path, mailbox: str) -> str:
    """Dovecot's ``sendmail_path``: the outbox script, told which mailbox's filters write
    (an address has no space: Dovecot splits the command on spaces, with no shell)."""
    return f"{script} {vacation_spool()} {mailbox}"


def _sendmail_script(owner) -> Path:
    from sahab.mail.sendmail import SCRIPT

    path = directory() / "sendmail"
    path.write_text(SCRIPT)
    os.chmod(path, 0o700)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)
    return path


def command(port: int | None = None, web_port: int | None = None) -> list[str] | None:
    """The command that runs Dovecot in the foreground, or None when not installed;
    ``web_port``: where this instance's web application listens, when not the default."""
    exe = binary()
    if exe is None:
        return None
    if web_port and "SAHAB_MAIL_DOVECOT_CALLBACK_URL" not in os.environ:
        settings.MAIL_DOVECOT_CALLBACK_URL = f"http://127.0.0.1:{web_port}/mail/dovecot/"
    conf = write_config(port)
    return _as_mail_owner([exe, "-F", "-c", str(conf)])


def _as_mail_owner(argv: list[str]) -> list[str]:
    owner = maildir.mail_owner()
    if owner is not None:  # drop root before Dovecot starts: it never holds privileges
        argv = ["setpriv", f"--reuid={owner.uid}", f"--regid={owner.gid}", "--clear-groups",
                *argv]
    return argv


# --- Sieve: mail for a mailbox with filters goes through Dovecot's delivery agent -----------

@functools.lru_cache(maxsize=1)
def lda_binary() -> str | None:
    """Dovecot's delivery agent, when installed (looked up once per process)."""
    path = Path("/usr/lib/dovecot/dovecot-lda")
    return str(path) if path.exists() and binary() is not None else None


def has_filters(home: Path) -> bool:
    """A Sieve script is active for this mailbox (ManageSieve's, or the webmail's
    vacation reply)."""
    return (home / ".dovecot.sieve").exists() or (home / VACATION_SCRIPT).exists()


class DeliveryFailed(Exception):
    def __init__(self, permanent: bool, detail: str):
        super().__init__(detail)
        self.permanent = permanent


def deliver_with_filters(home: Path, address: str, mail_from: str, data: bytes) -> None:
    """Deliver through ``dovecot-lda``: the user's Sieve filters file it, answer it
    (vacation) or refuse it; Dovecot fsyncs before it exits with 0."""
    if not config_path().exists():
        write_config()
    # what the mailbox's filters send (vacation, notify, redirect) is marked as its own, so
    # that the worker signs only what this mailbox may send as
    sendmail = sendmail_command(directory() / "sendmail",
                                "-" if any(c.isspace() for c in address) else address)
    argv = _as_mail_owner([lda_binary(), "-c", str(config_path()), "-o",
                           f"sendmail_path={sendmail}", "-a", address,
                           "-f", mail_from or "MAILER-DAEMON"])
    env = {"HOME": str(home), "USER": address, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=120,
                          check=False)
    if done.returncode == 0:
        return
    detail = done.stderr.decode(errors="replace").strip()[-300:]
    # sysexits: 75 is a temporary failure; 77 (no permission: e.g. over quota) and
    # the rest are permanent
    raise DeliveryFailed(done.returncode != 75, detail or f"exit {done.returncode}")


def file_of_uid(maildir_path: Path, uid: int) -> str:
    """The Maildir file (without its flags) Dovecot numbered ``uid``, from its
    ``dovecot-uidlist`` ("<uid> [extensions] :<file>" after a header line); "" if none."""
    try:
        lines = (maildir_path / "dovecot-uidlist").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines[1:]:
        number, _, rest = line.partition(" ")
        if number == str(uid) and ":" in rest:
            return rest.split(":", 1)[1].split(":", 1)[0].strip()
    return ""


VACATION_SCRIPT = ".sahab-vacation.sieve"


def vacation_script(home: Path) -> Path:
    return home / VACATION_SCRIPT


CONFIG = """\
# Written by sahab (sahab.mail.dovecot); changes here are overwritten at start.
base_dir = {home}/run
state_dir = {home}/state
log_path = {home}/dovecot.log
instance_name = sahab
protocols = imap sieve
listen = 127.0.0.1
hostname = {hostname}
postmaster_address = {postmaster}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {first_uid}
mail_location = maildir:~/Maildir
mail_fsync = always
mail_plugins = $mail_plugins acl quota
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
disable_plaintext_auth = yes
# Wrong passwords: Dovecot waits before answering, and asks sahab (which counts the
# failures of SMTP AUTH and IMAP together, per address and per login) whether to let a
# login through at all.
auth_failure_delay = 2 secs
auth_policy_server_url = {policy_url}
auth_policy_server_api_header = X-Sahab-Key: {secret}
auth_policy_hash_nonce = {nonce}
auth_policy_request_attributes = login=%{{requested_username}} remote=%{{rip}} protocol=%s
auth_policy_reject_on_fail = yes
auth_policy_server_timeout_msecs = 5000
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID username_format=%Lu {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {userdb}
  default_fields = uid={user} gid={group}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Receipts {{
    auto = subscribe
  }}
}}
# Shared and registry mailboxes delegated to an agent: shared/<address>/… in their
# client; \\Seen stays each reader's own (private index).
namespace shared {{
  type = shared
  separator = /
  prefix = shared/%%u/
  location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%u
  subscriptions = no
  list = children
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_acl imap_quota
}}
protocol lda {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  acl = vfile
  acl_defaults_from_inbox = yes
  acl_shared_dict = file:{shared_dict}
  quota = count:User quota
  quota_vsizes = yes
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_before = ~/.sahab-vacation.sieve
  sieve_vacation_send_from_recipient = yes
}}
sendmail_path = {sendmail}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service managesieve-login {{
  chroot =
  inet_listener sieve {{
    address = 127.0.0.1
    port = {managesieve_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
# A registered letter is opened when someone fetches its body (never for a header-only
# fetch): Dovecot tells sahab who, in which mailbox, which message.
event_exporter sahab {{
  format = json
  format_args = time-rfc3339
  transport = http-post
  transport_args = {events_url}
}}
metric letter_openings {{
  filter = event=mail_opened AND reason_code=imap:fetch_body
  exporter = sahab
  exporter_include = name fields
}}
"""
