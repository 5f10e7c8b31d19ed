"""``sahab mail …``: the SMTP server, Dovecot's configuration, receipts, the queue."""

from __future__ import annotations

import sys


def register(sub) -> None:
    mail = sub.add_parser("mail", help="mail: SMTP server, IMAP configuration, receipts")
    commands = mail.add_subparsers(dest="mail_command", required=True, metavar="COMMAND")
    p = commands.add_parser("smtp", help="run the SMTP relay and submission listeners")
    p.add_argument("--smtp-port", type=int, help="relay/MX port (default SAHAB_SMTP_PORT)")
    p.add_argument("--submission-port", type=int,
                   help="submission port (default SAHAB_SUBMISSION_PORT)")
    p.add_argument("--smtps-port", type=int,
                   help="submission over implicit TLS (default SAHAB_SMTPS_PORT)")
    p.set_defaults(func=cmd_smtp)
    p = commands.add_parser("dovecot-config", help="write Dovecot's configuration and users")
    p.set_defaults(func=cmd_dovecot_config)
    p = commands.add_parser("verify-receipt",
                            help="check a registered-mail receipt offline (no installation)")
    p.add_argument("file", help="the receipt document (text file)")
    p.add_argument("--key", required=True,
                   help="the receipts verifier key (shown on /mail/receipts/key)")
    p.set_defaults(func=cmd_verify_receipt, needs_django=False)
    p = commands.add_parser("queue", help="show the outbound queue")
    p.set_defaults(func=cmd_queue)


def cmd_smtp(args) -> int:
    from sahab.mail import smtp

    smtp.serve(smtp_port=args.smtp_port, submission_port=args.submission_port,
               smtps_port=args.smtps_port)
    return 0


def cmd_dovecot_config(args) -> int:
    from sahab.mail import dovecot

    print(dovecot.write_config())
    return 0


def cmd_verify_receipt(args) -> int:
    from sahab.cli import CommandError
    from sahab.ledger.note import NoteError
    from sahab.mail.receipts import verify_receipt

    try:
        with open(args.file, "rb") as f:
            fields = verify_receipt(f.read(), args.key)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except (NoteError, ValueError) as exc:
        raise CommandError(f"the receipt does NOT verify: {exc}") from None
    print("the receipt verifies: signed by " + args.key.split("+", 1)[0])
    for key, value in fields.items():
        print(f"  {key:<15} {value}")
    return 0


def cmd_queue(args) -> int:
    from sahab.mail.models import OutboundMessage

    rows = OutboundMessage.objects.filter(state=OutboundMessage.State.QUEUED)
    for row in rows:
        print(f"{row.pk:>6} {row.created_at:%Y-%m-%d %H:%M} {row.sender} → {row.recipient} "
              f"({row.attempts} attempts) {row.last_error}")
    print(f"{rows.count()} message(s) waiting", file=sys.stderr)
    return 0
