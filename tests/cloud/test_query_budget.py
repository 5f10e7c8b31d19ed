"""Query budget of an order placed through the API (see tests/procurement's budget)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.cloud.test_api import Caller

# token and agent, the plan, its offering, broker and contract price, the budget, the
# order number, the order, its ledger entry; for an order to approve, its approvers (the
# finance agents of the ministry, their roles, their mailboxes: three, however many) and
# which of them turned approval notices off (one, however many); and since the ledger has
# a sequencer, the append's look for pending entries committed before it (one); the token
# brings its user's agent and administration along (two fewer than before, 28: 26). The
# paying budget is read locked (the same one query), so that two orders on one budget are
# checked one after the other; the order's number, ledger entry and row are written in a
# savepoint (two), retried with the next number when another budget's order took it
ORDER_PLACEMENT = 28


def test_an_order_through_the_api_stays_within_its_query_budget(market):
    it = Caller(market.it)
    plan = Caller()("get", "/catalogue").json()[1]["plan"]
    counts = []
    for purpose in ("GRH", "Paie", "Archives"):
        with CaptureQueriesContext(connection) as queries:
            placed = it("post", "/orders", json={"plan": plan, "purpose": purpose,
                                                 "parameters": {"environment": "production"}})
        assert placed.status_code == 201, placed.json()
        counts.append(len(queries.captured_queries))
    assert max(counts[1:]) <= ORDER_PLACEMENT, counts
