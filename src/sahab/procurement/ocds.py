"""OCDS 1.1 publication: a release for each public change of a contracting process,
records compiled with the standard's merge tooling (ocdsmerge), and packages.

A release is built when its step is recorded (in the same transaction) and stored as
published: its id is the ocid plus the ledger index of the step, so it is unique and
never reused, and the release itself is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import Sum

from sahab.procurement.models import (
    Award,
    Bid,
    Contract,
    Procedure,
    Release,
    State,
    Step,
    Tender,
)
from sahab.procurement.selectors import opened_bids

OCDS_VERSION = "1.1"
LICENSE = "https://creativecommons.org/publicdomain/zero/1.0/"
EXTENSIONS = [
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/"
    "v1.1.5/extension.json",
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_bid_extension/"
    "v1.1.5/extension.json",
]

# Which steps change what the public sees, and the release tags they publish (a planned
# purchase publishes a "planning" release when it is added to its plan).
STEP_TAGS: dict[str, list[str]] = {
    "tender.published": ["tender"],
    "document.added": ["tenderUpdate"],
    "question.answered": ["tenderUpdate"],
    "tender.enquiries_closed": ["tenderUpdate"],
    "tender.tendering_closed": ["tenderUpdate"],
    "tender.opened": ["tenderUpdate"],
    "tender.evaluated": ["tenderUpdate"],
    "complaint.filed": ["tenderUpdate"],
    "complaint.decided": ["tenderUpdate", "awardUpdate"],
    "tender.unsuccessful": ["tenderUpdate"],
    "tender.cancelled": ["tenderCancellation"],
    "tender.awarded": ["award"],
    "tender.standstill_ended": ["awardUpdate"],
    "contract.signed": ["contract"],
    "contract.amended": ["contractAmendment"],
    "contract.payment": ["implementation"],
    "contract.terminated": ["contractTermination"],
    "call_off.ordered": ["implementationUpdate"],
}

TENDER_STATUS = {State.DRAFT: "planning", State.CANCELLED: "cancelled",
                 State.UNSUCCESSFUL: "unsuccessful", State.COMPLETE: "complete"}
METHOD = {Procedure.OPEN: "open", Procedure.SIMPLIFIED: "open", Procedure.FRAMEWORK: "open",
          Procedure.RESTRICTED: "selective", Procedure.MINI_COMPETITION: "selective",
          Procedure.NEGOTIATED: "limited"}


def ocid(tender: Tender) -> str:
    """A tender continues its plan item's process, or starts its own."""
    return tender.ocid or f"{settings.OCDS_PREFIX}-{tender.reference}"


def plan_item_ocid(item) -> str:
    return f"{settings.OCDS_PREFIX}-{item.plan.administration.code}-{item.plan.year}-P{item.pk}"


def _amount(value: Decimal) -> dict:
    return {"amount": float(value), "currency": "TND"}


