"""``sahab backup --out DIR``: a consistent copy of a running installation.

What a backup holds, in the order it is taken:

1. ``files/``: SAHAB_HOME but the database, the mail and the documents — keys, the
   Django secret, the ledger signer's state, Dovecot's state. Copied first, so that the
   signer's last signed size is never ahead of the database copy (which would make the
   backup look like a rolled-back log).
2. ``database.sqlite3`` (SQLite's online backup API: one consistent read while writers
   go on) or ``database.pgdump`` (``pg_dump`` in custom format, from the very snapshot in
   which the ledger's size was read).
3. ``files/mail`` and ``files/media``: Maildirs and documents, copied after the database
   so that every message and document the database copy knows is in the backup.
4. ``manifest.json``: written last; the ledger's size and root in the database copy, the
   migrations it is at, and every file's size and SHA-256. A backup without a manifest is
   unfinished.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from sahab.core.errors import Conflict, InvalidInput
from sahab.ops.errors import OpsError

FORMAT = 1
MANIFEST = "manifest.json"
# Copied after the database (what the database refers to); everything else before it.
AFTER_DATABASE = ("mail", "media")
# Never copied: made again at start (static files, sockets, metrics, Dovecot's run folder).
SKIPPED = ("static", "run", "dovecot/run", "backups")


@dataclass(frozen=True)
class LogHead:
    size: int
    root: bytes


def engine() -> str:
    return "sqlite" if connection.vendor == "sqlite" else connection.vendor


def sqlite_path() -> Path:
    return Path(settings.DATABASES["default"]["NAME"])


def _skip(relative: Path, database_files: set[Path]) -> bool:
    text = relative.as_posix()
    if relative in database_files:
        return True
    return any(text == s or text.startswith(s + "/") for s in SKIPPED)


def _owner(stat) -> str:
    import pwd

    try:
        return pwd.getpwuid(stat.st_uid).pw_name
    except KeyError:
        return str(stat.st_uid)


def _copy_tree(source: Path, target: Path, *, only: tuple[str, ...] | None,
               exclude: tuple[str, ...], database_files: set[Path], meta: dict) -> None:
    """Copy regular files under ``source`` (``only`` these top-level names, or all but
    ``exclude``); sockets, pipes and vanished files are passed over. ``meta`` gets the
    owner and mode of every file and folder, which the backup's own copies do not keep."""
    for folder, dirs, files in os.walk(source):
        folder_path = Path(folder)
        relative_folder = folder_path.relative_to(source)
        if relative_folder == Path("."):
            dirs[:] = [d for d in dirs if (only is None or d in only) and d not in exclude]
            files = [f for f in files if only is None and f not in exclude]
        else:
            stat = folder_path.stat()
            meta[relative_folder.as_posix() + "/"] = (_owner(stat), stat.st_mode & 0o7777)
        dirs[:] = [d for d in dirs if not _skip(relative_folder / d, database_files)]
        (target / relative_folder).mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in files:
            relative = relative_folder / name
            if _skip(relative, database_files):
                continue
            path = folder_path / name
            try:
                if not path.is_file() or path.is_symlink():
                    continue
                stat = path.stat()
                shutil.copyfile(path, target / relative)
            except FileNotFoundError:  # a message moved from new/ to cur/ meanwhile
                continue
            os.chmod(target / relative, 0o600)
            meta[relative.as_posix()] = (_owner(stat), stat.st_mode & 0o7777)


def _database_files() -> set[Path]:
    if engine() != "sqlite":
        return set()
    db = sqlite_path()
    try:
        relative = db.relative_to(settings.SAHAB_HOME)
    except ValueError:
        return set()
    return {relative, relative.with_name(relative.name + "-wal"),
            relative.with_name(relative.name + "-shm"),
            relative.with_name(relative.name + "-journal")}


def _log_head_sql(cursor) -> LogHead:
    cursor.execute("SELECT size, frontier FROM ledger_logstate WHERE id = 1")
    row = cursor.fetchone()
    if row is None:
        return LogHead(0, b"")
    from sahab.ledger import merkle

    size, frontier = int(row[0]), bytes(row[1])
    return LogHead(size, merkle.CompactRange.from_bytes(size, frontier).root())


def _migrations_sql(cursor) -> dict[str, str]:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    latest: dict[str, str] = {}
    for app, name in cursor.fetchall():
        latest[app] = max(latest.get(app, ""), name)
    return latest


def _backup_sqlite(out: Path) -> tuple[str, LogHead, dict]:
    target = out / "database.sqlite3"
    source = sqlite3.connect(sqlite_path(), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one step: a single consistent read, writers wait only on WAL
        copy.execute("PRAGMA journal_mode=DELETE")
        head = _log_head_sql(copy.cursor())
        migrations = _migrations_sql(copy.cursor())
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise Conflict(OpsError.DATABASE_COPY_CORRUPT, check=check)
    finally:
        copy.close()
        source.close()
    return target.name, head, migrations


def postgres_tool(name: str) -> str:
    """``pg_dump``/``pg_restore`` of the newest PostgreSQL installed (they read older
    servers), falling back on the one in PATH."""
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]))
    return found[-1] if found else (shutil.which(name) or name)


