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


def register(sub) -> None:
    ocds = sub.add_parser("ocds", help="Open Contracting Data Standard publication")
    cmds = ocds.add_subparsers(dest="ocds_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("export", help="write every release (or record) to a package file")
    p.add_argument("--records", action="store_true", help="records instead of releases")
    p.add_argument("--out", required=True, help="the file (compressed when it ends in .gz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)
