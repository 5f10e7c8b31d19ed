"""A journalist follows a company and a buyer through every contract; anyone follows a
CPV code, a buyer, a company or a search by e-mail (through sahab's mail) or Atom."""

import csv
import datetime as dt
import email
import email.policy
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from sahab.directory.models import Company
from sahab.directory.selectors import SYSTEM
from sahab.mail.models import Mailbox, OutboundMessage
from sahab.portal import alerts
from sahab.portal.models import Subscription
from sahab.procurement import services
from sahab.procurement.models import Contract, Tender
from tests import factories


def _streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_a_journalist_follows_a_company_from_search_to_profile_to_contracts(demo, client):
    found = client.get("/companies/", {"q": "sahel"}).content.decode()
    sahel = Company.objects.get(name="Sahel Informatique")
    slug = sahel.matricule_fiscal.replace("/", "")
    assert f"/companies/{slug}/" in found
    # the matricule finds it too, with or without slashes
    assert f"/companies/{slug}/" in client.get("/companies/", {"q": sahel.matricule_fiscal[:8]
                                                              }).content.decode()
    page = client.get(f"/companies/{slug}/").content.decode()
    contracts = Contract.objects.filter(supplier=sahel)
    assert contracts.exists()
    for c in contracts:
        assert f"/tenders/{c.tender.reference}/#contract-{c.pk}" in page
        assert f'id="contract-{c.pk}"' in client.get(f"/tenders/{c.tender.reference}/") \
            .content.decode()
    table = list(csv.DictReader(io.StringIO(_streamed(client.get(
        f"/companies/{slug}/", {"table": "contracts", "format": "csv"})))))
    assert {r["tender"] for r in table} == {c.tender.reference for c in contracts}
    years = json.loads(_streamed(client.get(f"/companies/{slug}/",
                                            {"table": "years", "format": "json"})))
    assert sum(float(y["contracted_value"]) for y in years) == \
        pytest.approx(float(sum(c.value for c in contracts)))
    assert client.get("/companies/0000000A/").status_code == 404


def test_the_buyer_page_shows_its_tenders_contracts_suppliers_and_flags(demo, client):
    page = client.get("/buyers/COM-TUNIS/").content.decode()
    assert "S01" in page  # purchases split under the simplified threshold
    suppliers = json.loads(_streamed(client.get("/buyers/COM-TUNIS/", {
        "table": "suppliers", "format": "json"})))
    assert suppliers and suppliers[0]["share"] >= suppliers[-1]["share"]
    tender = Tender.objects.filter(buyer__code="COM-TUNIS", state="complete").first()
    # linked from the tender page and the tender list
    assert "/buyers/COM-TUNIS/" in client.get(f"/tenders/{tender.reference}/").content.decode()
    assert "/buyers/COM-TUNIS/" in client.get("/tenders/").content.decode()


def test_search_by_company_finds_opened_and_won_tenders_but_never_a_sealed_bid(demo, client):
    ongoing = Tender.objects.get(title__startswith="Renouvellement du parc")
    assert ongoing.bids.filter(company__name="Djerba Digital").exists()  # sealed
    rows = list(csv.DictReader(io.StringIO(client.get(
        "/tenders/", {"q": "Djerba Digital", "format": "csv"}).content.decode())))
    references = {r["reference"] for r in rows}
    assert ongoing.reference not in references
    won = Tender.objects.get(title__startswith="Audit de sécurité")
    assert won.reference in references
    row = next(r for r in rows if r["reference"] == won.reference)
    assert row["winners"] == "Djerba Digital"
    assert float(row["awarded_value"]) == 84000.0
    matricule = Company.objects.get(name="Djerba Digital").matricule_fiscal
    by_matricule = client.get("/tenders/", {"q": matricule, "format": "json"}).json()
    assert {r["reference"] for r in by_matricule} == references


def _messages(address: str) -> list[email.message.Message]:
    """The mailbox's new messages in delivery order (Maildir names do not sort by time:
    their microseconds are not zero-padded)."""
    home = Mailbox.objects.get(address=address).home
    paths = sorted((home / "Maildir" / "new").glob("*"),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in paths]


def _new_tender(title: str, cpv: str) -> Tender:
    from sahab.directory.models import Administration

    now = timezone.now()
    tender = services.create_tender(
        actor=SYSTEM, buyer=Administration.objects.get(code="MF-DAF"), title=title,
        procedure="open", enquiry_deadline=now + dt.timedelta(days=10),
        submission_deadline=now + dt.timedelta(days=30),
        lots=[{"title": "Lot", "cpv": cpv, "estimated_value": "50000"}])
    factories.committee(tender)
    return services.publish_tender(actor=SYSTEM, tender=tender)


