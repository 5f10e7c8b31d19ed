"""The OCDS bulk files (``/ocds/releases.json.gz``, ``/ocds/records.json.gz``), written by
the worker and served as files.

Streamed from the database for each download, the whole data set held a connection and
a core for minutes at a country's size, and abandoned downloads kept compiling records
in the server's threads: the next visitor's first bytes waited seconds. So the worker
writes each package once (``publish``, every ``OCDS_BULK_SECONDS`` when releases were
published since), and the view sends the file.

Each file is exactly "every release up to ledger index N" (``up_to``), so anyone can
rebuild it from the paged API; its SHA-256 is recorded on the ledger
(``procurement.ocds.bulk_published``) in the transaction that makes it the current file,
and the response carries the same digest (``Repr-Digest``): a file altered on disk
afterwards no longer matches what the ledger says was published. The worker also hashes
the current file at each turn against that ledger entry (not the file's row, which a
database writer could edit along with the file); one that no longer matches is recorded
on the ledger (``procurement.ocds.bulk_altered``) and written again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import stat
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction

from sahab.core.localfiles import exclusive_lock, private_dir
from sahab.procurement import ocds
from sahab.procurement.events import ProcurementEvent
from sahab.procurement.models import OcdsBulkFile

log = logging.getLogger(__name__)

KINDS = ("releases", "records")


def bulk_folder() -> Path:
    """Where the files are: ``OCDS_BULK_DIR``, or ``SAHAB_HOME/ocds``. With several
    application servers it is shared storage that every one of them reads."""
    return Path(settings.OCDS_BULK_DIR or Path(settings.SAHAB_HOME, "ocds"))


def _folder_to_write() -> Path:
    """The folder, created (``SAHAB_HOME/ocds`` at 0700, as every folder there)."""
    if settings.OCDS_BULK_DIR:
        path = bulk_folder()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return private_dir("ocds")


# The only names ``_write`` gives a file: a row naming anything else (an absolute path, a
# key under SAHAB_HOME, /dev/zero) was edited in the database and is never opened.
FILE_NAME = re.compile(r"sahab-(releases|records)-\d+-[0-9a-f]{16}\.json\.gz")


def file_of(built: OcdsBulkFile) -> Path | None:
    """The row's file in the folder when its name is one the worker writes and it is a
    regular file (not a link, a device or a pipe); None otherwise."""
    match = FILE_NAME.fullmatch(built.filename or "")
    if match is None or match.group(1) != built.kind:
        return None
    path = bulk_folder() / built.filename
    try:
        return path if stat.S_ISREG(os.lstat(path).st_mode) else None
    except OSError:
        return None


def public_uri(kind: str) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}/ocds/{kind}.json.gz"


def latest_release_index() -> int:
    """The ledger index of the last published release; -1 when none is."""
    latest = ocds.last_release_index()
    return -1 if latest is None else latest


def gzipped_package(kind: str, items: Iterable[dict], uri: str) -> Iterator[bytes]:
    """The package of ``items`` as a gzip file, compressed as it is written: constant
    memory."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    for chunk in ocds.stream_package(kind, items, uri):
        data = z.compress(chunk)
        if data:
            yield data
    yield z.flush()


def _write(kind: str, up_to: int, progress: Callable[[int], None] | None
           ) -> tuple[Path, str, int, int]:
    """Write the package to a new file beside the current one; returns (path, sha256 hex,
    bytes, items). The file is complete and on disk before it is named."""
    folder = _folder_to_write()
    digest, size, count = hashlib.sha256(), 0, 0

    def items():
        nonlocal count
        for item in ocds.package_items(kind, up_to):
            count += 1
            if progress:
                progress(1)
            yield item

    partial = folder / f".sahab-{kind}-{os.getpid()}-{time.monotonic_ns()}.partial"
    try:
        with open(partial, "wb") as f:
            for data in gzipped_package(kind, items(), public_uri(kind)):
                f.write(data)
                digest.update(data)
                size += len(data)
            f.flush()
            os.fsync(f.fileno())
        sha = digest.hexdigest()
        final = folder / f"sahab-{kind}-{up_to + 1}-{sha[:16]}.json.gz"
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return final, sha, size, count


def _remove_older(kind: str, keep: Path) -> None:
    """Files of ``kind`` other than the current one: a download in progress keeps its open
    file (POSIX), so they can go at once."""
    for old in bulk_folder().glob(f"sahab-{kind}-*.json.gz"):
        if old != keep:
            old.unlink(missing_ok=True)


def _one_build_at_a_time():
    """Builds of the files queue behind each other (the worker's turn and the command run
    beside it): each removes the files older than its own, so two at once could remove
    each other's new file. A file lock in the folder, taken before any database
    transaction (the signer's lock order)."""
    return exclusive_lock(_folder_to_write() / ".sahab-build.lock")


