"""``sendmail`` for Dovecot's Sieve (vacation replies, redirects).

Dovecot's delivery agent runs as the mail account, which may be unable to start sahab's
Python: the program it runs is a small shell script (written next to Dovecot's
configuration) that puts the message and its arguments in the Sieve outbox, durably.
The worker sends what it finds there (``outbound.send_sieve_outbox``).

sahab runs the delivery agent for one mailbox at a time and tells the script which
(``OWNER_PREFIX`` on the first line of the arguments): a script may write any ``From:``
(Sieve's ``vacation :from``, ``notify :from``), and the worker signs only what that
mailbox may send as.
"""

from __future__ import annotations

SCRIPT = """#!/bin/sh
# Written by sahab: Dovecot's sendmail for Sieve replies. The message and its arguments
# go to the outbox given first, with the mailbox whose filters made them (given second,
# "-" when unknown); sahab's worker signs and sends what that mailbox may send.
set -eu
outbox="$1"
owner="$2"
shift 2
name="$(date +%s).$$"
umask 077
cat > "$outbox/.$name.eml"
{ printf 'mailbox=%s\\n' "$owner"; printf '%s\\n' "$@"; } > "$outbox/.$name.args"
sync "$outbox/.$name.eml" "$outbox/.$name.args"
mv "$outbox/.$name.eml" "$outbox/$name.eml"
mv "$outbox/.$name.args" "$outbox/$name.args"
"""


OWNER_PREFIX = "mailbox="


def parse_outbox_arguments(lines: list[str]) -> tuple[str, str, list[str]]:
    """(mailbox whose filters wrote the message, or "", envelope sender, recipients) from
    an ``.args`` file of the Sieve outbox."""
    owner = ""
    if lines and lines[0].startswith(OWNER_PREFIX):
        owner = lines[0].removeprefix(OWNER_PREFIX).strip().lower()
        lines = lines[1:]
    sender, recipients = parse_arguments(lines)
    return ("" if owner == "-" else owner), sender, recipients


def parse_arguments(argv: list[str]) -> tuple[str, list[str]]:
    """(envelope sender, recipients) from sendmail's arguments (``-f``, ``-i``, ``--``)."""
    sender, recipients, rest = "", [], iter(argv)
    for arg in rest:
        if arg == "--":
            recipients.extend(rest)
            break
        if arg == "-f":
            sender = next(rest, "")
        elif arg.startswith("-f"):
            sender = arg[2:]
        elif arg.startswith("-"):
            continue  # -i and the like: the message ends at the end of the input
        else:
            recipients.append(arg)
    return sender.strip().strip("<>"), recipients
