"""Query budget of a message delivered to a hosted mailbox (see tests/procurement's)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sahab.mail import delivery, routing

# none: the routing table lives in memory (reloaded when it changes) and delivery writes
# only the Maildir
DELIVERY = 0


def test_a_local_delivery_stays_within_its_query_budget(world):
    table = routing.load()
    sender, to = world.alice_box.address, world.bob_box.address
    counts = []
    for n in range(3):
        data = (f"From: {sender}\r\nTo: {to}\r\nSubject: note {n}\r\n\r\nhello\r\n").encode()
        with CaptureQueriesContext(connection) as queries:
            accepted = delivery.accept(delivery.Submission(sender, [to], data), table,
                                       sign=True)
        assert accepted.delivered == [to] or set(accepted.delivered) == {to}
        counts.append(len(queries.captured_queries))
    assert max(counts[1:]) <= DELIVERY, counts
