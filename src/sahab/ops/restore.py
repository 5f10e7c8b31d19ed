"""``sahab restore DIR``: a backup onto a fresh SAHAB_HOME and database.

The backup is checked file by file against its manifest before anything is written.
The database must be new (or ``--replace-database`` given, after which its ledger size
counts among what was seen); a restore that would roll the public log back is refused
unless ``--accept-rollback`` is given. Then the database is loaded (SQLite file copied,
``pg_restore`` on PostgreSQL), the files are put back, migrations and static files are
brought up to date, and the restored ledger's root is checked against the manifest.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, connections
from django.utils.translation import gettext as _

from sahab.core.errors import Conflict, InvalidInput, read_when_rendered
from sahab.ops import backup, ledger_glue
from sahab.ops.errors import OpsError
from sahab.ops.ledger_glue import Sighting

# Files a fresh SAHAB_HOME may already hold, which the backup's replace.
REPLACEABLE = ("secret_key",)


@dataclass
class Plan:
    folder: Path
    manifest: dict
    seen: list[Sighting] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.manifest["ledger"]["size"]

    def rollbacks(self) -> list[Sighting]:
        return [s for s in self.seen if s.size > self.size]


def _current_log_size() -> int | None:
    """The ledger size of the database being replaced, None when it has no ledger."""
    if "ledger_logstate" not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT size FROM ledger_logstate WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _database_is_empty() -> bool:
    return not connection.introspection.table_names()


def plan(folder: Path, *, auditor_states: list[Path] = (), seen_sizes: list[int] = (),
         replace_database: bool = False) -> Plan:
    """Check the backup and gather every size of the log seen before, without writing."""
    folder = Path(folder).resolve()
    manifest = backup.read_manifest(folder)
    backup.verify(folder, manifest)
    if manifest["engine"] != backup.engine():
        raise InvalidInput(OpsError.RESTORE_ENGINE_MISMATCH, backup_engine=manifest["engine"],
                           engine=backup.engine())
    result = Plan(folder, manifest)
    if not _database_is_empty():
        if not replace_database:
            raise Conflict(OpsError.RESTORE_DATABASE_NOT_EMPTY)
        size = _current_log_size()
        if size is not None:
            result.seen.append(Sighting("the database being replaced", size))
    result.seen += ledger_glue.signer_state_sightings(settings.SAHAB_HOME)
    for path in auditor_states:
        try:
            result.seen.append(ledger_glue.auditor_sighting(path))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(OpsError.AUDITOR_STATE_UNREADABLE, path=path,
                               error=str(exc)) from None
    result.seen += [Sighting("the operator (--seen-size)", n) for n in seen_sizes]
    _check_home(folder)
    return result


def _keeps_signer_record(relative: Path) -> bool:
    """The signer's record of a home being restored over is evidence, never replaced:
    it says what was signed, and the ledger decides what a restore does about it."""
    return relative.parts[:1] == (ledger_glue.SIGNER_STATE,) and \
        ledger_glue.signer_dir(settings.SAHAB_HOME).exists()


def _check_home(folder: Path) -> None:
    """A fresh SAHAB_HOME: no file of the backup may replace a different one (keys)."""
    files = folder / "files"
    home = settings.SAHAB_HOME
    for path in files.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(files)
        if _keeps_signer_record(relative):
            continue
        target = home / relative
        if target.exists() and relative.as_posix() not in REPLACEABLE and \
                not filecmp.cmp(path, target, shallow=False):
            raise Conflict(OpsError.RESTORE_FILE_DIFFERS, path=target)


def rollback(result: Plan) -> dict:
    """The parameters of the refusal of a rollback: the backup's size and, one a line, who saw
    more entries (in the language of whoever reads the refusal)."""
    seen = [{"who": s.who, "size": s.size, "more": s.size - result.size}
            for s in result.rollbacks()]
    return {"size": result.size, "sightings": read_when_rendered(lambda: "\n".join(
        "  " + _("%(who)s saw %(size)s entries (%(more)s more)") % row for row in seen))}


# --- doing it -----------------------------------------------------------------------

def _drop_everything() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    connections.close_all()


def _load_sqlite(result: Plan) -> None:
    target = backup.sqlite_path()
    connections.close_all()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(result.folder / result.manifest["database"], tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)


def _load_postgres(result: Plan) -> None:
    connections.close_all()
    done = subprocess.run(
        [backup.postgres_tool("pg_restore"), "--no-owner", "--no-privileges",
         "--exit-on-error", "--single-transaction", f"--dbname={backup.libpq_env()['PGDATABASE']}",
         str(result.folder / result.manifest["database"])],
        env=backup.libpq_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise Conflict(OpsError.PG_RESTORE_FAILED, error=done.stderr.strip()[-500:])


def _set_owner_and_mode(path: Path, owner: str | None, mode: int | None) -> None:
    if mode is not None:
        os.chmod(path, mode)
    if owner and os.geteuid() == 0:  # as root, give files back to their account (Dovecot's)
        import pwd

        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            return
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _put_files(result: Plan) -> None:
    files = result.folder / "files"
    home = settings.SAHAB_HOME
    keep_signer = ledger_glue.signer_dir(home).exists()
    for folder in result.manifest.get("folders", []):
        if keep_signer and Path(folder["path"]).parts[:1] == (ledger_glue.SIGNER_STATE,):
            continue
        target = home / folder["path"]
        target.mkdir(parents=True, exist_ok=True)
        _set_owner_and_mode(target, folder.get("owner"), folder.get("mode"))
    for row in result.manifest["files"]:
        if not row["path"].startswith("files/"):
            continue
        relative = row["path"][len("files/"):]
        if _keeps_signer_record(Path(relative)):
            continue
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(files / relative, tmp)
        _set_owner_and_mode(tmp, row.get("owner"), row.get("mode"))
        os.replace(tmp, target)


def _check_ledger(result: Plan) -> None:
    import base64

    from sahab.ledger import services

    expected = result.manifest["ledger"]
    if services.verifier_key() != expected["key"]:
        raise Conflict(OpsError.RESTORED_KEY_MISMATCH)
    if services.tree_size() < result.size or \
            base64.b64encode(services.root_at(result.size)).decode() != expected["root"]:
        raise Conflict(OpsError.RESTORED_ROOT_MISMATCH)


def execute(result: Plan, *, accept_rollback: bool) -> list[str]:
    """Restore; returns what was done, line by line."""
    rollbacks = result.rollbacks()
    if rollbacks and not accept_rollback:
        raise Conflict(OpsError.RESTORE_ROLLS_LOG_BACK, **rollback(result))
    done = []
    if not _database_is_empty():
        _drop_everything()
        done.append("emptied the database being replaced")
    if result.manifest["engine"] == "sqlite":
        _load_sqlite(result)
    else:
        _load_postgres(result)
    done.append(f"loaded the database ({result.manifest['database']}, "
                f"ledger of {result.size} entries)")
    _put_files(result)
    restored = sum(1 for r in result.manifest["files"] if r["path"].startswith("files/"))
    done.append(f"restored {restored} files into {settings.SAHAB_HOME}")
    from sahab.core.setup import initialise

    done += list(initialise(verbose=False))
    done.append("migrations and static files are up to date")
    _check_ledger(result)
    done.append("the ledger's root matches the backup's manifest")
    # sizes the restored database's witnesses report count too (checked once loaded)
    result.seen += [s for s in ledger_glue.witness_sightings() if s.size > result.size]
    rollbacks = result.rollbacks()
    if rollbacks:
        if not accept_rollback:
            raise Conflict(OpsError.RESTORE_LOADED_ROLLS_LOG_BACK, **rollback(result))
        ledger_glue.accept_restored_log(size=result.size,
                                        root=result.manifest["ledger"]["root"],
                                        seen=result.seen, backup=str(result.folder))
        done.append(f"ROLLBACK ACCEPTED: the log goes on from {result.size} entries; "
                    f"{max(s.size for s in rollbacks) - result.size} entries seen before are "
                    "lost, and the log records it")
    return done
