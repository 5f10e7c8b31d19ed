"""What an insider with the database's owner rights does: lift the ledger's guard
triggers (as ``ALTER TABLE … DISABLE TRIGGER`` or dropping them would) and rewrite rows.
Tests use it to play the attacker the signer, the witnesses and the auditors must catch."""

import contextlib

from django.db import connection

from sahab.ledger import guard, merkle
from sahab.ledger.models import Entry, LogState, Node, node_key


@contextlib.contextmanager
def as_database_owner():
    with guard.suspended(connection):
        yield


def recompute_tree() -> None:
    """Rebuild every stored node and the frontier from the entries as they are now, so
    that the tree is consistent with an edited entry (what a careful forger does)."""
    with as_database_owner():
        Node.objects.all().delete()
        frontier = merkle.CompactRange()
        nodes = []
        for body in Entry.objects.order_by("index").values_list("body", flat=True):
            nodes.extend(Node(key=node_key(level, i), hash=h)
                         for level, i, h in frontier.append(merkle.leaf_hash(bytes(body))))
        Node.objects.bulk_create(nodes)
        LogState.objects.update(size=frontier.size, frontier=frontier.to_bytes())


def forget_signer_record() -> None:
    """Root on the signer's machine: delete the record the signer keeps of what it signed
    (after which the signer signs whatever the database holds: only witnesses and
    auditors who kept state can still tell)."""
    import shutil

    from sahab.ledger import signing

    shutil.rmtree(signing.signer_dir(), ignore_errors=True)
