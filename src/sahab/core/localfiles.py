"""Files under ``SAHAB_HOME`` are the installation's owner's only (ASVS 14.1, 6.4).

The ``sahab`` command sets the umask to 077, so that everything it creates is 0600/0700;
these helpers also tighten what existed before (an older installation, a database file
made by another tool).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings


def private_dir(*parts: str) -> Path:
    """A folder under SAHAB_HOME, created and kept at 0700."""
    path = Path(settings.SAHAB_HOME, *parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600): one holder at a time on this
    machine, released when the process dies. Never taken inside a database transaction
    by code that then writes to the database (see ``ledger.signing._locked``)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def sqlite_files() -> list[Path]:
    """The SQLite database and its WAL and shared-memory files, when SQLite is used."""
    config = settings.DATABASES["default"]
    if not config["ENGINE"].endswith("sqlite3"):
        return []
    name = Path(str(config["NAME"]))
    return [p for p in (name, Path(f"{name}-wal"), Path(f"{name}-shm")) if p.exists()]


def _public(path: Path) -> bool:
    """Certificates and revocation lists are public; every other key file is secret."""
    name = path.name
    return name.endswith((".pem", ".crl", ".crt")) and "key" not in name and \
        "ed25519" not in name


def tighten() -> list[Path]:
    """Make SAHAB_HOME 0700 and the database, keys and secret key 0600; returns what
    was changed."""
    home = Path(settings.SAHAB_HOME)
    changed = []
    if home.exists() and home.stat().st_mode & 0o077:
        home.chmod(0o700)
        changed.append(home)
    files = [*sqlite_files(), home / "secret_key"]
    keys_dir = home / "keys"
    if keys_dir.is_dir():
        if keys_dir.stat().st_mode & 0o077:
            keys_dir.chmod(0o700)
            changed.append(keys_dir)
        files += [p for p in keys_dir.rglob("*") if p.is_file() and not _public(p)]
    for path in files:
        if path.exists() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
            changed.append(path)
    return changed
