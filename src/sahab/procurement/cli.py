"""``sahab ocds export``: the whole OCDS data set to a file, with a progress bar."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path


def cmd_export(args) -> int:
    from django.conf import settings
    from tqdm import tqdm

    from sahab.procurement import ocds
    from sahab.procurement.models import Release

    out = Path(args.out)
    kind = "records" if args.records else "releases"
    total = (Release.objects.values("ocid").distinct().count() if args.records
             else Release.objects.count())
    items = ocds.iter_records() if args.records else ocds.iter_releases()
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


def register(sub) -> None:
    ocds = sub.add_parser("ocds", help="Open Contracting Data Standard publication")
    cmds = ocds.add_subparsers(dest="ocds_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("export", help="write every release (or record) to a package file")
    p.add_argument("--records", action="store_true", help="records instead of releases")
    p.add_argument("--out", required=True, help="the file (compressed when it ends in .gz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("redflags", help="compute the red flags of a public OCDS file")
    p.add_argument("--from-ocds", required=True, metavar="FILE",
                   help="a release or record package (or JSON lines), gzip or not")
    p.add_argument("--explain", action="store_true",
                   help="one line per flag with its explanation, instead of JSON")
    p.set_defaults(func=cmd_redflags)
