"""``sahab ocds export``: the whole OCDS data set to a file, with a progress bar."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path


def _package_size(kind: str) -> int:
    """How many releases, or records (processes), a whole package holds: a bar's total."""
    from sahab.procurement.models import Release

    return Release.objects.values("ocid").distinct().count() if kind == "records" \
        else Release.objects.count()


def cmd_export(args) -> int:
    from django.conf import settings
    from tqdm import tqdm

    from sahab.procurement import ocds

    out = Path(args.out)
    kind = "records" if args.records else "releases"
    items = ocds.package_items(kind)
    total = _package_size(kind)
    bar = tqdm(total=total, unit=f" {kind[:-1]}s", file=sys.stderr, disable=args.quiet)

    def counted():
        for item in items:
            bar.update(1)
            yield item

    opener = gzip.open if out.suffix == ".gz" else open
    try:
        with opener(out, "wb") as f:
            for chunk in ocds.stream_package(kind, counted(),
                                             f"{settings.PUBLIC_URL.rstrip('/')}/ocds/{kind}"):
                f.write(chunk)
    except OSError as exc:
        bar.close()
        print(f"sahab ocds export: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(f"{total} {kind} written to {out}")
    return 0


def cmd_publish_bulk(args) -> int:
    """Write the bulk files served at /ocds/<kind>.json.gz now, as the worker does."""
    from tqdm import tqdm

    from sahab.procurement import bulkfiles

    bars: dict[str, tqdm] = {}

    def progress(kind: str, n: int) -> None:
        if kind not in bars:
            bars[kind] = tqdm(total=_package_size(kind), desc=kind, unit=f" {kind[:-1]}s",
                              file=sys.stderr, disable=args.quiet)
        bars[kind].update(n)

    try:
        written = bulkfiles.publish(progress=progress)
    except OSError as exc:
        print(f"sahab ocds publish-bulk: cannot write the files: {exc}", file=sys.stderr)
        return 2
    finally:
        for bar in bars.values():
            bar.close()
    for built in written:
        print(f"{built.kind}: {built.items} items up to ledger index {built.up_to}, "
              f"{built.size} bytes, sha256 {built.sha256} (ledger entry {built.ledger_index})")
    return 0


def read_compiled_releases(path: Path) -> list[dict]:
    """Compiled releases from a public OCDS file: a release package (compiled here with
    the standard's merge tooling), a record package, or JSON lines of either; gzip or not."""
    import json

    from sahab.procurement import ocds

    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    try:
        documents = [json.loads(text)]
    except ValueError:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
    releases, compiled = [], []
    for doc in documents:
        if "records" in doc:
            for record in doc["records"]:
                compiled.append(record.get("compiledRelease") or
                                ocds.compile_record(record["releases"])["compiledRelease"])
        elif "releases" in doc:
            releases.extend(doc["releases"])
        elif "compiledRelease" in doc:
            compiled.append(doc["compiledRelease"])
        elif "ocid" in doc:
            (compiled if "compiled" in doc.get("tag", []) else releases).append(doc)
    by_ocid: dict[str, list[dict]] = {}
    for release in releases:
        by_ocid.setdefault(release["ocid"], []).append(release)
    compiled += [ocds.compile_record(group)["compiledRelease"] for group in by_ocid.values()]
    return compiled


def cmd_redflags(args) -> int:
    """The red flags of a public OCDS file, computed from the file alone."""
    import json

    from sahab.procurement import redflags

    try:
        compiled = read_compiled_releases(Path(args.from_ocds))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"sahab redflags: cannot read {args.from_ocds}: {exc}", file=sys.stderr)
        return 2
    flags = redflags.compute(compiled)
    if args.explain:
        for f in flags:
            print(f"{f.code}\t{f.group}\t{f.subject}\t{f.name}\t{f.explanation}")
    else:
        print(json.dumps(redflags.as_cardinal(flags), ensure_ascii=False, sort_keys=True))
    return 0