def libpq_env() -> dict:
    """The connection of the Django database as libpq environment variables."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update({"PGHOST": db.get("HOST") or "", "PGPORT": str(db.get("PORT") or 5432),
                "PGUSER": db.get("USER") or "", "PGDATABASE": db["NAME"]})
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return {k: v for k, v in env.items() if v != ""}


def _backup_postgres(out: Path) -> tuple[str, LogHead, dict]:
    """``pg_dump`` from a snapshot exported by a transaction that reads the ledger head."""
    target = out / "database.pgdump"
    env = libpq_env()
    with _pg_connect() as conn:  # autocommit: the transaction is spelt out
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        with conn.cursor() as cursor:
            head = _log_head_sql(cursor)
            migrations = _migrations_sql(cursor)
        result = subprocess.run(
            [postgres_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
             f"--snapshot={snapshot}", f"--file={target}"],
            env=env, capture_output=True, text=True)
        conn.execute("ROLLBACK")
    if result.returncode != 0:
        raise Conflict(OpsError.PG_DUMP_FAILED, error=result.stderr.strip()[-500:])
    return target.name, head, migrations


def _pg_connect():
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(host=db.get("HOST") or None, port=db.get("PORT") or None,
                           user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                           dbname=db["NAME"], autocommit=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inventory(out: Path, meta: dict) -> list[dict]:
    """Every file with its size and SHA-256; those of SAHAB_HOME with their owner and mode."""
    rows = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST):
        relative = path.relative_to(out).as_posix()
        row = {"path": relative, "size": path.stat().st_size, "sha256": sha256_file(path)}
        if relative.startswith("files/") and relative[6:] in meta:
            row["owner"], row["mode"] = meta[relative[6:]]
        rows.append(row)
    return rows


def create(out: Path) -> dict:
    """Take a backup into ``out`` (new or empty); returns the manifest."""
    from sahab.ledger import services as ledger

    out = Path(out).resolve()
    home = settings.SAHAB_HOME.resolve()
    if out == home or home in out.parents:
        raise InvalidInput(OpsError.BACKUP_INSIDE_HOME)
    if out.exists() and any(out.iterdir()):
        raise Conflict(OpsError.BACKUP_FOLDER_NOT_EMPTY, folder=out)
    if "ledger_logstate" not in connection.introspection.table_names():
        raise InvalidInput(OpsError.NOTHING_TO_BACK_UP)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = dt.datetime.now(dt.UTC)
    files = out / "files"
    database_files = _database_files()
    meta: dict[str, tuple[str, int]] = {}
    _copy_tree(home, files, only=None, exclude=AFTER_DATABASE, database_files=database_files,
               meta=meta)
    kind = engine()
    if kind == "sqlite":
        database, head, migrations = _backup_sqlite(out)
    elif kind == "postgresql":
        database, head, migrations = _backup_postgres(out)
    else:
        raise InvalidInput(OpsError.BACKUP_ENGINE_UNSUPPORTED, engine=kind)
    os.chmod(out / database, 0o600)  # it holds every secret the database does
    _copy_tree(home, files, only=AFTER_DATABASE, exclude=(), database_files=database_files,
               meta=meta)
    manifest = {
        "format": FORMAT,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "engine": kind,
        "database": database,
        "migrations": migrations,
        "ledger": {"origin": settings.LEDGER_ORIGIN, "key": ledger.verifier_key(),
                   "size": head.size, "root": base64.b64encode(head.root).decode()},
        "folders": [{"path": path.rstrip("/"), "owner": owner, "mode": mode}
                    for path, (owner, mode) in sorted(meta.items()) if path.endswith("/")],
        "files": _inventory(out, meta),
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.chmod(tmp, 0o600)
    os.replace(tmp, out / MANIFEST)
    return manifest


# --- reading a backup -----------------------------------------------------------------

def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(OpsError.NOT_A_BACKUP, folder=folder, manifest=MANIFEST) from None
    except ValueError as exc:
        raise InvalidInput(OpsError.MANIFEST_NOT_JSON, path=path, error=str(exc)) from None
    if manifest.get("format") != FORMAT:
        raise InvalidInput(OpsError.BACKUP_FORMAT_UNKNOWN, path=path,
                           format=f"{manifest.get('format')!r}")
    return manifest


def verify(folder: Path, manifest: dict) -> None:
    """Every file listed is there with its size and SHA-256, and nothing was added."""
    folder = Path(folder)
    listed = {row["path"]: row for row in manifest["files"]}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name != MANIFEST}
    if missing := sorted(set(listed) - present):
        raise Conflict(OpsError.BACKUP_FILE_MISSING if len(missing) == 1 else
                       OpsError.BACKUP_FILES_MISSING, path=missing[0], more=len(missing) - 1)
    if extra := sorted(present - set(listed)):
        raise Conflict(OpsError.BACKUP_FILE_UNLISTED, path=extra[0])
    for path, row in listed.items():
        file = folder / path
        if file.stat().st_size != row["size"] or sha256_file(file) != row["sha256"]:
            raise Conflict(OpsError.BACKUP_FILE_DAMAGED, path=path)
