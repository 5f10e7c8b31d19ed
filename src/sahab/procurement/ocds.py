"""OCDS 1.1 publication: a release for each public change of a contracting process,
records compiled with the standard's merge tooling (ocdsmerge), and packages.

A release is built when its step is recorded (in the same transaction) and stored as
published: its id is the ocid plus the ledger index of the step, so it is unique and
never reused, and the release itself is never rewritten.

A release is dated by its ledger entry, never by the clock of whoever caused the step:
within a process, dates follow ledger order strictly (a step recorded in the same
millisecond as the one before it, or after a clock stepped back, is dated one
millisecond after it), so that every tool that merges releases by date (ocdsmerge,
ocdskit, Cardinal) compiles the latest state.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import Max, Sum

from sahab.procurement.models import (
    OPENING_REPORT,
    Award,
    Bid,
    CompiledRelease,
    Contract,
    EvaluationReport,
    Explanation,
    Procedure,
    Release,
    State,
    Step,
    Tender,
)
from sahab.procurement.selectors import opened_bids

OCDS_VERSION = "1.1"
LICENSE = "https://creativecommons.org/publicdomain/zero/1.0/"
# Every extension the releases use, pinned to the commit whose schema sahab validates
# against (a copy ships with the test suite, tests/procurement/extensions/).
EXTENSION_COMMITS = {
    "ocds_lots_extension": "574eec032d7396a55cfcfd89080c2754f1c1b378",
    "ocds_bid_extension": "a2ac4799333ba68e5ca8d7255fb45673f4204e40",
    "ocds_enquiry_extension": "0f32fcb807c149c5400b85f7d4f7da0f8d760984",
}
# sahab's own extensions, for what OCDS has no extension for yet (complaints with their
# admissibility, suspension, decision and remedy; the evaluation committee, its votes on
# the evaluation report and the explanations of abnormally low prices), published by sahab itself at
# /ocds/extensions/<name>/ from src/sahab/procurement/schema/extensions/<name>/.
OWN_EXTENSIONS = ("complaints", "evaluation")
OWN_EXTENSIONS_DIR = Path(__file__).parent / "schema" / "extensions"
EXTENSIONS = [f"https://raw.githubusercontent.com/open-contracting-extensions/{name}/{commit}/"
              "extension.json" for name, commit in EXTENSION_COMMITS.items()] + [
    f"{settings.PUBLIC_URL.rstrip('/')}/ocds/extensions/{name}/extension.json"
    for name in OWN_EXTENSIONS]
COUNTRY = "Tunisie"
# Organization identifiers (docs/ocds.md): companies by the national business register's
# unique identifier (Registre national des entreprises, 7 digits and a key letter), with
# the full matricule fiscal as an additional identifier; public bodies by their code in
# sahab's public directory of administrations (a local list, published at /directory/).
COMPANY_SCHEME = "TN-RNE"
TAX_SCHEME = "TN-MF"
ADMINISTRATION_SCHEME = "TN-SAHAB"
IDENTIFIER_SCHEMES = {
    COMPANY_SCHEME: "Registre national des entreprises (RNE): identifiant unique of the "
                    "company, 7 digits and a key letter, e.g. 1234567A",
    TAX_SCHEME: "Matricule fiscal (tax register), e.g. 1234567A/A/M/000; the first 8 "
                "characters are the RNE identifier",
    ADMINISTRATION_SCHEME: "sahab's public directory of administrations: the "
                           "administration's code, listed at /directory/?format=json",
}

# Which steps change what the public sees, and the release tags they publish (a planned
# purchase publishes a "planning" release when it is added to its plan).
STEP_TAGS: dict[str, list[str]] = {
    "tender.published": ["tender"],
    "document.added": ["tenderUpdate"],
    "tender.amended": ["tenderAmendment"],
    "question.answered": ["tenderUpdate"],
    "tender.enquiries_closed": ["tenderUpdate"],
    "tender.tendering_closed": ["tenderUpdate"],
    "tender.opened": ["tenderUpdate"],
    "tender.evaluated": ["tenderUpdate"],
    "explanation.requested": ["tenderUpdate"],
    "explanation.answered": ["tenderUpdate"],
    "explanation.decided": ["tenderUpdate"],
    "evaluation.adopted": ["tenderUpdate"],
    "complaint.filed": ["tenderUpdate"],
    "complaint.admitted": ["tenderUpdate"],
    "complaint.inadmissible": ["tenderUpdate"],
    "complaint.lapsed": ["tenderUpdate"],
    "complaint.decided": ["tenderUpdate", "awardUpdate"],
    "complaint.suspension_lifted": ["tenderUpdate"],
    "complaint.remedied": ["tenderUpdate"],
    "tender.unsuccessful": ["tenderUpdate"],
    "tender.cancelled": ["tenderCancellation"],
    "tender.awarded": ["award"],
    "tender.standstill_started": ["awardUpdate"],
    "tender.standstill_ended": ["awardUpdate"],
    "contract.signed": ["contract"],
    "contract.countersigned": ["contractUpdate"],
    "contract.amended": ["contractAmendment"],
    "contract.amendment_proposed": ["contractUpdate"],
    "contract.amendment_approved": ["contractAmendment"],
    "contract.amendment_refused": ["contractUpdate"],
    "contract.completed": ["contractTermination"],
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
    """Every date of a release in one form (UTC, whole seconds), so that dates compare
    as strings too, as some tools compare them."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def release_date(moment: dt.datetime) -> str:
    """A release's date: its ledger entry's time, to the millisecond, as in the entry."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _public(path: str) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}{path}"


def category(cpv: str) -> str:
    """goods, works or services from the CPV division (45: works; 01-44 and 48: goods)."""
    division = int(cpv[:2])
    if division == 45:
        return "works"
    return "goods" if division <= 44 or division == 48 else "services"


# --- organizations ----------------------------------------------------------------------

def rne_identifier(matricule_fiscal: str) -> str:
    """The register's unique identifier: the first eight characters of the matricule."""
    return matricule_fiscal.replace("/", "")[:8]


