"""``sahab cloud``: the FOCUS cost export and the cloud timers, from the command line."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path


def _usage(args):
    from django.utils import timezone

    from sahab.cloud.errors import CloudError
    from sahab.cloud.models import UsageRecord
    from sahab.core.errors import CoreError, InvalidInput

    usage = UsageRecord.objects.all()
    tz = timezone.get_current_timezone()
    for name, op in (("since", "gte"), ("until", "lt")):
        value = getattr(args, name, None)
        if value:
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                raise InvalidInput(CloudError.DATE_OPTION_INVALID, option=name) from None
            usage = usage.filter(**{f"period_start__{op}": dt.datetime.combine(
                day, dt.time(), tzinfo=tz)})
    if getattr(args, "administration", None):
        from sahab.directory.models import Administration

        administration = Administration.objects.filter(code=args.administration).first()
        if administration is None:
            raise InvalidInput(CoreError.NO_ADMINISTRATION, code=args.administration)
        usage = usage.filter(administration__path__startswith=administration.path)
    return usage


def cmd_focus_export(args) -> int:
    from tqdm import tqdm

    from sahab.cloud import focus

    out = Path(args.out)
    usage = _usage(args)
    bar = tqdm(unit=" rows", file=sys.stderr, disable=args.quiet)
    try:
        rows = focus.write(out, usage, progress=bar)
    except OSError as exc:
        bar.close()
        print(f"sahab cloud focus-export: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(f"{rows} FOCUS 1.2 cost rows (TND) written to {out}")
    return 0


def cmd_meter(args) -> int:
    from tqdm import tqdm

    from sahab.cloud import metering

    bar = tqdm(unit=" instances", file=sys.stderr, disable=args.quiet)
    created = metering.meter_usage(progress=bar.update)
    bar.close()
    print(f"{created} hourly usage records created")
    return 0


def cmd_refresh(args) -> int:
    from sahab.cloud import services
    from sahab.cloud.models import Broker

    status = 0
    for broker in Broker.objects.select_related("provider__company"):
        broker = services.refresh_catalog(broker)
        state = f"error: {broker.catalog_error}" if broker.catalog_error else "read"
        print(f"{broker.provider.company.name}: {broker.url} — {state}")
        status = status or (1 if broker.catalog_error else 0)
    return status


def register(sub) -> None:
    cloud = sub.add_parser("cloud", help="the cloud marketplace")
    cmds = cloud.add_subparsers(dest="cloud_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("focus-export", help="cost and usage as a FOCUS 1.2 CSV file")
    p.add_argument("--out", required=True, help="the CSV file to write")
    p.add_argument("--since", help="first day (YYYY-MM-DD), inclusive")
    p.add_argument("--until", help="last day (YYYY-MM-DD), exclusive")
    p.add_argument("--administration", help="an administration's code (with its units)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_focus_export)
    p = cmds.add_parser("meter", help="bill the complete hours not yet metered")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_meter)
    p = cmds.add_parser("refresh-catalogs", help="read every broker's catalogue again")
    p.set_defaults(func=cmd_refresh)