def cmd_verify_opening(args) -> int:
    """Check an opening from public data only (no database, no server installation)."""
    from sahab.procurement.verify import OpeningFailure, verify_opening

    try:
        result = verify_opening(args.url, args.reference, args.key, my_bids=args.my_bid,
                                tags_committed_from=args.tags_committed_from)
    except OpeningFailure as exc:
        print(f"OPENING VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:  # httpx errors are OSError kin
        print(f"sahab procurement verify-opening: cannot check: {exc}", file=sys.stderr)
        return 2
    print(f"OK: {result.reference}: {len(result.opened)} bid(s) opened, each committed on the "
          f"log before the deadline and signed by a registered key; "
          f"{len(result.rejected)} rejected, {len(result.missing)} missing and "
          f"{len(result.unconfirmed)} not confirmed after an amendment, named in the "
          f"report; opened with the keys of members {result.released}.")
    if args.my_bid:
        print(f"Your bid entries {args.my_bid} are among those the opening read.")
    if not result.tag_committed:
        print("NOTE: the tender was published before bid tags were committed on the log: "
              "that the opening read the tender's own bid entries rests on the platform's "
              "word (check your bid with --my-bid).")
    return 0


def cmd_bid_keygen(args) -> int:
    """A company's bid-signing key, made on its own machine."""
    from sahab.procurement import client

    out = Path(args.out)
    if out.exists():
        print(f"sahab bid keygen: {out} exists; not overwriting a key", file=sys.stderr)
        return 2
    key = client.new_signing_key()
    client.save_key(key, out)
    print(json.dumps(client.registration(args.company, key)))
    print(f"private key written to {out}; POST the line above to "
          "/api/procurement/signing-keys to register the key", file=sys.stderr)
    return 0


def cmd_bid_seal(args) -> int:
    """Seal and sign a bid offline, from the tender's public detail (a JSON file)."""
    from sahab.procurement import client

    try:
        detail = json.loads(Path(args.tender).read_text())
        key = client.load_key(args.key)
        prices = dict(p.split("=", 1) for p in args.price)
        documents = [(Path(d).name, Path(d).read_bytes()) for d in args.document]
        envelope = client.seal_bid(detail, company_id=args.company, key=key, prices=prices,
                                   technical_offer=args.offer, documents=documents)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"sahab bid seal: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps({"envelope": envelope}))
    print(f"sealed envelope written to {args.out}: POST it to "
          f"/api/procurement/tenders/{detail['reference']}/bids", file=sys.stderr)
    return 0


def cmd_committee_keygen(args) -> int:
    """A committee member's one-time opening key for one tender."""
    from sahab.procurement import client

    out = Path(args.out)
    if out.exists():
        print(f"sahab committee keygen: {out} exists; not overwriting a key", file=sys.stderr)
        return 2
    private, public = client.committee_keygen()
    out.write_text(private + "\n")
    out.chmod(0o600)
    print(json.dumps({"public_key": public}))
    print(f"private key written to {out}: keep it offline until the deadline", file=sys.stderr)
    return 0


def register(sub) -> None:
    ocds = sub.add_parser("ocds", help="Open Contracting Data Standard publication")
    cmds = ocds.add_subparsers(dest="ocds_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("export", help="write every release (or record) to a package file")
    p.add_argument("--records", action="store_true", help="records instead of releases")
    p.add_argument("--out", required=True, help="the file (compressed when it ends in .gz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)
    p = cmds.add_parser("publish-bulk",
                        help="write the bulk files the platform serves now (the worker does it "
                             "every SAHAB_OCDS_BULK_SECONDS)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_publish_bulk)
    p = sub.add_parser("redflags", help="compute the red flags of a public OCDS file")
    p.add_argument("--from-ocds", required=True, metavar="FILE",
                   help="a release or record package (or JSON lines), gzip or not")
    p.add_argument("--explain", action="store_true",
                   help="one line per flag with its explanation, instead of JSON")
    p.set_defaults(func=cmd_redflags)
    procurement = sub.add_parser("procurement", help="checks of procurement from public data")
    cmds = procurement.add_subparsers(dest="procurement_command", required=True,
                                      metavar="COMMAND")
    p = cmds.add_parser("verify-opening", help="check a tender's opening from public data")
    p.add_argument("reference")
    p.add_argument("--url", required=True, help="the platform's web address")
    p.add_argument("--key", required=True, help="the log's verifier key (sahab ledger key)")
    p.add_argument("--my-bid", type=int, action="append", default=[], metavar="INDEX",
                   help="the ledger index of your bid's entry (from its promise or "
                        "receipt): check that the opening read it; repeat for several")
    p.add_argument("--tags-committed-from", type=int, default=0, metavar="INDEX",
                   help="the log's index from which every publication commits to its bid "
                        "tag (0, the default: every one; the platform's docs name it for a "
                        "platform upgraded with tenders already published)")
    p.set_defaults(func=cmd_verify_opening, needs_django=False)
    bid = sub.add_parser("bid", help="a company's side of sealed bids (offline)")
    cmds = bid.add_subparsers(dest="bid_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("keygen", help="make a bid-signing key and its registration")
    p.add_argument("--company", type=int, required=True, help="your company's number")
    p.add_argument("--out", required=True, help="where to write the private key (PEM)")
    p.set_defaults(func=cmd_bid_keygen, needs_django=False)
    p = cmds.add_parser("seal", help="seal and sign a bid to a tender's committee")
    p.add_argument("--tender", required=True,
                   help="the tender's detail as GET /api/procurement/tenders/REF gives it")
    p.add_argument("--company", type=int, required=True)
    p.add_argument("--key", required=True, help="your bid-signing key (PEM)")
    p.add_argument("--price", action="append", default=[], metavar="LOT=PRICE")
    p.add_argument("--offer", default="", help="the technical offer (text)")
    p.add_argument("--document", action="append", default=[], metavar="FILE")
    p.add_argument("--out", required=True, help="the request body to POST (JSON)")
    p.set_defaults(func=cmd_bid_seal, needs_django=False)
    committee = sub.add_parser("committee", help="an opening committee member's side")
    cmds = committee.add_subparsers(dest="committee_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("keygen", help="make a one-time opening key for one tender")
    p.add_argument("--out", required=True, help="where to keep the private key")
    p.set_defaults(func=cmd_committee_keygen, needs_django=False)
