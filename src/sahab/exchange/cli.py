"""``sahab exchange …``: the gateway's processes and the demo's provider systems."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("exchange", help="the exchange gateway and the demo's providers")
    commands = p.add_subparsers(dest="exchange_command", required=True, metavar="COMMAND")
    g = commands.add_parser("gateway", help="run the X-Road REST gateway (plain and TLS ports)")
    g.add_argument("--processes", type=int, help="processes sharing the ports "
                                                 "(default SAHAB_EXCHANGE_GATEWAY_PROCESSES)")
    g.set_defaults(func=cmd_gateway)
    d = commands.add_parser("demo-providers", help="run the demo's two provider systems")
    d.set_defaults(func=cmd_demo_providers)
    r = commands.add_parser("retry-refused", help="put the log records the ledger refused "
                                                  "back in its backlog")
    r.set_defaults(func=cmd_retry_refused)
    v = commands.add_parser("verify-log", help="compare every logged record of the message "
                                               "log with its ledger entry, and look for "
                                               "records missing from the ledger")
    v.set_defaults(func=cmd_verify_log)


def cmd_gateway(args) -> int:
    from sahab.exchange import gateway

    gateway.serve(processes=args.processes)
    return 0


def cmd_demo_providers(args) -> int:
    from sahab.exchange import demo_providers

    demo_providers.serve()
    return 0


def cmd_retry_refused(args) -> int:
    from sahab.directory.selectors import SYSTEM
    from sahab.exchange import messagelog

    print(f"{messagelog.retry_refused(actor=SYSTEM)} records back in the backlog")
    return 0


def cmd_verify_log(args) -> int:
    """Exit 1, naming them, when records disagree with the ledger or lack the gateway's
    MAC (edited, inserted or marked as logged in the database)."""
    from django.utils.translation import gettext as _

    from sahab.exchange import messagelog

    found = messagelog.disagreements()
    for pk, why in found:
        print(_("record %(id)s: %(why)s") % {"id": pk, "why": why}, file=sys.stderr)
    if found:
        print(_("Records of the message log that disagree with the ledger: %(n)d.") % {
            "n": len(found)}, file=sys.stderr)
    holes, twice = messagelog.gaps()
    for run, first, last in holes:
        print(_("gateway process %(run)s: records %(first)d to %(last)d are missing from "
                "the ledger") % {"run": run, "first": first, "last": last}, file=sys.stderr)
    for run, number in twice:
        print(_("gateway process %(run)s: record %(number)d is on the ledger twice") % {
            "run": run, "number": number}, file=sys.stderr)
    if holes or twice:
        print(_("Records missing from the ledger (deleted in the database, or never "
                "written there): "
                "%(n)d; logged twice: %(twice)d.") % {
            "n": sum(last - first + 1 for _run, first, last in holes),
            "twice": len(twice)}, file=sys.stderr)
    if found or holes or twice:
        return 1
    print(_("Every logged record of the message log agrees with the ledger, and none is "
            "missing."))
    return 0


def children() -> list[tuple[str, list[str]]]:
    """What ``sahab serve`` runs for the exchange: the gateway, and the demo's providers
    where the demo was loaded."""
    from sahab.exchange import demo_providers, gateway

    gateway.prepare_keys()
    python = [sys.executable, "-m", "sahab.cli", "exchange"]
    found = [("exchange-gateway", [*python, "gateway"])]
    if demo_providers.enabled():
        found.append(("exchange-demo", [*python, "demo-providers"]))
    return found
