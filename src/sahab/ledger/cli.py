"""``sahab ledger …`` commands."""

from __future__ import annotations

import base64
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
    if len(result.cosigned_by) < args.min_witnesses:
        print(f"LEDGER VERIFICATION FAILED: {len(result.cosigned_by)} witness cosignatures, "
              f"{args.min_witnesses} required", file=sys.stderr)
        return 1
    witnesses = f", cosigned by {', '.join(result.cosigned_by)}" if result.cosigned_by else ""
    root = base64.b64encode(result.root).decode()
    print(f"OK: {result.size} entries, root {root}{witnesses}; "
          f"consistent with the {result.previous_size} entries verified before.")
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


def register(sub) -> None:
    """Add ``sahab ledger`` and its sub-commands to the ``sahab`` parser."""
    ledger = sub.add_parser("ledger", help="the public transparency log")
    cmds = ledger.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")

    cmds.add_parser("key", help="the log's verifier key").set_defaults(func=cmd_key)
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

    p = cmds.add_parser("verify", help="audit a ledger from its URL (independent of sahab)")
    p.add_argument("url", help="the log's address, e.g. https://sahab.gov.tn/ledger")
    p.add_argument("--key", required=True, help="the log's verifier key (name+id+key)")
    p.add_argument("--witness", action="append", default=[], metavar="VKEY",
                   help="a trusted witness's key (repeatable)")
    p.add_argument("--min-witnesses", type=int, default=0,
                   help="cosignatures required from the given witnesses")
    p.add_argument("--state", help="state file (default under ~/.local/state/sahab-ledger/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_verify, needs_django=False)

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
    wcmds.add_parser("list", help="the witnesses of this log").set_defaults(
        func=cmd_witness_list)
    wcmds.add_parser("key", help="this installation's own witness key").set_defaults(
        func=cmd_witness_key)
    p = wcmds.add_parser("watch", help="witness another log (give its verifier key)")
    p.add_argument("vkey")
    p.set_defaults(func=cmd_witness_watch)
    wcmds.add_parser("submit", help="send the latest checkpoint to the witnesses now"
                     ).set_defaults(func=cmd_witness_submit)
