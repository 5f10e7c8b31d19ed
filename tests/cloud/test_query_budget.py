"""Query budget of an order placed through the API (see tests/procurement's budget)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.cloud.test_api import Caller

# token and agent, the plan, its offering, broker and contract price, the budget, the
# order number, the order, its pending ledger entry; for an order to approve, its
# approvers (the finance agents of the ministry, their roles, their mailboxes: three,
# however many) and which of them turned approval notices off (one, however many); the
# token brings its user's agent and administration along. The paying budget is read
# locked (the same one query), so that two orders on one budget are checked one after
# the other; the order's number, pending entry and row are written in a savepoint (two),
# retried with the next number when another budget's order took it. The order's entry
# and its instance's are written pending, without the ledger's lock: 28 before, when
# each was appended to the tree in the request (the append's lock, its look for pending
# entries committed before it, the tree's nodes and size)
ORDER_PLACEMENT = 22


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
