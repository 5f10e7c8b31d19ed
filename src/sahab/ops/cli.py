"""``sahab backup``, ``sahab restore`` and ``sahab upgrade``."""

from __future__ import annotations

from pathlib import Path


def cmd_backup(args) -> int:
    from sahab.ops import backup

    manifest = backup.create(Path(args.out))
    size = sum(row["size"] for row in manifest["files"])
    print(f"backup written to {Path(args.out).resolve()}: {manifest['engine']} database, "
          f"{len(manifest['files'])} files, {size / 1024**2:.1f} MiB; ledger of "
          f"{manifest['ledger']['size']} entries, root {manifest['ledger']['root']}")
    return 0


def cmd_restore(args) -> int:
    from sahab.core.errors import Conflict
    from sahab.ops import restore
    from sahab.ops.errors import OpsError

    plan = restore.plan(Path(args.backup), auditor_states=[Path(p) for p in args.auditor_state],
                        seen_sizes=args.seen_size, replace_database=args.replace_database)
    print(f"the backup verifies: {len(plan.manifest['files'])} files, ledger of {plan.size} "
          f"entries, taken {plan.manifest['started_at']}")
    if plan.rollbacks() and not args.accept_rollback:
        raise Conflict(OpsError.RESTORE_ROLLS_LOG_BACK, **restore.rollback(plan))
    for line in restore.execute(plan, accept_rollback=args.accept_rollback):
        print(line)
    return 0


def cmd_upgrade(args) -> int:
    from sahab.cli import CommandError
    from sahab.ops import upgrade

    refusals, notes = upgrade.preflight(big_table_rows=args.big_table_rows,
                                        allow_long_locks=args.allow_long_locks)
    for note in notes:
        print(note)
    if refusals:
        raise CommandError("the upgrade is refused:\n  " + "\n  ".join(refusals))
    if args.check:
        print("pre-flight passed; nothing changed (--check)")
        return 0
    for line in upgrade.run():
        print(line)
    return 0


def register(sub) -> None:
    p = sub.add_parser("backup", help="a consistent backup of the database and SAHAB_HOME")
    p.add_argument("--out", required=True, help="a new folder for the backup")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup onto a fresh SAHAB_HOME and database")
    p.add_argument("backup", help="the backup folder (with its manifest.json)")
    p.add_argument("--accept-rollback", action="store_true",
                   help="restore even if a longer log was seen before (recorded in the log)")
    p.add_argument("--replace-database", action="store_true",
                   help="drop what the target database holds first")
    p.add_argument("--auditor-state", action="append", default=[], metavar="FILE",
                   help="an auditor's state file (sahab ledger verify --state): its size "
                        "counts as seen (repeatable)")
    p.add_argument("--seen-size", action="append", type=int, default=[], metavar="N",
                   help="a log size seen elsewhere (a monitor, a witness) (repeatable)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("upgrade", help="pre-flight checks, then migrations, static files, keys")
    p.add_argument("--check", action="store_true", help="run the pre-flight checks only")
    p.add_argument("--allow-long-locks", action="store_true",
                   help="accept migrations that lock big tables (maintenance window)")
    p.add_argument("--big-table-rows", type=int, default=1_000_000,
                   help="a table is big above this many rows (default 1000000)")
    p.set_defaults(func=cmd_upgrade)