def company_party_id(company) -> str:
    return f"{COMPANY_SCHEME}-{rne_identifier(company.matricule_fiscal)}"


def administration_party_id(admin) -> str:
    return f"{ADMINISTRATION_SCHEME}-{admin.code}"


def company_slug(company) -> str:
    """The matricule fiscal without slashes: the company's address on the portal."""
    return company.matricule_fiscal.replace("/", "")


def _party_admin(admin, roles: Iterable[str], contact=None) -> dict:
    contact_point = {"name": admin.name_fr, "url": _public(f"/buyers/{admin.code}/")}
    if contact is not None and getattr(contact, "email", ""):
        contact_point["email"] = contact.email
    return {"id": administration_party_id(admin), "name": admin.name_fr,
            "identifier": {"scheme": ADMINISTRATION_SCHEME, "id": admin.code,
                           "legalName": admin.name_fr,
                           "uri": _public(f"/directory/{admin.code}/")},
            "address": {"countryName": COUNTRY},
            "contactPoint": contact_point, "roles": sorted(set(roles))}


def _party_company(company, roles: set[str]) -> dict:
    # No contact point name: tools compare contact points field by field, and a generic
    # name shared by every company would match them all.
    return {"id": company_party_id(company), "name": company.name,
            "identifier": {"scheme": COMPANY_SCHEME,
                           "id": rne_identifier(company.matricule_fiscal),
                           "legalName": company.name,
                           "uri": _public(f"/companies/{company_slug(company)}/")},
            "additionalIdentifiers": [{"scheme": TAX_SCHEME, "id": company.matricule_fiscal,
                                       "legalName": company.name}],
            "address": {"streetAddress": company.address, "locality": company.city,
                        "postalCode": company.postal_code, "countryName": COUNTRY}
            if company.address or company.city else {"countryName": COUNTRY},
            "contactPoint": {"email": company.email, "telephone": company.phone,
                             "url": company.website},
            "roles": sorted(roles)}


def _ref(party: dict) -> dict:
    return {"id": party["id"], "name": party["name"]}


def build_release(tender: Tender, step: Step, tags: list[str], date: str) -> dict:
    """The release that publishes the tender's state after ``step`` (texts in French, the
    language of the procedures, whatever language the request that caused it used)."""
    from django.utils import translation

    with translation.override("fr"):
        return prune(_build_release(tender, step, tags, date))


