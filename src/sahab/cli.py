"""The ``sahab`` command: set up, load the demo, serve, and operate the platform."""

from __future__ import annotations

import argparse
import os
import sys


class CommandError(Exception):
    """A refusal to show the operator as one line, with exit status 2."""


def operator_language() -> str:
    """The language of the operator's locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
    ``LANG``), or English when sahab does not speak it: refusals are shown in it."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(name, "").split(":")[0]:
            language = value.split(".")[0].split("_")[0].lower()
            return language if language in ("fr", "ar", "en") else "en"
    return "en"


def _show_refusal(command: str, exc: Exception) -> None:
    """A domain error renders its message when read: here, in the operator's language (the
    platform's default language is that of its web pages)."""
    from django.conf import settings

    if not settings.configured:
        print(f"sahab {command}: {exc}", file=sys.stderr)
        return
    from django.utils import translation

    with translation.override(operator_language()):
        print(f"sahab {command}: {exc}", file=sys.stderr)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sahab.settings")
    import django

    django.setup()


def cmd_init(args) -> int:
    from sahab.core.setup import initialise

    for line in initialise(verbose=True):
        print(line)
    return 0


def _count(value: str) -> int:
    """A whole number from 0 to 100,000, or a usage error naming the value."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 100000, "
                                         f"not {value!r}")
    return number


def cmd_demo(args) -> int:
    import logging

    from sahab.core.demo import load_demo, print_summary
    from sahab.core.setup import initialise

    if "SAHAB_LOG_LEVEL" not in os.environ:  # the demo's own requests are no news to anyone
        logging.getLogger().setLevel(logging.WARNING)
    if args.tenders is not None:
        from django.conf import settings

        settings.DEMO_TENDERS = args.tenders
    for line in initialise(verbose=False):
        print(line)
    data = load_demo()
    print_summary(data)
    return 0


def cmd_worker(args) -> int:
    from django.core.management import call_command

    from sahab.core.scheduler import SchedulerThread
    from sahab.ops import heartbeats

    scheduler = SchedulerThread()
    scheduler.start()
    try:  # the id its heartbeats carry: another worker can tell when this one died
        call_command("db_worker", interval=args.interval, verbosity=1,
                     worker_id=heartbeats.worker_id())
    finally:
        scheduler.stopped.set()
    return 0


def _control_socket_options() -> list[str]:
    """gunicorn's control socket in this instance's own SAHAB_HOME, owner only: never the
    one default socket in the home directory that every instance on a host would share."""
    from sahab.core import localfiles

    path = localfiles.private_dir("run") / "gunicorn.ctl"
    return ["--control-socket", str(path), "--control-socket-mode", "384"]  # 0o600


def _children(args) -> list[tuple[str, list[str]]]:
    from django.conf import settings

    python = sys.executable
    web = [python, "-m", "gunicorn", "sahab.wsgi:application",
           "--bind", f"127.0.0.1:{args.port or settings.HTTP_PORT}",
           "--workers", str(args.workers), "--threads", "4",
           "--graceful-timeout", "10", *_control_socket_options()]
    worker = [python, "-m", "sahab.cli", "worker"]
    smtp = [python, "-m", "sahab.cli", "mail", "smtp"]
    from sahab.exchange.cli import children as exchange

    children = [("web", web), *exchange(), ("worker", worker), ("smtp", smtp)]
    from sahab.ledger.demo import witness_command

    if (witness := witness_command()) is not None:  # the witness the demo set up beside us
        children.append(("witness", witness))
    from sahab.mail import dovecot

    imap = dovecot.command(web_port=args.port)  # Dovecot calls the web back (auth policy)
    if imap is not None:
        children.append(("imap", imap))
    else:
        print("sahab serve: Dovecot is not installed (apt-get install dovecot-imapd): "
              "no IMAP; the webmail works without it", file=sys.stderr, flush=True)
    return children


def cmd_serve(args) -> int:
    """Run every listener and the worker as child processes; restart any that dies."""
    from sahab.ops import metrics
    from sahab.ops.supervisor import Supervisor

    env = metrics.prepare_multiprocess_dir(dict(os.environ))
    return Supervisor(_children(args), env=env).run()


def cmd_manage(args) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["sahab manage", *args.rest])
    return 0


def cmd_errors(args) -> int:
    """Print every error code with its status and message (docs/errors.md)."""
    from sahab.core import error_codes

    print(error_codes.markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sahab", description="sahab: the government cloud platform of Tunisia's "
                                  "administrations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create the database, keys and TLS certificate")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("demo", help="init, then load the demo data and write demo.json")
    p.add_argument("--tenders", type=_count, metavar="N",
                   help="tenders to load in a first demo: its planted cases, then ordinary "
                        "purchases up to N (default SAHAB_DEMO_TENDERS or 200)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="run the web, SMTP and IMAP servers and the worker")
    p.add_argument("--port", type=int, help="HTTP port (default SAHAB_HTTP_PORT or 8000)")
    p.add_argument("--workers", type=int, default=2, help="web worker processes (default 2)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("worker", help="run the background worker and timers only")
    p.add_argument("--interval", type=float, default=0.5, help="queue polling interval (s)")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("errors", help="list the error codes (docs/errors.md)")
    p.set_defaults(func=cmd_errors)
    p = sub.add_parser("manage", help="Django management commands (migrate, createsuperuser…)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    for register in _pillar_commands():
        register(sub)
    return parser


def _pillar_commands():
    """Each pillar may add its own sub-commands (``register(subparsers)``)."""
    from sahab.cloud.cli import register as cloud
    from sahab.exchange.cli import register as exchange
    from sahab.ledger.cli import register as ledger
    from sahab.mail.cli import register as mail
    from sahab.ops.cli import register as ops
    from sahab.procurement.cli import register as ocds

    return [ledger, ocds, cloud, mail, exchange, ops]


def main(argv: list[str] | None = None) -> int:
    # Whatever sahab creates (database, keys, Maildirs, sockets) is its owner's only; the
    # caller's umask comes back afterwards (main also runs inside other programs' tests).
    previous_umask = os.umask(0o077)
    try:
        return _run(argv)
    finally:
        os.umask(previous_umask)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "needs_django", True):  # the auditor's tools run without an installation
        setup_django()
    from sahab.core.errors import DomainError

    try:
        return args.func(args) or 0
    except (CommandError, DomainError) as exc:
        _show_refusal(args.command, exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the module's own copy, so that ``except CommandError`` catches what pillars raise.
    from sahab.cli import main as sahab_main

    sys.exit(sahab_main())
