"""An opening of any size: the full report is a public document whose SHA-256 the ledger
entry records, so a tender with hundreds of bids opens, lists every bid, and anyone
checks it; a report with one commitment removed or altered does not verify."""

import datetime as dt
import hashlib
import json

import pytest
import time_machine

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import OPENING_REPORT, Tender, TenderDocument
from sahab.procurement.verify import OpeningFailure, verify_opening
from tests import factories
from tests.procurement.bidding import opening_report
from tests.procurement.conftest import publish, tender_payload

BIDS = 300


def _published(world) -> Tender:
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(world["officer"], ref).status_code == 200
    return Tender.objects.get(reference=ref)


def _open(tender: Tender) -> None:
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        assert services.advance_tenders() == [f"{tender.reference}: closed",
                                              f"{tender.reference}: opened"]
    ledger.checkpoint_if_grown()


def _verify(tender: Tender, wsgi_http):
    return verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                          client=wsgi_http)


@pytest.fixture
def crowded(world) -> Tender:
    """A tender that ``BIDS`` companies bid on, sealed and signed each on its side."""
    tender = _published(world)
    for i in range(BIDS):
        _, member = factories.company()
        factories.submit_sealed(tender, member.user, {"1": f"{100000 + i}.500"})
    _open(tender)
    return tender


@pytest.mark.slow
def test_a_tender_with_300_sealed_bids_opens_lists_every_bid_and_verifies(crowded,
                                                                           wsgi_http):
    entry = Entry.objects.get(type="procurement.tender.opened",
                              subject=f"tender:{crowded.reference}")
    data = json.loads(bytes(entry.body))["data"]
    assert data["counts"] == {"commitments": BIDS, "opened": BIDS, "rejected": 0,
                              "missing": 0, "unconfirmed": 0}
    assert len(bytes(entry.body)) < 1024  # the entry is small whatever the number of bids

    report = opening_report(crowded)
    assert len(report["commitments"]) == len(report["bids"]) == BIDS
    assert {b["prices"]["1"] for b in report["bids"]} == {f"{100000 + i}.500"
                                                         for i in range(BIDS)}
    assert crowded.bids.filter(status="opened").count() == BIDS

    # anyone downloads it from public URLs and finds the hash the ledger recorded
    served = wsgi_http.get(f"http://testserver/api/procurement/tenders/{crowded.reference}"
                           "/opening/report")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == data["report"]["sha256"]
    document = crowded.documents.get(name=OPENING_REPORT)
    page = wsgi_http.get(f"http://testserver/tenders/{crowded.reference}/documents/"
                         f"{document.pk}")
    assert page.content == served.content

    result = _verify(crowded, wsgi_http)
    assert len(result.opened) == BIDS and not result.rejected and not result.missing


def _rewrite(tender: Tender, change) -> None:
    """An insider rewrites the stored report (the ledger entry cannot be rewritten)."""
    document = tender.documents.get(name=OPENING_REPORT)
    report = json.loads(bytes(document.content))
    change(report)
    content = json.dumps(report, sort_keys=True, separators=(",", ":")).encode()
    TenderDocument.objects.filter(pk=document.pk).update(
        content=content, size=len(content), sha256=hashlib.sha256(content).hexdigest())


@pytest.mark.parametrize("change", [
    lambda r: r["commitments"].pop(1),
    lambda r: r["commitments"][0].update(commitment="0" * 64),
    lambda r: r["bids"].pop(),
    lambda r: r["bids"][0]["prices"].update({"1": "1.000"}),
], ids=["commitment removed", "commitment altered", "bid removed", "price altered"])
def test_a_report_with_a_commitment_removed_or_altered_does_not_verify(world, wsgi_http,
                                                                       change):
    tender = _published(world)
    for (_, company), prices in zip(world["companies"], ({"1": "10"}, {"1": "20"},
                                                         {"1": "30"}), strict=True):
        factories.submit_sealed(tender, company.user, prices)
    _open(tender)
    assert len(_verify(tender, wsgi_http).opened) == 3
    _rewrite(tender, change)
    with pytest.raises(OpeningFailure, match="SHA-256 differs"):
        _verify(tender, wsgi_http)


def test_a_report_that_leaves_out_a_committed_bid_does_not_verify(world, wsgi_http,
                                                                  monkeypatch):
    """Even with its hash on the ledger: the verifier counts commitments on the ledger."""
    tender = _published(world)
    for (_, company), prices in zip(world["companies"], ({"1": "10"}, {"1": "20"}),
                                    strict=False):
        factories.submit_sealed(tender, company.user, prices)
    honest = services._ledger_bids

    def forgetful(*args, **kwargs):
        live, entries, unconfirmed = honest(*args, **kwargs)
        live.pop(next(iter(live)))
        return live, entries, unconfirmed

    monkeypatch.setattr(services, "_ledger_bids", forgetful)
    _open(tender)
    with pytest.raises(OpeningFailure, match="not the ledger's live ones"):
        _verify(tender, wsgi_http)


def test_a_mirror_past_the_bids_gets_them_with_the_opening(world, client):
    """Bid steps become public at the opening, with ledger indexes below a mirror's
    cursor: the changes feed lists them just before the tender's opening."""
    tender = _published(world)
    for (_, company), prices in zip(world["companies"], ({"1": "10"}, {"1": "20"}),
                                    strict=False):
        factories.submit_sealed(tender, company.user, prices)
    page = client.get("/api/procurement/changes", {"limit": 1000}).json()
    assert not [i for i in page["items"] if i["type"].startswith("bid.")]
    cursor = page["next_cursor"]
    _open(tender)
    seen = []
    while True:
        page = client.get("/api/procurement/changes", {"cursor": cursor, "limit": 1}).json()
        if not page["items"]:
            break
        seen += [i["type"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen[0] == "tender.tendering_closed"
    assert seen[-3:] == ["bid.submitted", "bid.submitted", "tender.opened"]
