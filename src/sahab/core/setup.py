"""``sahab init``: bring a ``SAHAB_HOME`` and its database to a working state."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command

from sahab.core import keys, localfiles


def initialise(*, verbose: bool = True) -> Iterator[str]:
    """Create folders, migrate, collect static files, create keys; safe to run again."""
    settings.SAHAB_HOME.mkdir(parents=True, exist_ok=True, mode=0o700)
    call_command("migrate", interactive=False, verbosity=1 if verbose else 0)
    localfiles.tighten()  # the SQLite file holds sessions and sealed secrets: owner only
    collect_static()
    if keys.ensure_ledger_key():
        yield f"created the ledger signing key {keys.ledger_key_path()}"
    if keys.ensure_witness_key():
        yield f"created the witness key {keys.witness_key_path()}"
    if keys.ensure_opening_key():
        yield f"created the bid-opening key {keys.opening_key_path()}"
    if keys.ensure_secrets_key():
        yield f"created the credentials-sealing key {keys.secrets_key_path()}"
    if keys.ensure_osb_password():
        yield f"created the reference broker's password {keys.osb_password_path()}"
    from sahab.exchange import ca

    if ca.ensure_ca():
        yield f"created the exchange certificate authority {ca.ca_cert_path()}"
    if keys.ensure_tls_certificate():
        yield f"created a self-signed TLS certificate {keys.tls_cert_path()}"
    localfiles.tighten()
    if verbose:
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        yield f"sahab is initialised in {settings.SAHAB_HOME} ({engine})"


# Written last by collect_static: the digest of what the folder was collected from.
SOURCES_DIGEST_FILE = ".sources.sha256"


def collect_static() -> bool:
    """Collect (and compress) the static files unless ``STATIC_ROOT`` already holds exactly
    these sources; return whether it collected.

    Compressing every file costs seconds, and an upgrade, a restore and each installation
    sharing ``SAHAB_STATIC_ROOT`` all call ``sahab init``: the digest of the storage and of
    every source file's name and bytes says whether the folder is current. It is written
    after the collection, so an interrupted one is done again from a clean folder.
    """
    root = Path(settings.STATIC_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / SOURCES_DIGEST_FILE
    digest = static_sources_digest()
    # two installations sharing the folder may start together: one collects, one waits
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text().strip() == digest:
            return False
        marker.unlink(missing_ok=True)
        call_command("collectstatic", interactive=False, clear=True, verbosity=0)
        marker.write_text(digest + "\n")
        return True


def static_sources_digest() -> str:
    """SHA-256 over the static storage backend and every file the finders would collect."""
    digest = hashlib.sha256(settings.STORAGES["staticfiles"]["BACKEND"].encode())
    # the patterns collectstatic skips by default: the digest covers what it copies
    ignore_patterns = apps.get_app_config("staticfiles").ignore_patterns
    found: dict[str, Path] = {}
    for finder in get_finders():
        for name, storage in finder.list(ignore_patterns):
            found.setdefault(name, Path(storage.path(name)))  # the first finder wins
    for name in sorted(found):
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(found[name].read_bytes())
    return digest.hexdigest()
