"""``flush`` empties the whole database, the ledger included.

It is the one operation that lifts the ledger's append-only guard (for its own
transaction only), because the test framework resets the database with it between
transactional tests. On a live installation it is the equivalent of losing the
database: the signer then refuses to sign the emptied log, and every witness and auditor
reports the roll-back, until an operator knowingly accepts it
(``sahab ledger accept-restore``).
"""

from django.core.management.commands import flush
from django.db import connections

from sahab.ledger import guard


class Command(flush.Command):
    help = (flush.Command.help + " The ledger's append-only guard is lifted for this "
            "transaction only; the checkpoint signer will refuse the emptied log.")

    def handle(self, **options):
        with guard.suspended(connections[options["database"]]):
            return super().handle(**options)
