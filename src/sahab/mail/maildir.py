"""Maildir storage, shared with Dovecot: durable delivery and the webmail's reads.

A delivery is acknowledged only once the message is complete on disk: written to
``tmp/``, fsynced, renamed into ``new/``, and the directory fsynced (the Maildir
protocol plus the fsyncs that make it survive a crash). A marker named after the
delivery key makes a client's retry of the same submission a no-op, so a crash between
the write and the SMTP reply does not produce a duplicate.

When sahab runs as root, files are handed to the unprivileged account Dovecot runs as.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
SUBDIRS = ("tmp", "new", "cur")
# Maildir++ folders are ".Name" directories; these are the special-use ones.
SENT, DRAFTS, TRASH, RECEIPTS, JUNK = "Sent", "Drafts", "Trash", "Receipts", "Junk"


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def mail_owner() -> Owner | None:
    """The account that owns mail files (Dovecot's), or None to keep our own."""
    if os.geteuid() != 0:
        return None
    import pwd

    entry = pwd.getpwnam(settings.MAIL_SYSTEM_USER)
    return Owner(entry.pw_uid, entry.pw_gid)


def _chown(path: str | Path | int, owner: Owner | None) -> None:
    if owner is None:
        return
    if isinstance(path, int):
        os.fchown(path, owner.uid, owner.gid)
    else:
        os.chown(path, owner.uid, owner.gid)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_maildir(home: Path, folder: str = "", owner: Owner | None = None) -> Path:
    """Create (if needed) the Maildir of a mailbox home, or one of its folders."""
    path = home / "Maildir" if not folder else home / "Maildir" / f".{folder}"
    if (path / "new").is_dir():
        return path
    created = []
    for part in (home.parent, home, home / "Maildir", path):
        if not part.is_dir():
            part.mkdir(mode=0o700, parents=True, exist_ok=True)
            created.append(part)
    for sub in SUBDIRS:
        (path / sub).mkdir(mode=0o700, exist_ok=True)
        created.append(path / sub)
    if folder:
        (path / "maildirfolder").touch()
        created.append(path / "maildirfolder")
    for p in created:
        _chown(p, owner)
    _fsync_dir(path)
    _fsync_dir(path.parent)
    return path


def unique_name() -> str:
    now = time.time()
    sec, usec = int(now), int((now - int(now)) * 1_000_000)
    return f"{sec}.M{usec}P{os.getpid()}Q{next(_counter)}.{_HOST}"


def deliver(home: Path, data: bytes, *, key: str | None = None, folder: str = "",
            flags: str = "", owner: Owner | None = None) -> str | None:
    """Store ``data`` durably in the Maildir under ``home``; returns the file name.

    With ``key``, a second delivery of the same key is skipped (returns None).
    ``flags`` ("S" for seen) puts the message straight into ``cur/``.
    """
    path = ensure_maildir(home, folder, owner)
    marker = home / "delivered" / key if key else None
    if marker is not None and marker.exists():
        earlier = _finish_earlier_delivery(path, marker)
        if earlier is not _RESTART:
            return earlier
    name = unique_name() + f",S={len(data)}"
    tmp = path / "tmp" / name
    write_durably(tmp, data, owner)
    final = path / ("cur" if flags else "new") / (name + (f":2,{flags}" if flags else ""))
    # The marker names the file before it leaves tmp/: a retry after a crash at any point
    # finds either the complete file still in tmp/ (and moves it) or the delivery done.
    if marker is not None and not _mark(marker, final.name, owner):
        tmp.unlink(missing_ok=True)
        return None
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final.name


_RESTART = object()


def _finish_earlier_delivery(path: Path, marker: Path):
    """Complete a delivery that a crash interrupted between its marker and its rename;
    ``_RESTART`` when the crash cut the marker itself short (nothing was delivered)."""
    final_name = marker.read_text().strip()
    if not final_name or "/" in final_name:
        marker.unlink(missing_ok=True)
        return _RESTART
    tmp = path / "tmp" / final_name.split(":", 1)[0]
    if not tmp.exists():
        return None  # delivered (and maybe already read or deleted): not a second time
    final = path / ("cur" if ":" in final_name else "new") / final_name
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final.name


def write_durably(path: Path, data: bytes, owner: Owner | None = None) -> None:
    """Create ``path`` with ``data`` and fsync it; nothing is left behind on failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        _chown(fd, owner)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _mark(marker: Path, final_name: str, owner: Owner | None) -> bool:
    """Create the delivery marker; False when another delivery of the key holds it."""
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        marker.parent.mkdir(mode=0o700, exist_ok=True)
        _chown(marker.parent, owner)
        return _mark(marker, final_name, owner)
    except FileExistsError:
        return False
    try:
        os.write(fd, final_name.encode())
    finally:
        os.close(fd)
    return True


def prune_markers(root: Path, older_than_seconds: float) -> int:
    """Forget delivery keys older than the retry window of any sane client."""
    limit = time.time() - older_than_seconds
    removed = 0
    for marker_dir in root.glob("*/*/delivered"):
        for entry in os.scandir(marker_dir):
            if entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
    return removed


def size_of(maildir: Path) -> int:
    """Bytes used by a Maildir and its folders (from the S= size in names when present)."""
    total = 0
    for dirpath, _dirs, files in os.walk(maildir):
        if not dirpath.endswith(("/new", "/cur")):
            continue
        for name in files:
            size = _size_from_name(name)
            total += size if size is not None else os.path.getsize(os.path.join(dirpath, name))
    return total


def _size_from_name(name: str) -> int | None:
    for part in name.split(":", 1)[0].split(","):
        if part.startswith("S=") and part[2:].isdigit():
            return int(part[2:])
    return None


# --- reading (webmail) ------------------------------------------------------------------

@dataclass(frozen=True)
class StoredMessage:
    """A message file in a folder: its stable key (name without flags) and flags."""

    key: str
    path: Path
    flags: str
    delivered_at: float

    @property
    def seen(self) -> bool:
        return "S" in self.flags


def valid_folder(folder: str) -> bool:
    return folder in ("", "INBOX") or (
        0 < len(folder) <= 200 and "/" not in folder and not folder.startswith(".")
        and folder.isprintable())


def folder_path(maildir: Path, folder: str) -> Path:
    if not valid_folder(folder):
        raise ValueError("invalid folder name")
    return maildir if folder in ("", "INBOX") else maildir / f".{folder}"


def folders(maildir: Path) -> list[str]:
    """INBOX first, then the special folders, then the others by name."""
    names = []
    if maildir.is_dir():
        names = sorted(p.name[1:] for p in maildir.iterdir()
                       if p.name.startswith(".") and (p / "cur").is_dir())
    special = [f for f in (SENT, DRAFTS, RECEIPTS, JUNK, TRASH) if f in names]
    return ["INBOX", *special, *(n for n in names if n not in special)]


_DELIVERY_NAME = re.compile(r"(\d+)\.(?:M(\d{1,6})(?!\d))?")


def delivery_time(key: str) -> float | None:
    """When a message was delivered, read from its Maildir name ``<sec>.M<usec>P…``.

    The microseconds are not zero-padded in the convention (ours and Dovecot's), so two
    names of the same second do not sort as text; this gives a number that does. None
    for a name that does not start with the seconds."""
    match = _DELIVERY_NAME.match(key)
    if match is None:
        return None
    seconds, micros = match.groups()
    return int(seconds) + int(micros or 0) / 1_000_000


def messages(maildir: Path, folder: str) -> list[StoredMessage]:
    """Every message of a folder, newest delivery first (no file is opened)."""
    base = folder_path(maildir, folder)
    found = []
    for sub in ("new", "cur"):
        directory = base / sub
        if not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            if entry.name.startswith("."):
                continue
            key, _, info = entry.name.partition(":")
            flags = info[2:] if info.startswith("2,") else ""
            delivered = delivery_time(key)
            if delivered is None:
                delivered = entry.stat().st_mtime
            found.append(StoredMessage(key, Path(entry.path), flags, delivered))
    found.sort(key=lambda m: (m.delivered_at, m.key), reverse=True)
    return found


def find(maildir: Path, folder: str, key: str) -> StoredMessage | None:
    if "/" in key or key.startswith("."):
        return None
    for message in messages(maildir, folder):
        if message.key == key:
            return message
    return None


def set_flag(message: StoredMessage, flag: str, on: bool = True) -> StoredMessage:
    """Add or remove a flag the way Dovecot does: by renaming into ``cur/``."""
    flags = set(message.flags)
    flags = flags | {flag} if on else flags - {flag}
    new_flags = "".join(sorted(flags))
    target = message.path.parent.parent / "cur" / f"{message.key}:2,{new_flags}"
    if target != message.path:
        try:
            os.rename(message.path, target)
        except FileNotFoundError:  # moved meanwhile by the IMAP server: keep what it did
            return message
    return StoredMessage(message.key, target, new_flags, message.delivered_at)


def move(message: StoredMessage, maildir: Path, folder: str, owner: Owner | None) -> None:
    """Move a message to another folder of the same Maildir (e.g. to the bin)."""
    home = maildir.parent
    target_dir = ensure_maildir(home, "" if folder == "INBOX" else folder, owner) / "cur"
    os.rename(message.path, target_dir / f"{message.key}:2,{message.flags}")