def build(kind: str, *, progress: Callable[[int], None] | None = None) -> OcdsBulkFile:
    """Write ``kind``'s package of every release published so far, make it the current
    file and record its digest on the ledger; returns the current file unchanged when no
    release was published since it was written (by a build that ran meanwhile, too)."""
    if kind not in KINDS:
        raise ValueError(f"no OCDS bulk file {kind!r}")
    with _one_build_at_a_time():
        return _build(kind, progress)


def _build(kind: str, progress: Callable[[int], None] | None) -> OcdsBulkFile:
    up_to = latest_release_index()
    current = OcdsBulkFile.objects.filter(kind=kind).first()
    published = _last_publication(kind)
    altered = None
    on_disk = file_of(current) if current is not None else None
    if on_disk is not None:
        altered = _altered(current, on_disk, published)
        # the ledger's extent, not the row's: a row kept "up to date" by hand stops nothing
        if altered is None and published[1].get("releases_up_to") == up_to:
            return current
    elif current is not None:
        log.warning("OCDS bulk file %r is not a file the worker wrote in %s: writing it again",
                    current.filename, bulk_folder())
    started = time.perf_counter()
    path, sha, size, count = _write(kind, up_to, progress)
    seconds = time.perf_counter() - started
    from sahab.ledger import services as ledger

    with transaction.atomic():
        if altered is not None:
            ledger.record(ProcurementEvent.OCDS_BULK_ALTERED, f"ocds:{kind}", None, altered)
        built = OcdsBulkFile(kind=kind, filename=path.name, sha256=sha, size=size,
                             items=count, up_to=up_to, built_at=dt.datetime.now(dt.UTC),
                             seconds=seconds)
        built.ledger_index = ledger.record(
            ProcurementEvent.OCDS_BULK_PUBLISHED, f"ocds:{kind}", None,
            {"file": path.name, "sha256": sha, "bytes": size, "items": count,
             "releases_up_to": up_to}).index
        built.save()
    _remove_older(kind, path)
    log.info("OCDS bulk %s: %d items, %d bytes in %.1f s", kind, count, size, seconds)
    return built


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _altered(current: OcdsBulkFile, path: Path, published: tuple[int | None, dict]
             ) -> dict | None:
    """What the ledger last recorded for ``current``'s kind and what the file hashes to
    now, when they differ (None when the file is what was last published). Compared with
    the ledger's last publication of the kind, not the row: whoever edits the file in
    place can edit the row as well, or point it at an older entry."""
    index, recorded = published
    found = _file_sha256(path)
    if found == recorded.get("sha256") and current.filename == recorded.get("file"):
        return None
    log.error("OCDS bulk file %s hashes to %s, not to the %s the ledger recorded at %s: "
              "writing it again", current.filename, found, recorded.get("sha256"), index)
    return {"file": current.filename, "found_sha256": found, "recorded_index": index,
            "recorded_sha256": recorded.get("sha256", "")}


def _last_publication(kind: str) -> tuple[int | None, dict]:
    """The index and data of the ledger's last ``bulk_published`` entry about ``kind``,
    proven in the tree; (None, {}) before the first, or when it does not prove."""
    from sahab.core.errors import DomainError
    from sahab.ledger import services as ledger

    index = ledger.entries_about(f"ocds:{kind}").filter(
        type=ProcurementEvent.OCDS_BULK_PUBLISHED.value).values_list("index", flat=True).last()
    if index is None:
        return None, {}
    try:
        entry = ledger.proven_entries([index], signed=False)[index]
    except (DomainError, ValueError):  # not in the tree, or not an entry at all
        return index, {}
    data = entry.get("data")
    return index, data if isinstance(data, dict) else {}


def publish(*, progress: Callable[[str, int], None] | None = None) -> list[OcdsBulkFile]:
    """Both files, each rewritten when releases were published since it was."""
    return [build(kind, progress=(lambda n, k=kind: progress(k, n)) if progress else None)
            for kind in KINDS]


def current(kind: str) -> OcdsBulkFile | None:
    """The file to send for ``kind``, when one was written and this server can read it.

    A file missing here (shared storage not mounted on this server, a folder emptied by
    hand) is logged and ignored: the view streams from the database instead."""
    built = OcdsBulkFile.objects.filter(kind=kind).first()
    if built is None:
        return None
    if file_of(built) is None:
        log.warning("OCDS bulk file %r is missing from %s", built.filename, bulk_folder())
        return None
    return built


def written() -> list[OcdsBulkFile]:
    """The current files, as the database lists them."""
    return list(OcdsBulkFile.objects.order_by("kind"))


def repr_digest(sha256_hex: str) -> str:
    """The ``Repr-Digest`` header's value (RFC 9530) for a SHA-256 given in hex."""
    return "sha-256=:" + base64.b64encode(bytes.fromhex(sha256_hex)).decode() + ":"