def test_anyone_follows_a_cpv_code_by_email_after_confirming_and_can_stop(demo, client):
    address = demo["mailboxes"][0]["address"]
    response = client.post("/alerts/", {"kind": "cpv", "value": "48000000-8",
                                        "email": address})
    assert response.status_code == 200
    confirmation = _messages(address)[-1]
    assert confirmation["From"].startswith("alertes@")
    link = re.search(r"/alerts/confirm/[\w-]+/", confirmation.get_payload(decode=True)
                     .decode()).group(0)
    assert client.get(link).status_code == 200  # a link checker opening it confirms nothing
    assert alerts.dispatch() == 0  # nothing before the confirmation
    assert client.post(link).status_code == 200
    before = len(_messages(address))
    _new_tender("Progiciel de gestion du courrier", "48000000-8")
    _new_tender("Travaux de peinture", "45442100-8")
    assert alerts.dispatch() >= 1
    mine = [m for m in _messages(address)[before:] if "48" in m["Subject"]]
    body = mine[-1].get_payload(decode=True).decode()
    assert "Progiciel de gestion du courrier" in body and "peinture" not in body
    unsubscribe = re.search(r"/alerts/unsubscribe/[\w-]+/", body).group(0)
    assert mine[-1]["List-Unsubscribe"].endswith(unsubscribe + ">")
    assert client.post(unsubscribe).status_code == 200  # one click, as mail clients do
    count = len(_messages(address))
    _new_tender("Licences de messagerie", "48000000-8")
    alerts.dispatch()
    assert not [m for m in _messages(address)[count:] if "48" in m["Subject"]]


def test_a_follow_is_refused_for_nonsense_and_to_spam_an_address(demo, client):
    assert client.post("/alerts/", {"kind": "cpv", "value": "abc",
                                    "email": "x@example.tn"}).status_code == 400
    assert client.post("/alerts/", {"kind": "buyer", "value": "NOPE",
                                    "email": "x@example.tn"}).status_code == 400
    assert client.post("/alerts/", {"kind": "cpv", "value": "72",
                                    "email": "not an address"}).status_code == 400
    for n in range(alerts.MAX_PENDING_PER_ADDRESS):
        assert client.post("/alerts/", {"kind": "search", "value": f"serveurs {n}",
                                        "email": "victim@example.tn"}).status_code == 200
    assert client.post("/alerts/", {"kind": "search", "value": "one more",
                                    "email": "victim@example.tn"}).status_code == 400
    # mail for outside addresses leaves through sahab's outbound queue
    assert OutboundMessage.objects.filter(recipient="victim@example.tn").count() == \
        alerts.MAX_PENDING_PER_ADDRESS


def test_companies_get_new_tenders_in_their_sectors(demo):
    alerts.dispatch()  # every company with an address follows its sectors
    carthage = Company.objects.get(name="Carthage Cloud")
    subscription = Subscription.objects.get(company=carthage, kind="sectors")
    assert "72" in alerts.sectors(carthage)
    _new_tender("Hébergement de secours", "72415000-2")
    assert alerts.dispatch() >= 1
    assert Subscription.objects.get(pk=subscription.pk).last_index > subscription.last_index
    outgoing = OutboundMessage.objects.filter(recipient=carthage.email.lower())
    assert outgoing.exists()


def test_atom_feeds_of_a_cpv_code_a_buyer_a_company_and_a_search(demo, client):
    atom = "{http://www.w3.org/2005/Atom}"
    for query, expected in (({"cpv": "30192"}, "Fournitures de bureau"),
                            ({"buyer": "MS-DAF"}, "Dossier patient"),
                            ({"company": "Carthage Cloud"}, None),
                            ({"q": "voirie"}, "Travaux de voirie")):
        response = client.get("/alerts/feed.atom", query)
        if expected is None:
            assert response.status_code == 400  # a company is followed by its matricule
            continue
        assert response["Content-Type"].startswith("application/atom+xml")
        titles = [e.findtext(f"{atom}title")
                  for e in ET.fromstring(response.content).iter(f"{atom}entry")]  # noqa: S314 (ours)
        assert titles and all(expected in t for t in titles[:1]), titles
    matricule = Company.objects.get(name="Carthage Cloud").matricule_fiscal
    feed = ET.fromstring(  # noqa: S314 (our own feed)
        client.get("/alerts/feed.atom", {"company": matricule}).content)
    assert any("Accord-cadre" in (e.findtext(f"{atom}title") or "")
               for e in feed.iter(f"{atom}entry"))