def prune(value):
    """Drop empty strings, lists, objects and nulls: OCDS publishes no empty fields."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (prune(v) for v in value) if v not in (None, "", [], {})]
    return value


class _Parties:
    """The parties of one release, each with every role it plays in it."""

    def __init__(self):
        self.admins: dict[int, tuple[object, set[str], object]] = {}
        self.companies: dict[int, tuple[object, set[str]]] = {}

    def admin(self, admin, role: str, contact=None) -> dict:
        entry = self.admins.setdefault(admin.pk, (admin, set(), contact))
        entry[1].add(role)
        return {"id": administration_party_id(admin), "name": admin.name_fr}

    def company(self, company, role: str) -> dict:
        entry = self.companies.setdefault(company.pk, (company, set()))
        entry[1].add(role)
        return {"id": company_party_id(company), "name": company.name}

    def all(self) -> list[dict]:
        return ([_party_admin(a, roles, contact) for a, roles, contact in self.admins.values()]
                + [_party_company(c, roles) for c, roles in self.companies.values()])


def _items(lot) -> list[dict]:
    lot_items = sorted(lot.items.all(), key=lambda i: i.pk) or [None]
    return [{"id": f"{lot.number}-{n}",
             "description": item.description if item else lot.title,
             "classification": {"scheme": "CPV", "id": (item.cpv if item else lot.cpv)},
             "relatedLot": str(lot.number),
             **({"quantity": float(item.quantity), "unit": {"name": item.unit}} if item else {})}
            for n, item in enumerate(lot_items, start=1)]


def _lot_status(tender: Tender, lot, awards: list) -> str:
    if lot.cancelled:
        return "cancelled"
    status = TENDER_STATUS.get(tender.state, "active")
    if status == "complete":
        return "complete" if any(a.lot_id == lot.pk and a.status == Award.Status.ACTIVE
                                 for a in awards) else "unsuccessful"
    return status


def _bid_status(row) -> str:
    """From the evaluation: pending until the lot's eligibility is decided."""
    return {None: "pending", True: "valid", False: "disqualified"}[row.eligible]


def _bids(tender: Tender, lots: list, parties: _Parties) -> dict:
    """One bid detail per bid and lot, with the price offered for that lot; a bid rejected
    at the opening (altered after submission) is disqualified, with no price known."""
    opened = sorted(opened_bids(tender), key=lambda b: b.pk)
    details = []
    for b in opened:
        if b.status == Bid.Status.TAMPERED:
            details.append({"id": str(b.pk), "date": _date(b.submitted_at),
                            "status": "disqualified",
                            "tenderers": [parties.company(b.company, "tenderer")]})
            continue
        for p in sorted(b.lot_prices.all(), key=lambda p: p.lot.number):
            details.append({"id": f"{b.pk}-{p.lot.number}", "date": _date(b.submitted_at),
                            "status": _bid_status(p),
                            "tenderers": [parties.company(b.company, "tenderer")],
                            "value": _amount(p.price), "relatedLots": [str(p.lot.number)]})
    statistics = [{"id": "bids", "measure": "bids", "value": len(opened)}]
    for lot in lots:
        statistics.append({"id": f"bids-lot-{lot.number}", "measure": "bids",
                           "relatedLot": str(lot.number),
                           "value": sum(1 for b in opened for p in b.lot_prices.all()
                                        if p.lot_id == lot.pk)})
    if details and all(d["status"] != "pending" for d in details):
        statistics.append({"id": "valid", "measure": "validBids",
                           "value": sum(1 for d in details if d["status"] == "valid")})
    return {"statistics": statistics, "details": details}


def _step_index(tender: Tender, event: str) -> int | None:
    # a step still waiting for its index (NULL: first in a descending order on
    # PostgreSQL) is never one of these, which publish a release
    return (Step.objects.filter(tender=tender, type=event, ledger_index__isnull=False)
            .order_by("-ledger_index")
            .values_list("ledger_index", flat=True).first())


def _documents(tender: Tender) -> list[dict]:
    documents = [{"id": f"{d.name}-v{d.version}", "title": d.name, "format": d.media_type,
                  "url": _public(f"/tenders/{tender.reference}/documents/{d.pk}"),
                  "datePublished": _date(d.uploaded_at), "documentType": "biddingDocuments"}
                 for d in tender.documents.exclude(name=OPENING_REPORT).order_by("pk")]
    opening = _step_index(tender, "tender.opened")
    if opening is not None and tender.opened_at:
        # The full report (bids, prices, documents' hashes, envelopes rejected and why)
        # is a JSON document whose SHA-256 the opening's ledger entry records.
        documents.append({"id": "opening-report", "documentType": "bidders",
                          "title": "Procès-verbal d'ouverture des offres",
                          "description": "Rapport complet d'ouverture : offres ouvertes, "
                                         "leurs prix, offres rejetées et pourquoi. Son "
                                         f"SHA-256 est dans l'entrée n° {opening} du "
                                         "registre public.",
                          "url": _public(f"/api/procurement/tenders/{tender.reference}"
                                         "/opening/report"),
                          "datePublished": _date(tender.opened_at),
                          "format": "application/json"})
    for c in tender.complaints.select_related("company").order_by("pk"):
        decided = {"upheld": "accueilli", "rejected": "rejeté"}.get(c.status)
        description = f"Recours déposé par {c.company.name}."
        if decided:
            description += f" Décision : recours {decided}. {c.decision}"
        elif c.status in ("inadmissible", "lapsed"):
            description += f" Recours irrecevable. {c.admissibility_reason}".rstrip()
        elif c.status == "admitted":
            description += " Recours recevable ; les lots concernés sont suspendus."
        else:
            description += " En attente de la décision sur sa recevabilité."
        documents.append({"id": f"complaint-{c.pk}", "documentType": "complaints",
                          "title": f"Recours n° {c.pk}", "description": description,
                          "datePublished": _date(c.filed_at),
                          "dateModified": _date(c.decided_at)})
    return documents


