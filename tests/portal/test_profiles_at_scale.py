"""Company and buyer profiles at a country's size: the database aggregates the figures, a
page shows the newest rows of each table with how many there are, and a download streams
every row instead of building the file in memory. The figures are those the profiles
gave when they read every row in Python."""

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal

import pytest

from sahab.directory.models import Administration, Company
from sahab.procurement import profiles
from sahab.procurement.models import Award, BidLot, Contract, Tender
from sahab.procurement.selectors import OPENED, PUBLIC_STATES


def _downloaded(response) -> str:
    assert response.status_code == 200
    assert response.streaming  # encoded as the rows come, never held whole
    return b"".join(response.streaming_content).decode()


def _year(moment) -> int:
    return moment.year  # UTC's, as the dashboards' years


def _company_years_in_python(company: Company) -> dict[int, tuple]:
    """What the profile computed row by row before the database aggregated it."""
    years = defaultdict(lambda: [set(), 0, 0, Decimal(0), Decimal(0)])
    for p in BidLot.objects.filter(bid__company=company, bid__status__in=OPENED):
        y = years[_year(p.bid.tender.published_at)]
        y[0].add(p.bid.tender_id)
        y[1] += 1
    for a in Award.objects.filter(supplier=company, status=Award.Status.ACTIVE):
        years[_year(a.decided_at)][2] += 1
        years[_year(a.decided_at)][3] += a.value
    for c in Contract.objects.filter(supplier=company):
        years[_year(c.signed_at)][4] += c.value
    return {year: (len(v[0]), v[1], v[2], v[3], v[4]) for year, v in years.items()}


def test_company_figures_are_those_of_every_row_read_one_by_one(demo):
    checked = 0
    for company in Company.objects.all():
        years = profiles.company_profile(company).years
        assert {y["year"]: (y["tenders_bid"], y["lots_bid"], y["lots_won"],
                            Decimal(y["awarded_value"]), Decimal(y["contracted_value"]))
                for y in years} == _company_years_in_python(company)
        checked += bool(years)
    assert checked >= 3  # the demo's suppliers


def test_buyer_figures_and_supplier_shares_are_those_of_every_row(demo):
    checked = 0
    for buyer in Administration.objects.filter(tenders__isnull=False).distinct():
        profile = profiles.buyer_profile(buyer)
        published, signed = defaultdict(Decimal), defaultdict(Decimal)
        for t in Tender.objects.filter(buyer=buyer, state__in=PUBLIC_STATES,
                                       published_at__isnull=False):
            published[_year(t.published_at)] += t.estimated_value
        by_supplier = defaultdict(Decimal)
        for c in Contract.objects.filter(tender__buyer=buyer):
            signed[_year(c.signed_at)] += c.value
            by_supplier[c.supplier.matricule_fiscal] += c.value
        assert {y["year"]: Decimal(y["estimated_value"]) for y in profile.years
                if y["tenders"]} == published
        assert {y["year"]: Decimal(y["contracted_value"]) for y in profile.years
                if y["contracts"]} == signed
        suppliers = list(profile.tables["suppliers"].stream())
        assert {s["matricule_fiscal"]: Decimal(s["value"]) for s in suppliers} == by_supplier
        total = sum(by_supplier.values())
        for s in suppliers:
            assert s["share"] == round(float(by_supplier[s["matricule_fiscal"]] / total), 3)
        assert [Decimal(s["value"]) for s in suppliers] == \
            sorted((Decimal(s["value"]) for s in suppliers), reverse=True)
        checked += bool(suppliers)
    assert checked >= 2


@pytest.fixture
def two_rows_a_page(monkeypatch):
    monkeypatch.setattr(profiles, "PAGE_ROWS", 2)


def _busiest_buyer() -> Administration:
    return max(Administration.objects.filter(tenders__isnull=False).distinct(),
               key=lambda b: Tender.objects.filter(buyer=b, state__in=PUBLIC_STATES).count())


def test_a_page_shows_the_newest_rows_and_says_how_many_the_download_has(
        demo, client, two_rows_a_page):
    buyer = _busiest_buyer()
    tenders = Tender.objects.filter(buyer=buyer, state__in=PUBLIC_STATES) \
        .order_by("-published_at", "-pk")
    assert tenders.count() > 2
    page = client.get(f"/buyers/{buyer.code}/").content.decode()
    newest, older = tenders[:2], tenders[2:]
    for t in newest:
        assert f"/tenders/{t.reference}/" in page
    assert f"/tenders/{older[0].reference}/\">" not in page.split('id="tenders"')[1] \
        .split("</section>")[0]
    assert f"The newest 2 of {tenders.count()} are shown" in page
    rows = list(csv.DictReader(io.StringIO(_downloaded(client.get(
        f"/buyers/{buyer.code}/", {"table": "tenders", "format": "csv"})))))
    assert [r["tender"] for r in rows] == [t.reference for t in tenders]
    listed = json.loads(_downloaded(client.get(f"/buyers/{buyer.code}/",
                                               {"table": "tenders", "format": "json"})))
    assert [r["tender"] for r in listed] == [t.reference for t in tenders]


def test_a_page_reads_as_many_queries_whatever_the_number_of_rows(
        demo, client, two_rows_a_page, django_assert_max_num_queries):
    """Each table is one query for its page and one for its count, never one per row."""
    from sahab.procurement import redflags

    redflags.refresh()  # the worker's run, which pages read (they never compute it)
    buyer = _busiest_buyer()
    supplier = Contract.objects.values_list("supplier", flat=True).first()
    company = Company.objects.get(pk=supplier)
    with django_assert_max_num_queries(16):
        assert client.get(f"/buyers/{buyer.code}/").status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get(f"/companies/{company.matricule_fiscal.replace('/', '')}/"
                          ).status_code == 200


def test_a_download_of_an_unknown_table_or_format_is_the_page(demo, client):
    buyer = _busiest_buyer()
    for query in ({"table": "secrets", "format": "csv"}, {"table": "tenders", "format": "xls"}):
        response = client.get(f"/buyers/{buyer.code}/", query)
        assert response.status_code == 200 and not response.streaming
        assert response["Content-Type"].startswith("text/html")


def test_a_streamed_csv_still_neutralises_formulas(db):
    from sahab.core.downloads import encoded_table

    rows = [{"name": "=HYPERLINK(\"http://x\")", "value": "-12.5"}] * 3000
    text = "".join(encoded_table("csv", iter(rows)))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 3000
    assert {r["name"] for r in parsed} == {"'=HYPERLINK(\"http://x\")"}
    assert {r["value"] for r in parsed} == {"-12.5"}
    assert "".join(encoded_table("csv", iter([]))) == ""
    assert json.loads("".join(encoded_table("json", iter([])))) == []
