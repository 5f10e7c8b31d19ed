"""``sahab ledger …`` commands."""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import sys
from pathlib import Path


def cmd_key(args) -> int:
    from sahab.ledger import services

    print(services.verifier_key())
    return 0


def cmd_checkpoint(args) -> int:
    from sahab.ledger import services

    sys.stdout.write(services.signed_checkpoint(services.latest_checkpoint()))
    return 0


def cmd_entry(args) -> int:
    from sahab.ledger import services

    sys.stdout.buffer.write(bytes(services.get_entry(args.index).body))
    sys.stdout.buffer.flush()
    return 0


def cmd_prove(args) -> int:
    from sahab.ledger import services

    size = args.size if args.size is not None else services.latest_checkpoint().size
    print(json.dumps(services.inclusion_proof_json(args.index, size), indent=2))
    return 0


def cmd_consistency(args) -> int:
    from sahab.ledger import services

    print(json.dumps(services.consistency_proof_json(args.old, args.new), indent=2))
    return 0


def cmd_verify(args) -> int:
    import httpx
    from tqdm import tqdm

    from sahab.ledger.auditor import AuditFailure, Auditor

    bar = tqdm(unit=" entries", unit_scale=True, disable=args.quiet, file=sys.stderr,
               desc="verifying")
    try:
        auditor = Auditor(args.url, args.key, witness_keys=args.witness,
                          min_witnesses=args.min_witnesses,
                          state_path=Path(args.state) if args.state else None,
                          progress=bar.update)
        result = auditor.run()
    except AuditFailure as exc:
        bar.close()
        print(f"LEDGER VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, httpx.HTTPError) as exc:
        bar.close()
        print(f"sahab ledger verify: cannot reach the log: {exc}", file=sys.stderr)
        return 2
    bar.close()
    witnesses = f", cosigned by {', '.join(result.cosigned_by)}" if result.cosigned_by else ""
    root = base64.b64encode(result.root).decode()
    print(f"OK: {result.size} entries, root {root}{witnesses}; "
          f"consistent with the {result.previous_size} entries verified before.")
    return 0


def _until(value: str | None) -> float | None:
    """``--until``: seconds from now, or an ISO 8601 time."""
    import time

    if value is None:
        return None
    try:
        return time.time() + float(value)
    except ValueError:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()


def cmd_monitor(args) -> int:
    from sahab.ledger.auditor import AuditFailure, Auditor, Monitor

    try:
        auditor = Auditor(args.url, args.key, witness_keys=args.witness,
                          min_witnesses=args.min_witnesses,
                          state_path=Path(args.state) if args.state else None)
        until = _until(args.until)
        Monitor(auditor, interval=args.interval, report=lambda line: print(line, flush=True)
                ).run(count=args.count, until=until)
    except AuditFailure as exc:
        print(f"LEDGER MONITOR ALARM: {exc}", file=sys.stderr, flush=True)
        return 1
    except ValueError as exc:
        print(f"sahab ledger monitor: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_status(args) -> int:
    from sahab.ledger import services

    status = services.status()
    print(json.dumps(status, indent=2, ensure_ascii=False))
    return 0 if status["ok"] else 1


def cmd_fill_rows(args) -> int:
    from sahab.ledger import services

    for table, filled in services.fill_left_rows().items():
        print(f"{table}: {filled} row(s) given their index")
    left = services.stranded_rows(dt.timedelta(0))
    for table, count in left.items():
        print(f"{table}: {count} row(s) still without an index (see the log)",
              file=sys.stderr)
    return 1 if left else 0


def cmd_accept_restore(args) -> int:
    from sahab.ledger import signing

    report = signing.accept_restore(reason=args.reason)
    if not report.forked:
        print(f"The database continues what was signed (size {report.previous_size} → "
              f"{report.restored_size}): nothing to accept.")
    else:
        print(f"Accepted: the log now continues from the restored tree of size "
              f"{report.restored_size} instead of the signed one of size "
              f"{report.previous_size}. Recorded as ledger entry {report.entry_index}; every "
              "witness and auditor that saw the old tree will report the fork.")
    return 0


def cmd_verify_proof(args) -> int:
    from sahab.ledger.auditor import AuditFailure, verify_proof_file

    key = args.key
    if key is None:
        from sahab.cli import setup_django

        setup_django()
        from sahab.ledger import services

        key = services.verifier_key()
    try:
        proof = Path(args.file).read_bytes()
        entry = Path(args.entry).read_bytes()
    except OSError as exc:
        print(f"sahab ledger verify-proof: {exc}", file=sys.stderr)
        return 2
    try:
        index, checkpoint = verify_proof_file(proof, entry, key, args.witness)
    except AuditFailure as exc:
        print(f"RECEIPT INVALID: {exc}", file=sys.stderr)
        return 1
    print(f"OK: the entry is number {index} of the log {checkpoint.origin}, "
          f"included in its signed checkpoint of size {checkpoint.size}.")
    return 0


def cmd_witness_add(args) -> int:
    from sahab.ledger import services

    witness = services.register_witness(name=args.name, vkey=args.vkey, url=args.url or "")
    print(f"registered witness {witness.name}")
    return 0


def cmd_witness_set(args) -> int:
    """Change a registered witness's address or turn it on or off (a ledger entry)."""
    from sahab.core.errors import NotFound
    from sahab.ledger import services
    from sahab.ledger.errors import LedgerError
    from sahab.ledger.models import Witness

    witness = Witness.objects.filter(name=args.name).first()
    if witness is None:
        raise NotFound(LedgerError.NO_WITNESS, name=args.name)
    witness = services.set_witness(witness=witness, actor="system", url=args.url,
                                   active=args.active)
    print(f"{witness.name}\t{'active' if witness.active else 'inactive'}\t{witness.url or '-'}")
    return 0


def cmd_events(args) -> int:
    """Print the event vocabulary of every pillar (docs/ledger-events.md)."""
    from sahab.ledger import vocabulary

    print(vocabulary.markdown())
    return 0


def cmd_witness_list(args) -> int:
    from sahab.ledger.models import Witness

    for w in Witness.objects.order_by("name"):
        print(f"{w.name}\t{'active' if w.active else 'inactive'}\tlast size {w.last_size}\t"
              f"{w.url or '-'}")
    return 0


def cmd_witness_key(args) -> int:
    from sahab.ledger import witnessing

    print(witnessing.witness_vkey())
    return 0


def cmd_witness_watch(args) -> int:
    from sahab.ledger import witnessing

    log = witnessing.register_witnessed_log(vkey=args.vkey)
    print(f"witnessing {log.origin}")
    return 0


def cmd_witness_submit(args) -> int:
    from sahab.ledger import services, witnessing
    from sahab.ledger.models import Witness

    services.checkpoint_if_grown()
    for witness in Witness.objects.filter(active=True).exclude(url=""):
        stored = witnessing.submit(witness)
        print(f"{witness.name}: {'cosigned' if stored else 'nothing new'}")
    return 0


# --- sahab witness: an independent witness process ------------------------------------

def _witness_home(args):
    import os

    from sahab.ledger.witness import WitnessHome

    if args.home:
        return WitnessHome(args.home)
    if os.environ.get("SAHAB_WITNESS_HOME"):
        return WitnessHome(os.environ["SAHAB_WITNESS_HOME"])
    return WitnessHome(Path(os.environ.get("SAHAB_HOME", "var")).resolve() / "witness")


def cmd_witness_init(args) -> int:
    home = _witness_home(args)
    home.init(args.name)
    for vkey in args.log:
        home.add_log(vkey)
    print(home.vkey())
    return 0


def cmd_witness_serve(args) -> int:
    from sahab.ledger import witness

    home = _witness_home(args)
    if not home.exists():
        if not args.name:
            print(f"sahab witness: no witness in {home.path}: run 'sahab witness init --name "
                  "NAME' (or give --name)", file=sys.stderr)
            return 2
        home.init(args.name)
    for vkey in args.log:
        home.add_log(vkey)
    print(f"sahab witness {home.name} on http://{args.host}:{args.port}/add-checkpoint, "
          f"witnessing {', '.join(home.logs()) or 'no log yet'}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        witness.serve(home, args.host, args.port)
    return 0


def cmd_witness_key_of(args) -> int:
    print(_witness_home(args).vkey())
    return 0


def cmd_witness_add_log(args) -> int:
    from sahab.ledger import note

    try:
        origin = _witness_home(args).add_log(args.vkey)
    except note.NoteError as exc:
        print(f"sahab witness: bad log key: {exc}", file=sys.stderr)
        return 2
    print(f"witnessing {origin}")
    return 0


def cmd_witness_logs(args) -> int:
    home = _witness_home(args)
    for origin in home.logs():
        state = home.state(origin)
        print(f"{origin}\tsize {state['size']}\troot {state['root'] or '-'}")
    return 0


def register_witness(sub) -> None:
    """``sahab witness``: run an independent witness (no database, its own key)."""
    import os

    witness = sub.add_parser("witness", help="an independent witness process (C2SP "
                             "tlog-witness), with its own key and storage")
    witness.add_argument("--home", help="its folder (default SAHAB_WITNESS_HOME, else "
                                        "SAHAB_HOME/witness)")
    wcmds = witness.add_subparsers(dest="witness_command", metavar="COMMAND")
    witness.set_defaults(func=cmd_witness_serve, needs_django=False, name=None, log=[],
                         host="127.0.0.1",
                         port=int(os.environ.get("SAHAB_WITNESS_PORT", "8081")))
    p = wcmds.add_parser("serve", help="serve POST /add-checkpoint (the default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("SAHAB_WITNESS_PORT",
                                                                   "8081")))
    p.add_argument("--name", help="the witness's name, when it is created now")
    p.add_argument("--log", action="append", default=[], metavar="VKEY",
                   help="a log to witness, by its verifier key (repeatable)")
    p.set_defaults(func=cmd_witness_serve, needs_django=False)
    p = wcmds.add_parser("init", help="create the witness's key and folder; prints its key")
    p.add_argument("--name", required=True, help="e.g. witness.courdescomptes.tn")
    p.add_argument("--log", action="append", default=[], metavar="VKEY")
    p.set_defaults(func=cmd_witness_init, needs_django=False)
    wcmds.add_parser("key", help="the witness's cosignature/v1 verifier key").set_defaults(
        func=cmd_witness_key_of, needs_django=False)
    p = wcmds.add_parser("add-log", help="witness a log, given its verifier key")
    p.add_argument("vkey")
    p.set_defaults(func=cmd_witness_add_log, needs_django=False)
    wcmds.add_parser("logs", help="the logs witnessed and the size last cosigned"
                     ).set_defaults(func=cmd_witness_logs, needs_django=False)


def register(sub) -> None:
    """Add ``sahab ledger`` and ``sahab witness`` to the ``sahab`` parser."""
    register_witness(sub)
    ledger = sub.add_parser("ledger", help="the public transparency log")
    cmds = ledger.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")

    cmds.add_parser("key", help="the log's verifier key").set_defaults(func=cmd_key)
    cmds.add_parser("events", help="every entry type of every pillar, with its data fields "
                    "(Markdown)").set_defaults(func=cmd_events, needs_django=False)
    cmds.add_parser("checkpoint", help="the latest signed checkpoint, as served"
                    ).set_defaults(func=cmd_checkpoint)
    p = cmds.add_parser("entry", help="the exact bytes of entry N")
    p.add_argument("index", type=int, metavar="N")
    p.set_defaults(func=cmd_entry)
    p = cmds.add_parser("prove", help="inclusion proof of entry N (JSON)")
    p.add_argument("index", type=int, metavar="N")
    p.add_argument("--size", type=int, help="tree size (default: the latest checkpoint)")
    p.set_defaults(func=cmd_prove)
    p = cmds.add_parser("consistency", help="consistency proof between two sizes (JSON)")
    p.add_argument("old", type=int)
    p.add_argument("new", type=int)
    p.set_defaults(func=cmd_consistency)

    def auditor_options(p):
        p.add_argument("url", help="the log's address, e.g. https://sahab.gov.tn/ledger")
        p.add_argument("--key", required=True, help="the log's verifier key (name+id+key)")
        p.add_argument("--witness-key", "--witness", dest="witness", action="append",
                       default=[], metavar="VKEY",
                       help="a trusted witness's key (repeatable): its cosignature is required")
        p.add_argument("--min-witnesses", type=int, default=None,
                       help="cosignatures required among the given witnesses (default: all)")
        p.add_argument("--state", help="state file, kept between runs (default "
                                       "~/.local/state/sahab-ledger/<origin>.json)")

    p = cmds.add_parser("verify", help="audit a ledger from its URL (independent of sahab)")
    auditor_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_verify, needs_django=False)

    p = cmds.add_parser("monitor", help="follow a ledger, verifying every new checkpoint")
    auditor_options(p)
    p.add_argument("--interval", type=float, default=60.0, help="seconds between rounds")
    p.add_argument("--count", type=int, help="stop after this many rounds")
    p.add_argument("--until", help="stop after this many seconds, or at this ISO time")
    p.set_defaults(func=cmd_monitor, needs_django=False)

    cmds.add_parser("status", help="the signer, the database guard and the witnesses "
                    "(exit 1 on an alarm)").set_defaults(func=cmd_status)
    cmds.add_parser("fill-rows", help="after removing rows planted in the database: give "
                    "the rows left without their ledger index theirs (exit 1 if some are "
                    "still left)").set_defaults(func=cmd_fill_rows)
    p = cmds.add_parser("accept-restore", help="after restoring a database backup: accept "
                        "the restored log knowingly (recorded in the ledger)")
    p.add_argument("--reason", required=True, help="why (recorded in the public ledger)")
    p.set_defaults(func=cmd_accept_restore)

    p = cmds.add_parser("verify-proof", help="check a receipt (tlog-proof) offline")
    p.add_argument("file", help="the .tlog-proof receipt")
    p.add_argument("entry", help="a file with the entry's exact bytes")
    p.add_argument("--key", help="the log's verifier key (default: this installation's)")
    p.add_argument("--witness", action="append", default=[], metavar="VKEY")
    p.set_defaults(func=cmd_verify_proof, needs_django=False)

    witness = cmds.add_parser("witness", help="witnesses: of this log, and by this sahab")
    wcmds = witness.add_subparsers(dest="witness_command", required=True, metavar="COMMAND")
    p = wcmds.add_parser("add", help="register a witness of this log")
    p.add_argument("name")
    p.add_argument("vkey", help="the witness's cosignature/v1 verifier key")
    p.add_argument("--url", help="its add-checkpoint URL, to submit checkpoints to")
    p.set_defaults(func=cmd_witness_add)
    p = wcmds.add_parser("set", help="change a witness's add-checkpoint URL, or turn it "
                         "on or off (e.g. after a restore on a machine with other ports)")
    p.add_argument("name")
    p.add_argument("--url")
    p.add_argument("--active", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=cmd_witness_set)
    wcmds.add_parser("list", help="the witnesses of this log").set_defaults(
        func=cmd_witness_list)
    wcmds.add_parser("key", help="this installation's own witness key").set_defaults(
        func=cmd_witness_key)
    p = wcmds.add_parser("watch", help="witness another log (give its verifier key)")
    p.add_argument("vkey")
    p.set_defaults(func=cmd_witness_watch)
    wcmds.add_parser("submit", help="send the latest checkpoint to the witnesses now"
                     ).set_defaults(func=cmd_witness_submit)