OCDS_REMEDY = {"reevaluate": "reevaluate", "amend_documents": "amendDocuments",
               "cancel_lot": "cancelLot", "qualify": "qualify"}


def _complaints(tender: Tender, parties: _Parties) -> list[dict]:
    """Each complaint and each ruling on it, with their ledger indexes (sahab's
    complaints extension)."""
    from sahab.procurement.services import admissibility_due, decision_due

    complaints = []
    for c in tender.complaints.select_related("company").prefetch_related("lots") \
            .order_by("pk"):
        admissibility = {"dueDate": _date(admissibility_due(c))}
        if c.admissibility_at or c.status == "lapsed":
            admissibility |= {"outcome": "admitted" if c.suspended_from else
                              ("lapsed" if c.status == "lapsed" else "inadmissible"),
                              "rationale": c.admissibility_reason,
                              "date": _date(c.admissibility_at),
                              "ledgerIndex": c.admissibility_index}
        decision = {"dueDate": _date(decision_due(c))}
        if c.decided_at:
            decision |= {"outcome": c.status, "rationale": c.decision,
                         "date": _date(c.decided_at), "ledgerIndex": c.decided_index}
        complaints.append({
            "id": str(c.pk), "type": c.kind, "status": c.status,
            "author": parties.company(c.company, "complainant"),
            "description": c.text, "relatedLots": [str(n) for n in
                                                   sorted(lot.number for lot in c.lots.all())],
            "dateSubmitted": _date(c.filed_at), "ledgerIndex": c.filed_index,
            "admissibility": admissibility,
            "suspension": {"startDate": _date(c.suspended_from),
                           "endDate": _date(c.suspended_until)},
            "decision": decision, "remedy": OCDS_REMEDY.get(c.remedy),
            "remedyDate": _date(c.remedied_at), "remedyLedgerIndex": c.remedied_index})
    return complaints


def _explanations(tender: Tender) -> list[dict]:
    """Each explanation of an abnormally low price asked of a bidder (sahab's evaluation
    extension): the question, its deadline, when it was answered (the answer's SHA-256:
    the text itself may hold the bidder's trade secrets) and the committee's decision."""
    explanations = []
    for e in Explanation.objects.filter(bid_lot__bid__tender=tender) \
            .select_related("bid_lot__lot").order_by("pk"):
        explanation = {
            "id": str(e.pk), "relatedLot": str(e.bid_lot.lot.number),
            "relatedBid": f"{e.bid_lot.bid_id}-{e.bid_lot.lot.number}",
            "status": e.status, "question": e.question, "dateRequested": _date(e.requested_at),
            "dueDate": _date(e.due_at), "requestLedgerIndex": e.requested_index}
        if e.answered_at:
            explanation |= {"dateAnswered": _date(e.answered_at),
                            "answerSha256": hashlib.sha256(e.answer.encode()).hexdigest(),
                            "answerLedgerIndex": e.answered_index}
        if e.decided_at:
            explanation |= {"rationale": e.decision, "dateDecided": _date(e.decided_at),
                            "decisionLedgerIndex": e.decided_index}
        explanations.append(explanation)
    return explanations


