"""``sendmail`` for Dovecot's Sieve (vacation replies, redirects).

Dovecot's delivery agent runs as the mail account, which may be unable to start sahab's
Python: the program it runs is a small shell script (written next to Dovecot's
configuration) that puts the message and its arguments in the Sieve outbox, durably.
The worker sends what it finds there (``outbound.send_sieve_outbox``).
"""

from __future__ import annotations

SCRIPT = """#!/bin/sh
# Written by sahab: Dovecot's sendmail for Sieve replies. The message and its arguments
# go to the outbox given first; sahab's worker signs and sends them.
set -eu
outbox="$1"
shift
name="$(date +%s).$$"
umask 077
cat > "$outbox/.$name.eml"
printf '%s\\n' "$@" > "$outbox/.$name.args"
sync "$outbox/.$name.eml" "$outbox/.$name.args"
mv "$outbox/.$name.eml" "$outbox/$name.eml"
mv "$outbox/.$name.args" "$outbox/$name.args"
"""


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
