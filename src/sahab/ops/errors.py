"""Operations' refusals: backups and restores."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class OpsError(ErrorCode):
    """Operating the platform: backups, their checks, and restores onto a new installation."""

    PG_DUMP_FAILED = _("pg_dump failed: %(error)s")
    BACKUP_INSIDE_HOME = _("Write the backup outside SAHAB_HOME.")
    BACKUP_FOLDER_NOT_EMPTY = _("%(folder)s is not empty: a backup goes into a new folder.")
    NOTHING_TO_BACK_UP = _(
        "The database holds no sahab installation (run sahab init or check DATABASE_URL): "
        "nothing to back up.")
    BACKUP_FORMAT_UNKNOWN = _("%(path)s: unknown backup format %(format)s.")
    BACKUP_FILE_UNLISTED = _("the backup holds a file its manifest does not list: %(path)s")
    DATABASE_COPY_CORRUPT = _("the database copy fails SQLite's integrity check: %(check)s")
    BACKUP_ENGINE_UNSUPPORTED = _("No backup for the %(engine)s database engine.")
    NOT_A_BACKUP = _("%(folder)s has no %(manifest)s: not a backup, or an unfinished one.")
    MANIFEST_NOT_JSON = _("%(path)s is not JSON: %(error)s")
    BACKUP_FILE_DAMAGED = _("the backup is damaged: %(path)s does not match its SHA-256")
    RESTORE_ENGINE_MISMATCH = _(
        "This backup is of a %(backup_engine)s database; DATABASE_URL is %(engine)s. Restore "
        "onto the same engine.")
    PG_RESTORE_FAILED = _("pg_restore failed: %(error)s")
    RESTORED_KEY_MISMATCH = _("the restored ledger key is not the backup's")
    RESTORED_ROOT_MISMATCH = _("the restored ledger does not have the root the manifest records")
    RESTORE_DATABASE_NOT_EMPTY = _(
        "The database is not empty. Restore onto a new database, or give --replace-database to "
        "drop what it holds.")
    RESTORE_FILE_DIFFERS = _(
        "%(path)s exists and differs from the backup's: restore into a fresh SAHAB_HOME (keys "
        "are never overwritten).")
    AUDITOR_STATE_UNREADABLE = _("cannot read the auditor state %(path)s: %(error)s")
    BACKUP_FILE_MISSING = _("the backup is incomplete: %(path)s is missing")
    BACKUP_FILES_MISSING = _("the backup is incomplete: %(path)s is missing (and %(more)s more)")
    RESTORE_ROLLS_LOG_BACK = _(
        "restoring would roll the public log back: the backup's log has %(size)s entries, "
        "but\n%(sightings)s\nWitnesses and auditors will report a fork for the entries in "
        "between. Restore a later backup, or recover PostgreSQL to the last transaction "
        "(docs/operations.md); if this backup is all there is, run again with "
        "--accept-rollback: the rollback is then recorded in the log itself.")
    RESTORE_LOADED_ROLLS_LOG_BACK = _(
        "restoring would roll the public log back: the backup's log has %(size)s entries, "
        "but\n%(sightings)s\nWitnesses and auditors will report a fork for the entries in "
        "between. Restore a later backup, or recover PostgreSQL to the last transaction "
        "(docs/operations.md); if this backup is all there is, run again with "
        "--accept-rollback: the rollback is then recorded in the log itself.\n(the database is "
        "loaded: restore it again with --accept-rollback, or into a fresh database)")