def _committee_and_reports(tender: Tender) -> dict:
    """The evaluation committee, its members' declarations of interests and their votes
    on each evaluation report (sahab's evaluation extension) — published once a report is
    adopted, never while the evaluation runs: a bidder who knew the evaluators then could
    try to sway them."""
    reports = list(tender.evaluation_reports.prefetch_related("approvals__member")
                   .order_by("number"))
    if not any(r.status == EvaluationReport.Status.ADOPTED for r in reports):
        return {}
    declarations = {d.evaluator_id: d for d in tender.declarations.all()}
    members = []
    for m in tender.evaluation_committee.select_related("member").order_by("pk"):
        member = {"id": str(m.member_id), "name": _person(m.member),
                  "role": "chair" if m.chair else "member", "dateNamed": _date(m.named_at),
                  "ledgerIndex": m.ledger_index}
        if declaration := declarations.get(m.member_id):
            member["declaration"] = {"noConflict": declaration.no_conflict,
                                     "date": _date(declaration.declared_at)}
        members.append(member)
    return {
        "evaluationCommittee": {"quorum": tender.evaluation_quorum, "members": members},
        "evaluationReports": [{
            "id": str(r.number), "status": r.status, "sha256": r.sha256,
            "dateProposed": _date(r.proposed_at), "ledgerIndex": r.ledger_index,
            "dateAdopted": _date(r.adopted_at), "adoptionLedgerIndex": r.adopted_index,
            "votes": [{"id": str(a.member_id), "name": _person(a.member),
                       "approved": a.approved, "rationale": a.reason, "date": _date(a.at),
                       "ledgerIndex": a.ledger_index} for a in r.approvals.all()],
        } for r in reports],
    }


def _person(user) -> str:
    return user.get_full_name() or user.username


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _amendments(tender: Tender) -> list[dict]:
    """Each amendment of the tender (avis rectificatif): its rationale and what changed,
    the release before it and its own release."""
    amendments = []
    for a in tender.amendments.exclude(ledger_index=None).order_by("number"):
        changes = []
        if a.new_submission_deadline != a.old_submission_deadline:
            changes.append("date limite de remise des offres : "
                           f"{_when(a.old_submission_deadline)} → "
                           f"{_when(a.new_submission_deadline)}")
        if a.new_enquiry_deadline != a.old_enquiry_deadline:
            changes.append(f"date limite des questions : {_when(a.old_enquiry_deadline)} → "
                           f"{_when(a.new_enquiry_deadline)}")
        changes += [f"document {d['name']}, version {d['version']} (SHA-256 {d['sha256']})"
                    for d in a.documents]
        if a.new_compliance_criteria is not None:
            changes.append("critères de conformité : " + " | ".join(a.new_compliance_criteria))
        changes += [_lot_change(change) for change in a.lots]
        before = (Release.objects.filter(ocid=ocid(tender), ledger_index__lt=a.ledger_index)
                  .order_by("-ledger_index").values_list("release_id", flat=True).first())
        amendments.append({
            "id": str(a.number), "date": _date(a.amended_at), "rationale": a.rationale,
            "description": f"Rectificatif n° {a.number} (entrée n° {a.ledger_index} du "
                           "registre public) : " + " ; ".join(changes) + ".",
            "amendsReleaseID": before, "releaseID": f"{ocid(tender)}-{a.ledger_index}"})
    return amendments


def _lot_change(change: dict) -> str:
    new = change["new"]
    terms = f"{new['title']} (CPV {new['cpv']}, {new['estimated_value']} TND)"
    if change["old"] is None:
        return f"lot {change['number']} ajouté : {terms}"
    old = change["old"]
    return (f"lot {change['number']} modifié : {old['title']} (CPV {old['cpv']}, "
            f"{old['estimated_value']} TND) → {terms}")


def _standstill(tender: Tender) -> list[dict]:
    started = _step_index(tender, "tender.standstill_started")
    if started is None:
        return []
    ended = (Step.objects.filter(tender=tender, type="tender.standstill_ended",
                                 ledger_index__gt=started).first())
    if ended is not None:
        status, met = "met", _date(ended.at)
    elif tender.standstill_until is None:
        status, met = "notMet", None  # a complaint upheld: the award was cancelled
    else:
        status, met = "scheduled", None
    return [{"id": "standstill", "code": "standstill", "type": "approval",
             "title": "Délai d'attente avant la signature (standstill)",
             "description": "Les soumissionnaires peuvent contester l'attribution jusqu'à "
                            "l'échéance ; aucun contrat n'est signé avant.",
             "dueDate": _date(tender.standstill_until), "dateMet": met, "status": status}]


def _enquiries(tender: Tender, lots: list) -> list[dict]:
    # Only answered questions: an unanswered question is in the ledger as a hash only,
    # and askers stay anonymous.
    return [{"id": str(q.pk), "date": _date(q.asked_at), "description": q.text,
             "answer": q.answer, "dateAnswered": _date(q.answered_at)}
            for q in tender.questions.exclude(answered_at=None).order_by("pk")]