def _date(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def category(cpv: str) -> str:
    """goods, works or services from the CPV division (45: works; 01-44 and 48: goods)."""
    division = int(cpv[:2])
    if division == 45:
        return "works"
    return "goods" if division <= 44 or division == 48 else "services"


def _party_admin(admin) -> dict:
    return {"id": f"TN-ADM-{admin.code}", "name": admin.name_fr,
            "identifier": {"scheme": "TN-ADM", "id": admin.code, "legalName": admin.name_fr},
            "roles": ["buyer", "procuringEntity"]}


def _party_company(company, roles: set[str]) -> dict:
    party = {"id": f"TN-MF-{company.matricule_fiscal}", "name": company.name,
             "identifier": {"scheme": "TN-MF", "id": company.matricule_fiscal,
                            "legalName": company.name},
             "roles": sorted(roles)}
    if company.city:
        party["address"] = {"locality": company.city, "countryName": "Tunisie"}
    return party


def _ref(party: dict) -> dict:
    return {"id": party["id"], "name": party["name"]}


def build_release(tender: Tender, step: Step, tags: list[str]) -> dict:
    """The release that publishes the tender's state after ``step`` (texts in French, the
    language of the procedures, whatever language the request that caused it used)."""
    from django.utils import translation

    with translation.override("fr"):
        return prune(_build_release(tender, step, tags))


def prune(value):
    """Drop empty strings, lists, objects and nulls: OCDS publishes no empty fields."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (prune(v) for v in value) if v not in (None, "", [], {})]
    return value


def _build_release(tender: Tender, step: Step, tags: list[str]) -> dict:
    buyer = _party_admin(tender.buyer)
    companies: dict[int, tuple[object, set[str]]] = {}

    def company_party(company, role: str) -> dict:
        entry = companies.setdefault(company.pk, (company, set()))
        entry[1].add(role)
        return {"id": f"TN-MF-{company.matricule_fiscal}", "name": company.name}

    lots = list(tender.lots.prefetch_related("items"))
    items = []
    for lot in lots:
        lot_items = list(lot.items.all()) or [None]
        for n, item in enumerate(lot_items, start=1):
            items.append({
                "id": f"{lot.number}-{n}",
                "description": item.description if item else lot.title,
                "classification": {"scheme": "CPV", "id": (item.cpv if item else lot.cpv)},
                "relatedLot": str(lot.number),
                **({"quantity": float(item.quantity), "unit": {"name": item.unit}}
                   if item else {}),
            })
    state = tender.state
    release_tender = {
        "id": tender.reference, "title": tender.title,
        "status": TENDER_STATUS.get(state, "active"),
        "procuringEntity": _ref(buyer),
        "items": items,
        "value": _amount(tender.estimated_value),
        "procurementMethod": METHOD[tender.procedure],
        "procurementMethodDetails": tender.get_procedure_display(),
        "mainProcurementCategory": category(lots[0].cpv) if lots else "goods",
        "awardCriteria": "priceOnly" if tender.award_criteria == "lowest_price"
        else "ratedCriteria",
        "submissionMethod": ["electronicSubmission"],
        "tenderPeriod": {"startDate": _date(tender.published_at),
                         "endDate": _date(tender.submission_deadline)},
        "enquiryPeriod": {"startDate": _date(tender.published_at),
                          "endDate": _date(tender.enquiry_deadline)},
        "hasEnquiries": tender.questions.exists(),
        "lots": [{"id": str(lot.number), "title": lot.title, "status":
                  TENDER_STATUS.get(state, "active"), "value": _amount(lot.estimated_value)}
                 for lot in lots],
        "documents": [{"id": f"{d.name}-v{d.version}", "title": d.name, "format": d.media_type,
                       "url": f"{settings.PUBLIC_URL.rstrip('/')}/tenders/{tender.reference}"
                              f"/documents/{d.pk}",
                       "datePublished": _date(d.uploaded_at),
                       "documentType": "biddingDocuments"}
                      for d in tender.documents.all()],
    }
    if tender.description:
        release_tender["description"] = tender.description
    if tender.framework_id:
        release_tender["techniques"] = {"hasFrameworkAgreement": True}
    planning = None
    if tender.plan_item_id:
        item = tender.plan_item
        planning = {"rationale": item.description,
                    "budget": {"description": item.budget_line,
                               "amount": _amount(item.estimated_value)}}
    release = {
        "ocid": ocid(tender), "id": f"{ocid(tender)}-{step.ledger_index}",
        "date": _date(step.at), "tag": tags, "initiationType": "tender", "language": "fr",
        "buyer": _ref(buyer), "tender": release_tender,
    }
    if planning:
        release["planning"] = planning
    if tender.opened_at:
        opened = list(opened_bids(tender))
        release_tender["tenderers"] = [company_party(b.company, "tenderer") for b in opened]
        release_tender["numberOfTenderers"] = len(opened)
        release["bids"] = {
            "statistics": [{"id": "1", "measure": "bids", "value": len(opened)}] +
            [{"id": f"lot-{lot.number}", "measure": "bids", "relatedLot": str(lot.number),
              "value": sum(1 for b in opened for p in b.lot_prices.all()
                           if p.lot_id == lot.pk)} for lot in lots],
            "details": [{"id": str(b.pk), "date": _date(b.submitted_at),
                         "status": "valid" if b.status == Bid.Status.OPENED else "disqualified",
                         "tenderers": [company_party(b.company, "tenderer")],
                         "value": _amount(sum(p.price for p in b.lot_prices.all()) or 0),
                         "relatedLots": [str(p.lot.number) for p in b.lot_prices.all()]}
                        for b in opened],
        }
    awards = list(tender.awards.select_related("lot", "supplier"))
    if awards:
        release["awards"] = [{
            "id": str(a.pk), "status": "active" if a.status == Award.Status.ACTIVE
            else "cancelled", "date": _date(a.decided_at), "value": _amount(a.value),
            "suppliers": [company_party(a.supplier, "supplier")],
            "relatedLots": [str(a.lot.number)],
        } for a in awards]
    contracts = list(tender.contracts.select_related("award").prefetch_related(
        "amendments", "payments", "call_offs"))
    if contracts:
        release["contracts"] = [_contract(c) for c in contracts]
    parties = [buyer] + [_party_company(c, roles) for c, roles in companies.values()]
    release["parties"] = parties
    return release


def _contract(c: Contract) -> dict:
    contract = {
        "id": str(c.pk), "awardID": str(c.award_id),
        "status": "active" if c.status == Contract.Status.ACTIVE else "terminated",
        "value": _amount(c.value), "dateSigned": _date(c.signed_at),
        "period": {"startDate": f"{c.start_date.isoformat()}T00:00:00Z",
                   "endDate": f"{c.end_date.isoformat()}T00:00:00Z"},
    }
    amendments = list(c.amendments.all())
    if amendments:
        contract["amendments"] = [{"id": str(a.pk), "date": _date(a.created_at),
                                   "rationale": a.justification,
                                   "description": f"{a.old_value} → {a.new_value} TND; "
                                                  f"{a.old_end_date} → {a.new_end_date}"}
                                  for a in amendments]
    transactions = [{"id": f"payment-{p.pk}", "date": _date(p.paid_at), "value":
                     _amount(p.amount), "payee": {"id": f"TN-MF-{c.supplier.matricule_fiscal}",
                                                   "name": c.supplier.name}}
                    for p in c.payments.all()]
    transactions += [{"id": f"call-off-{o.pk}", "date": _date(o.ordered_at),
                      "value": _amount(o.value),
                      "payer": {"id": f"TN-ADM-{o.buyer.code}", "name": o.buyer.name_fr}}
                     for o in c.call_offs.select_related("buyer")]
    if transactions:
        contract["implementation"] = {"transactions": transactions}
    return contract


def publish_plan_item(item, ledger_index: int, date: dt.datetime) -> Release:
    """The planning release that opens a planned purchase's contracting process."""
    from django.utils import translation

    admin = item.plan.administration
    buyer = _party_admin(admin)
    buyer["roles"] = ["buyer"]
    with translation.override("fr"):
        data = prune({
            "ocid": item.ocid, "id": f"{item.ocid}-{ledger_index}", "date": _date(date),
            "tag": ["planning"], "initiationType": "tender", "language": "fr",
            "buyer": _ref(buyer), "parties": [buyer],
            "planning": {"rationale": item.description,
                         "budget": {"description": item.budget_line,
                                    "amount": _amount(item.estimated_value)}},
            "tender": {"id": f"P{item.pk}", "title": item.description, "status": "planned",
                       "value": _amount(item.estimated_value),
                       "procurementMethod": METHOD[item.procedure],
                       "procurementMethodDetails": str(Procedure(item.procedure).label),
                       "mainProcurementCategory": category(item.cpv),
                       "items": [{"id": "1", "description": item.description,
                                  "classification": {"scheme": "CPV", "id": item.cpv}}]},
        })
    return Release.objects.create(ocid=item.ocid, release_id=data["id"], plan_item=item,
                                  date=date, tags=["planning"], data=data,
                                  ledger_index=ledger_index)


def publish_step(tender: Tender, step: Step) -> Release | None:
    """Store the release of a step that changes public data (called by the services)."""
    tags = STEP_TAGS.get(step.type)
    if tags is None or tender.published_at is None:
        return None
    tender = Tender.objects.select_related("buyer").get(pk=tender.pk)
    data = build_release(tender, step, tags)
    return Release.objects.create(ocid=data["ocid"], release_id=data["id"], tender=tender,
                                  date=step.at, tags=tags, data=data,
                                  ledger_index=step.ledger_index)


# --- packages and records -------------------------------------------------------------

def publisher() -> dict:
    return {"name": settings.OCDS_PUBLISHER, "uri": settings.PUBLIC_URL}


def package_metadata(uri: str) -> dict:
    return {"uri": uri, "version": OCDS_VERSION, "extensions": EXTENSIONS,
            "publishedDate": _date(dt.datetime.now(dt.UTC)), "publisher": publisher(),
            "license": settings.OCDS_LICENSE,
            "publicationPolicy": f"{settings.PUBLIC_URL.rstrip('/')}/ocds/"}


@functools.lru_cache(maxsize=1)
def release_schema() -> dict:
    """The standard's release schema (1.1.5), shipped with sahab."""
    return json.loads(Path(settings.OCDS_RELEASE_SCHEMA).read_text())


@functools.lru_cache(maxsize=1)
def _merger():
    import ocdsmerge

    return ocdsmerge.Merger(release_schema())


def compile_record(releases: list[dict]) -> dict:
    """A record: its releases and the compiled release made by ocdsmerge."""
    merger = _merger()
    return {"ocid": releases[0]["ocid"], "releases": releases,
            "compiledRelease": merger.create_compiled_release(releases)}


def releases_of(ocid_: str) -> list[dict]:
    return list(Release.objects.filter(ocid=ocid_).order_by("ledger_index")
                .values_list("data", flat=True))


def iter_releases(chunk: int = 1000) -> Iterator[dict]:
    yield from Release.objects.order_by("ledger_index").values_list(
        "data", flat=True).iterator(chunk_size=chunk)


def iter_records(chunk: int = 200) -> Iterator[dict]:
    """Records one ocid at a time: memory stays flat whatever the number of processes."""
    current, releases = None, []
    for ocid_, data in Release.objects.order_by("ocid", "ledger_index") \
            .values_list("ocid", "data").iterator(chunk_size=chunk):
        if ocid_ != current and releases:
            yield compile_record(releases)
            releases = []
        current = ocid_
        releases.append(data)
    if releases:
        yield compile_record(releases)


def stream_package(kind: str, items: Iterable[dict], uri: str) -> Iterator[bytes]:
    """A release or record package as JSON, written piece by piece."""
    head = json.dumps(package_metadata(uri), ensure_ascii=False)[:-1]
    yield (head + f', "{kind}": [').encode()
    for n, item in enumerate(items):
        yield ((", " if n else "") + json.dumps(item, ensure_ascii=False)).encode()
    yield b"]}"


def total_contracted() -> Decimal:
    return Contract.objects.aggregate(total=Sum("value"))["total"] or Decimal(0)
