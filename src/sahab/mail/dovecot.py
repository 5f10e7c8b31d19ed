"""Dovecot glue: the configuration and the users file sahab writes for its IMAP server.

Dovecot serves the same Maildirs over IMAP (STARTTLS, then PLAIN/LOGIN). It runs as
an unprivileged account — sahab's own, or ``SAHAB_MAIL_SYSTEM_USER`` when sahab runs as
root — and reads users from a passwd-file that sahab rewrites after every change of
mailboxes or passwords (Dovecot notices the new file by itself).
"""

from __future__ import annotations

import os
import pwd
import shutil
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


def write_passwd_file() -> Path:
    """One line per active mailbox with a password: ``address:{ARGON2ID}…::::home::``."""
    from sahab.mail.models import Mailbox

    lines = [f"{box.address}:{box.password_digest}::::{box.home}::\n"
             for box in Mailbox.objects.filter(active=True, domain__active=True)
             .exclude(password_digest="").select_related("domain")]
    path = passwd_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = path.with_name(f".users.{os.getpid()}.tmp")
    tmp.write_text("".join(lines))
    owner = maildir.mail_owner()
    if owner is not None:
        os.chown(tmp, owner.uid, owner.gid)
        os.chown(path.parent, owner.uid, owner.gid)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


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
    if owner is not None:
        for path in (home, home / "run", home / "state", cert, key, mail):
            os.chown(path, owner.uid, owner.gid)
    uid = pwd.getpwnam(user).pw_uid
    config = CONFIG.format(
        home=home, user=user, group=group, first_uid=min(uid, 500) or 1,
        port=port or settings.IMAP_PORT, passwd=passwd_path(), cert=cert, key=key)
    config_path().write_text(config)
    write_passwd_file()
    return config_path()


def command(port: int | None = None) -> list[str] | None:
    """The command that runs Dovecot in the foreground, or None when not installed."""
    exe = binary()
    if exe is None:
        return None
    conf = write_config(port)
    argv = [exe, "-F", "-c", str(conf)]
    owner = maildir.mail_owner()
    if owner is not None:  # drop root before Dovecot starts: it never holds privileges
        argv = ["setpriv", f"--reuid={owner.uid}", f"--regid={owner.gid}", "--clear-groups",
                *argv]
    return argv


CONFIG = """\
# Written by sahab (sahab.mail.dovecot); changes here are overwritten at start.
base_dir = {home}/run
state_dir = {home}/state
log_path = {home}/dovecot.log
instance_name = sahab
protocols = imap
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {first_uid}
mail_location = maildir:~/Maildir
mail_fsync = always
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
disable_plaintext_auth = yes
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID username_format=%Lu {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {passwd}
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
  mailbox Receipts {{
    auto = subscribe
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"""