def _build_release(tender: Tender, step: Step, tags: list[str], date: str) -> dict:
    parties = _Parties()
    buyer = parties.admin(tender.buyer, "buyer", tender.created_by)
    parties.admin(tender.buyer, "procuringEntity")
    lots = list(tender.lots.prefetch_related("items"))
    awards = list(tender.awards.select_related("lot", "supplier", "bid_lot")
                  .prefetch_related("lot__items").order_by("pk"))
    release_tender = {
        "id": tender.reference, "title": tender.title, "description": tender.description,
        "status": TENDER_STATUS.get(tender.state, "active"),
        "procuringEntity": buyer,
        "items": [i for lot in lots for i in _items(lot)],
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
        "enquiries": _enquiries(tender, lots),
        "lots": [{"id": str(lot.number), "title": lot.title,
                  "status": _lot_status(tender, lot, awards),
                  "value": _amount(lot.estimated_value)} for lot in lots],
        "documents": _documents(tender),
        "complaints": _complaints(tender, parties),
        "priceExplanations": _explanations(tender),
        **_committee_and_reports(tender),
        "amendments": _amendments(tender),
        "milestones": _standstill(tender),
    }
    release = {
        "ocid": ocid(tender), "id": f"{ocid(tender)}-{step.ledger_index}",
        "date": date, "tag": tags, "initiationType": "tender", "language": "fr",
        "buyer": buyer, "tender": release_tender,
    }
    if tender.plan_item_id:
        item = tender.plan_item
        release["planning"] = {"rationale": item.description,
                               "budget": {"description": item.budget_line,
                                          "amount": _amount(item.estimated_value)}}
    if tender.framework_id:
        framework = tender.framework
        release["relatedProcesses"] = [{
            "id": "framework", "relationship": ["framework"], "title": framework.title,
            "scheme": "ocid", "identifier": ocid(framework),
            "uri": _public(f"/ocds/records/{ocid(framework)}")}]
    if tender.opened_at:
        release["bids"] = _bids(tender, lots, parties)
        tenderers = {d["tenderers"][0]["id"]: d["tenderers"][0]
                     for d in release["bids"]["details"]}
        release_tender["tenderers"] = list(tenderers.values())
        release_tender["numberOfTenderers"] = len(tenderers)
    if awards:
        release["awards"] = [{
            "id": str(a.pk), "status": "active" if a.status == Award.Status.ACTIVE
            else "cancelled", "date": _date(a.decided_at), "value": _amount(a.value),
            "suppliers": [parties.company(a.supplier, "supplier")],
            "items": _items(a.lot), "relatedLots": [str(a.lot.number)],
            "relatedBid": f"{a.bid_lot.bid_id}-{a.lot.number}",
        } for a in awards]
    contracts = list(tender.contracts.select_related("award", "supplier").prefetch_related(
        "amendments", "payments", "call_offs__buyer").order_by("pk"))
    if contracts:
        release["contracts"] = [_contract(c, tender, parties) for c in contracts]
    release["parties"] = parties.all()
    return release


# OCDS contractStatus: pending (signed by the buyer only), active, terminated (completed
# or ended early); the codelist has no "completed"
CONTRACT_STATUS = {Contract.Status.PENDING: "pending", Contract.Status.ACTIVE: "active",
                   Contract.Status.TERMINATED: "terminated",
                   Contract.Status.COMPLETED: "terminated"}
APPROVAL_STATUS = {"proposed": "scheduled", "approved": "met", "refused": "notMet"}


