"""The dashboards' tables, aggregated by the database, say what counting every tender,
bid and contract one by one says."""

from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connection  # noqa: F401 (read by the skipif condition)

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")  # the bulk loader


def _counted_one_by_one() -> dict:
    from sahab.directory.models import Administration
    from sahab.procurement.models import Bid, Contract, Tender

    top = {a.code: a for a in Administration.objects.all()}
    spending: dict = defaultdict(Decimal)
    for c in Contract.objects.select_related("tender__buyer"):
        ministry = top.get(c.tender.buyer.path.strip("/").split("/")[0], c.tender.buyer)
        spending[(ministry.code, c.signed_at.year)] += c.value
    opened = Counter(Bid.objects.filter(status="opened").values_list("tender_id", flat=True))
    competition: dict = defaultdict(list)
    non_competitive: dict = defaultdict(lambda: [0, 0])
    for t in Tender.objects.all():
        if t.opened_at:
            competition[t.published_at.year].append(opened.get(t.pk, 0))
        if t.published_at and t.state != "cancelled":
            non_competitive[t.published_at.year][0] += 1
            if t.procedure == "negotiated" or (t.opened_at and opened.get(t.pk) == 1):
                non_competitive[t.published_at.year][1] += 1
    return {"spending": spending, "competition": competition,
            "non_competitive": non_competitive}


@postgres_only
def test_dashboard_tables_match_counting_every_row(sahab_home):
    from bench.bench_national import fill

    from sahab.procurement import dashboard

    fill(0.00005, progress=False)  # 50 tenders over five years, 1 to 5 bids each
    expected = _counted_one_by_one()

    spending = {(r["code"], r["year"]): Decimal(r["contracted_value"])
                for r in dashboard.spending()}
    assert spending == expected["spending"]
    competition = dashboard.competition()
    assert [r["year"] for r in competition] == sorted(expected["competition"])
    for row in competition:
        bids = expected["competition"][row["year"]]
        assert row["tenders_opened"] == len(bids)
        assert row["average_bids"] == round(sum(bids) / len(bids), 2)
        assert (row["single_bid"], row["two_bids"], row["three_bids"], row["no_bid"]) == (
            bids.count(1), bids.count(2), bids.count(3), bids.count(0))
        assert row["four_or_more"] == sum(1 for b in bids if b >= 4)
    assert {r["year"]: [r["tenders"], r["non_competitive"]]
            for r in dashboard.non_competitive()} == expected["non_competitive"]
    assert sum(r["single_bid"] for r in competition) > 0
    assert sum(r["non_competitive"] for r in dashboard.non_competitive()) > 0


def test_dashboard_page_and_tables_on_any_database(client):
    from django.utils import timezone

    from sahab.procurement import dashboard
    from sahab.procurement.models import Tender
    from tests import factories

    ministry = factories.administration()
    first = factories.framework_contract(buyer=ministry, supplier=factories.company()[0],
                                         value="700")
    factories.framework_contract(buyer=ministry, supplier=factories.company()[0], value="300")
    Tender.objects.filter(pk=first.tender_id).update(opened_at=timezone.now())

    assert [(r["code"], r["contracted_value"]) for r in dashboard.spending()] == [
        (ministry.code, "1000.000")]
    [row] = dashboard.competition()
    assert (row["tenders_opened"], row["single_bid"], row["average_bids"]) == (1, 1, 1.0)
    [row] = dashboard.non_competitive()
    assert (row["tenders"], row["non_competitive"], row["share_of_value"]) == (2, 1, 0.7)
    assert client.get("/tenders/dashboard/").status_code == 200
    for table in dashboard.TABLES:
        assert client.get(f"/tenders/dashboard/?table={table}&format=json").status_code == 200


def test_flags_over_time_lists_every_month_between_the_first_and_the_last():
    """A month without a flag is a zero in the series, not a gap the bars would hide."""
    from sahab.procurement.dashboard import _month_range

    assert _month_range("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert _month_range("2026-03", "2026-03") == ["2026-03"]
    assert _month_range("", "") == []