def _contract(c: Contract, tender: Tender, parties: _Parties) -> dict:
    contract = {
        "id": str(c.pk), "awardID": str(c.award_id),
        "status": CONTRACT_STATUS[c.status],
        "value": _amount(c.value),
        "period": {"startDate": f"{c.start_date.isoformat()}T00:00:00Z",
                   "endDate": f"{c.end_date.isoformat()}T00:00:00Z"},
    }
    if c.supplier_signed_at:  # signed by both parties: the contract's date of signature
        contract["dateSigned"] = _date(c.supplier_signed_at)
    every = sorted(c.amendments.all(), key=lambda a: a.pk)
    amendments = [a for a in every if a.in_force]
    if amendments:
        contract["amendments"] = [{"id": str(a.pk),
                                   "date": _date(a.decided_at or a.created_at),
                                   "rationale": a.justification,
                                   "description": f"{a.old_value} → {a.new_value} TND; "
                                                  f"{a.old_end_date} → {a.new_end_date}"
                                                  + (f"; approuvé : {a.decision_reason}"
                                                     if a.status == "approved" else "")}
                                  for a in amendments]
    # amendments beyond the ceiling: the control's approval, a milestone of the contract
    controlled = [a for a in every if a.status in APPROVAL_STATUS]
    if controlled:
        contract["milestones"] = [{
            "id": f"amendment-{a.pk}-approval", "type": "approval",
            "title": f"Approbation de l'avenant n° {a.pk}",
            "description": f"{a.old_value} → {a.new_value} TND "
                           f"(+{a.cumulative_increase} % sur la valeur signée)"
                           + (f" ; {a.decision_reason}" if a.decision_reason else ""),
            "status": APPROVAL_STATUS[a.status],
            "dateMet": _date(a.decided_at) if a.status == "approved" else None,
            "dateModified": _date(a.decided_at or a.created_at)} for a in controlled]
    payee = parties.company(c.supplier, "payee")
    transactions = [{"id": f"payment-{p.pk}", "date": _date(p.paid_at), "value":
                     _amount(p.amount), "payer": parties.admin(tender.buyer, "payer"),
                     "payee": payee}
                    for p in sorted(c.payments.all(), key=lambda p: p.pk)]
    transactions += [{"id": f"call-off-{o.pk}", "date": _date(o.ordered_at),
                      "value": _amount(o.value), "payer": parties.admin(o.buyer, "payer"),
                      "payee": payee}
                     for o in sorted(c.call_offs.all(), key=lambda o: o.pk)]
    implementation = {}
    if transactions:
        implementation["transactions"] = transactions
    if c.status == Contract.Status.COMPLETED:
        implementation["milestones"] = [{
            "id": "completion", "type": "delivery", "title": "Réception définitive",
            "description": f"{c.completion_reason} Valeur finale payée : {c.final_value} TND.",
            "status": "met", "dateMet": _date(c.completed_at)}]
    if implementation:
        contract["implementation"] = implementation
    return contract


def _dated(ocid_: str, ledger_index: int) -> tuple[dt.datetime, str]:
    """The release's time: its ledger entry's, strictly after the process's last release."""
    from sahab.ledger import services as ledger

    at = ledger.get_entry(ledger_index).at
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    last = (Release.objects.filter(ocid=ocid_).order_by("-ledger_index")
            .values_list("date", flat=True).first())
    if last is not None and at <= last:
        at = last + dt.timedelta(milliseconds=1)
    return at, release_date(at)


def publish_plan_item(item, ledger_index: int, date: dt.datetime | None = None) -> Release:
    """The planning release that opens a planned purchase's contracting process."""
    from django.utils import translation

    admin = item.plan.administration
    at, date_text = _dated(item.ocid, ledger_index)
    buyer = _party_admin(admin, ["buyer"])
    with translation.override("fr"):
        data = prune({
            "ocid": item.ocid, "id": f"{item.ocid}-{ledger_index}", "date": date_text,
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
    release = Release.objects.create(ocid=item.ocid, release_id=data["id"], plan_item=item,
                                     date=at, tags=["planning"], data=data,
                                     ledger_index=ledger_index)
    _keep_compiled(release)
    return release


def publish_step(tender: Tender, step: Step) -> Release | None:
    """Store the release of a step that changes public data (called by the services)."""
    tags = STEP_TAGS.get(step.type)
    if tags is None or tender.published_at is None:
        return None
    tender = Tender.objects.select_related("buyer", "created_by", "framework",
                                           "plan_item").get(pk=tender.pk)
    at, date_text = _dated(ocid(tender), step.ledger_index)
    data = build_release(tender, step, tags, date_text)
    release = Release.objects.create(ocid=data["ocid"], release_id=data["id"], tender=tender,
                                     date=at, tags=tags, data=data,
                                     ledger_index=step.ledger_index)
    _keep_compiled(release)
    return release


def _keep_compiled(release: Release) -> None:
    """Merge the process's releases again, in the new release's transaction."""
    compiled = _merger().create_compiled_release(releases_of(release.ocid))
    CompiledRelease.objects.update_or_create(
        ocid=release.ocid, defaults={"up_to": release.ledger_index, "data": compiled})


def compile_all(release_model=Release, compiled_model=None, batch: int = 500,
                progress=None) -> int:
    """Compile every process's releases into ``compiled_model`` from scratch (a migration
    passes its historical models; a bulk-loaded data set calls it after loading);
    returns how many processes."""
    compiled_model = compiled_model or CompiledRelease
    compiled_model.objects.all().delete()
    rows, count = [], 0
    for ocid_, last, releases in _processes(release_model.objects.all()):
        rows.append(compiled_model(ocid=ocid_, up_to=last,
                                   data=_merger().create_compiled_release(releases)))
        if len(rows) >= batch:
            compiled_model.objects.bulk_create(rows)
            count, rows = count + len(rows), []
            if progress:
                progress(count)
    compiled_model.objects.bulk_create(rows)
    return count + len(rows)


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


def compile_record(releases: list[dict], compiled: dict | None = None) -> dict:
    """A record: its releases and the compiled release made by ocdsmerge (``compiled``
    when the caller has the one ocdsmerge made of these very releases)."""
    if compiled is None:
        compiled = _merger().create_compiled_release(releases)
    return {"ocid": releases[0]["ocid"], "releases": releases, "compiledRelease": compiled}


def releases_of(ocid_: str) -> list[dict]:
    return list(Release.objects.filter(ocid=ocid_).order_by("ledger_index")
                .values_list("data", flat=True))


def _published(up_to: int | None):
    """Every release, or those up to ledger index ``up_to`` (a bulk file's extent)."""
    qs = Release.objects.all()
    return qs if up_to is None else qs.filter(ledger_index__lte=up_to)


def iter_releases(chunk: int = 1000, *, up_to: int | None = None) -> Iterator[dict]:
    yield from _published(up_to).order_by("ledger_index").values_list(
        "data", flat=True).iterator(chunk_size=chunk)


def _processes(releases, chunk: int = 200) -> Iterator[tuple[str, int, list[dict]]]:
    """(ocid, last ledger index, releases in ledger order) for each process of the
    ``releases`` queryset, one process at a time."""
    current, last, datas = None, -1, []
    for ocid_, index, data in releases.order_by("ocid", "ledger_index") \
            .values_list("ocid", "ledger_index", "data").iterator(chunk_size=chunk):
        if ocid_ != current and datas:
            yield current, last, datas
            datas = []
        current, last = ocid_, index
        datas.append(data)
    if datas:
        yield current, last, datas


def iter_records(chunk: int = 200, *, up_to: int | None = None) -> Iterator[dict]:
    """Records one ocid at a time: memory stays flat whatever the number of processes.
    With ``up_to``, each record holds the releases up to that ledger index. A record's
    compiled release is the kept one when it merged the same releases, else merged here."""
    processes = _processes(_published(up_to), chunk)
    while batch := list(itertools.islice(processes, chunk)):
        kept = {o: (last, data) for o, last, data in CompiledRelease.objects.filter(
            ocid__in=[p[0] for p in batch]).values_list("ocid", "up_to", "data")}
        for ocid_, last, releases in batch:
            stored = kept.get(ocid_)
            yield compile_record(releases, stored[1] if stored and stored[0] == last else None)


def last_release_index() -> int | None:
    """The ledger index of the last published release (``None`` before the first)."""
    return Release.objects.aggregate(n=Max("ledger_index"))["n"]


def compiled_are_current() -> bool:
    """Whether the kept compiled releases have merged the last release published (a
    release written around ``publish_step``, by a bulk load say, leaves them behind)."""
    return CompiledRelease.objects.aggregate(n=Max("up_to"))["n"] == last_release_index()


def package_items(kind: str, up_to: int | None = None) -> Iterator[dict]:
    """The releases, or the records, of a whole package."""
    return iter_releases(up_to=up_to) if kind == "releases" else iter_records(up_to=up_to)


def iter_compiled_releases(chunk: int = 1000) -> Iterator[dict]:
    """Every process's compiled release as kept with its releases, in ocid order."""
    yield from CompiledRelease.objects.order_by("ocid").values_list(
        "data", flat=True).iterator(chunk_size=chunk)


def stream_package(kind: str, items: Iterable[dict], uri: str) -> Iterator[bytes]:
    """A release or record package as JSON, written piece by piece."""
    head = json.dumps(package_metadata(uri), ensure_ascii=False)[:-1]
    yield (head + f', "{kind}": [').encode()
    for n, item in enumerate(items):
        yield ((", " if n else "") + json.dumps(item, ensure_ascii=False)).encode()
    yield b"]}"


def total_contracted() -> Decimal:
    return Contract.objects.aggregate(total=Sum("value"))["total"] or Decimal(0)
