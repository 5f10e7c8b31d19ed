"""Official documents of a tender, signed: the opening report (procès-verbal d'ouverture
des plis), the evaluation report, the award decision and the contract.

Each step that decides one of them (``tender.opened``, ``tender.evaluated``,
``tender.awarded``, ``contract.signed``) gets, in French and in Arabic (right to left),
a PDF built from the tender's rows and the step's own ledger entry, rendered by WeasyPrint
(Pango and HarfBuzz shape the Arabic), signed (PAdES, ``sahab.core.pdfsign``) with the
certificate of the agent who took the step — the platform's seal for the automatic
opening — and recorded on the ledger (``procurement.document.signed``: the file's SHA-256)
in the transaction that stores it. Each page carries a QR code and the address of the
document's public verification page, and the ledger index of the step.

The worker issues them (``issue_documents``, every 10 seconds) rather than the step's own
transaction: rendering and signing take a few tenths of a second per language, which the
services that walk tenders (and the demo year, and the tests) should not pay. A step
whose documents failed (a signer without a certificate) stays due and is tried again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django_tasks import task

from sahab.core import pdfsign
from sahab.directory import selectors as directory
from sahab.ledger import services as ledger
from sahab.procurement.events import ProcurementEvent
from sahab.procurement.models import (
    OPENING_REPORT,
    Award,
    Contract,
    OfficialDocument,
    Step,
    Tender,
    locked_tenders,
)

log = logging.getLogger(__name__)
Kind = OfficialDocument.Kind
LANGUAGES = ("fr", "ar")
# the step each kind of document records
KINDS = {"tender.opened": Kind.OPENING_REPORT, "tender.evaluated": Kind.EVALUATION_REPORT,
         "tender.awarded": Kind.AWARD_DECISION, "contract.signed": Kind.CONTRACT,
         # the supplier's countersignature: the buyer's signed contract, signed again
         "contract.countersigned": Kind.CONTRACT}
COUNTERSIGNED = "contract.countersigned"
FILE_NAMES = {Kind.OPENING_REPORT: "pv-ouverture", Kind.EVALUATION_REPORT: "rapport-evaluation",
              Kind.AWARD_DECISION: "decision-attribution", Kind.CONTRACT: "contrat"}
PLATFORM_SEAL = pdfsign.Signatory(key=pdfsign.PLATFORM, name="sahab - sceau de la plateforme",
                                  organization="sahab - plateforme des marchés publics")


def is_countersigned(document: OfficialDocument) -> bool:
    """Whether ``document`` is a contract as countersigned by the supplier (it carries the
    buyer's signature, then the supplier's)."""
    return document.contract_id is not None and \
        document.step_index == document.contract.supplier_signed_index


def file_name(document: OfficialDocument) -> str:
    """The download name: kind, tender, language (``decision-attribution-MF-…-ar.pdf``;
    ``contrat-contresigne-…`` for a contract signed by both parties)."""
    kind = FILE_NAMES[document.kind] + ("-contresigne" if is_countersigned(document) else "")
    return f"{kind}-{document.tender.reference}-{document.language}.pdf"


def verify_url(document: OfficialDocument) -> str:
    """The public address printed (and in the QR code) on the document."""
    path = reverse("procurement:official_document", args=[document.pk])
    return settings.PUBLIC_URL.rstrip("/") + path


# --- who signs -------------------------------------------------------------------------

def _signatory(actor: str):
    """The user who took the step (from its ledger entry) and their signing identity — an
    agent for their administration, a company's user (a supplier countersigning) for
    their company; the platform's seal for what the platform did by itself."""
    if actor.startswith("user:"):
        user = get_user_model().objects.filter(pk=int(actor.removeprefix("user:"))).first()
        agent = directory.agent_of(user)
        company = directory.company_of(user) if user is not None else None
        organization = (agent.administration.name_fr if agent is not None
                        else company.name if company is not None else None)
        if organization is not None:
            return user, pdfsign.Signatory(key=f"user-{user.pk}",
                                           name=user.get_full_name() or user.username,
                                           organization=organization,
                                           username=user.username)
    return None, PLATFORM_SEAL


# --- what each document says -----------------------------------------------------------

def _entry(index: int) -> dict:
    return json.loads(bytes(ledger.get_entry(index).body))


def _opening(tender: Tender, step: Step, entry: dict) -> dict:
    document = tender.documents.filter(name=OPENING_REPORT).order_by("-version").first()
    report = json.loads(bytes(document.content)) if document else {}
    released = set(entry["data"].get("released", []))
    titles = dict(tender.lots.values_list("number", "title"))
    return {
        "committee": [{"position": m.position, "name": m.member.get_full_name()
                       or m.member.username, "released": m.position in released}
                      for m in tender.committee.select_related("member")],
        "threshold": tender.committee_threshold,
        "bids": [{"company": b["company"], "matricule_fiscal": b.get("matricule_fiscal", ""),
                  "submitted_at": b["submitted_at"][:16].replace("T", " "),
                  "prices": [(int(n), titles.get(int(n), ""), Decimal(p))
                             for n, p in sorted(b["prices"].items(), key=lambda kv: int(kv[0]))]}
                 for b in report.get("bids", [])],
        "rejected": report.get("rejected", []),
        "missing": len(report.get("missing", [])),
        "unconfirmed": report.get("unconfirmed", []),
        "counts": entry["data"].get("counts", {}),
        "report_sha256": entry["data"].get("report", {}).get("sha256", ""),
    }


def _evaluation(tender: Tender, step: Step, entry: dict) -> dict:
    evaluators = [d.evaluator.get_full_name() or d.evaluator.username
                  for d in tender.declarations.filter(no_conflict=True).select_related(
                      "evaluator")]
    titles = dict(tender.lots.values_list("number", "title"))
    lots = []
    for lot in entry["data"]["lots"]:
        rows = [{**r, "price": Decimal(r["price"]),
                 "score": Decimal(r["score"]) if r.get("score") is not None else None}
                for r in lot["ranking"]]
        lots.append({"number": lot["lot"], "title": titles.get(lot["lot"], ""),
                     "ranking": rows})
    return {"evaluators": evaluators, "lots": lots}


def _award(tender: Tender, step: Step, entry: dict) -> dict:
    data = entry["data"]
    awards = {a.pk: a for a in Award.objects.filter(
        pk__in=[a["award"] for a in data["awards"]]).select_related("lot")}
    return {"awards": [{**a, "value": Decimal(a["value"]),
                        "lot_title": awards[a["award"]].lot.title,
                        "standstill_until": awards[a["award"]].standstill_until}
                       for a in data["awards"]],
            "justification": data.get("justification", "")}


def _contract(tender: Tender, step: Step, entry: dict) -> dict:
    contract = Contract.objects.select_related("supplier", "award__lot").get(
        pk=entry["data"]["contract"])
    return {"contract": contract, "lot": contract.award.lot}


BUILDERS = {Kind.OPENING_REPORT: _opening, Kind.EVALUATION_REPORT: _evaluation,
            Kind.AWARD_DECISION: _award, Kind.CONTRACT: _contract}


def _qr_data_uri(url: str) -> str:
    import segno

    return segno.make(url, error="m").svg_data_uri(scale=3, border=2)


def render(document: OfficialDocument, entry: dict, signatory: pdfsign.Signatory) -> bytes:
    """The document's PDF (unsigned), in its language."""
    from weasyprint import HTML

    tender = document.tender
    step = Step.objects.get(ledger_index=document.step_index)
    url = verify_url(document)
    with translation.override(document.language):
        context = {
            "document": document, "tender": tender, "step": step, "lang": document.language,
            "rtl": document.language == "ar", "verify_url": url, "qr": _qr_data_uri(url),
            "signer_name": signatory.name, "signer_organization": signatory.organization,
            "buyer_name": tender.buyer.name,
            **BUILDERS[document.kind](tender, step, entry),
        }
        html = render_to_string(f"procurement/official/{document.kind}.html", context)
    return HTML(string=html).write_pdf()


# --- issuing ---------------------------------------------------------------------------

def due_steps(limit: int) -> list[Step]:
    """The steps that decide an official document and have none on the ledger yet (none
    reserved, or reserved by a worker that stopped before signing), oldest first."""
    done = OfficialDocument.objects.filter(ledger_index__isnull=False).values("step_index")
    return list(Step.objects.filter(type__in=KINDS).exclude(ledger_index__in=done)
                .select_related("tender").order_by("ledger_index")[:limit])


COUNTERSIGNATURE_REASON = "Contresignature du contrat"
REASONS = {Kind.OPENING_REPORT: "Procès-verbal d'ouverture des plis",
           Kind.EVALUATION_REPORT: "Rapport d'évaluation des offres",
           Kind.AWARD_DECISION: "Décision d'attribution",
           Kind.CONTRACT: "Contrat"}


@transaction.atomic
def _reserve(step: Step, kind: Kind, tender: Tender, contract, user, signatory
             ) -> list[OfficialDocument]:
    """The step's document rows, one per language, made now or by an earlier run that
    stopped before signing; none when they are issued already. The rows come first so
    that each PDF prints its own verification address; a second worker making them at
    the same time stops at the unique (step, language) constraint."""
    existing = list(OfficialDocument.objects.filter(step_index=step.ledger_index)
                    .order_by("language"))
    if existing:
        return [] if all(d.ledger_index is not None for d in existing) else existing
    return [OfficialDocument.objects.create(
        tender=tender, kind=kind, language=lang, step_index=step.ledger_index,
        contract=contract, signer=user, signer_name=signatory.name) for lang in LANGUAGES]


def issue_for_step(step: Step) -> list[OfficialDocument]:
    """Build, sign and store the step's document in each language, each with its ledger
    entry: either every language is issued and on the ledger, or none is (and the step
    stays due). Rendering and signing take seconds, so they run outside any transaction:
    no other writer waits on them (on SQLite one writer at a time holds the database)."""
    kind = KINDS[step.type]
    entry = _entry(step.ledger_index)
    user, signatory = _signatory(entry["actor"])
    tender = Tender.objects.select_related("buyer").get(pk=step.tender_id)
    contract = (Contract.objects.get(pk=entry["data"]["contract"]) if kind == Kind.CONTRACT
                else None)
    if step.type == COUNTERSIGNED:
        bases = _buyer_signed(contract)  # raises while the buyer's are not issued yet
    documents = _reserve(step, kind, tender, contract, user, signatory)
    try:
        if step.type == COUNTERSIGNED:
            signed = {document.pk: pdfsign.sign_pdf(
                bases[document.language], signatory, field_name="Countersignature",
                reason=f"{COUNTERSIGNATURE_REASON} {tender.reference}")
                for document in documents}
        else:
            signed = {document.pk: pdfsign.sign_pdf(
                render(document, entry, signatory), signatory,
                reason=f"{REASONS[kind]} {tender.reference}") for document in documents}
    except Exception:
        # e.g. no certificate for the signer yet: leave nothing behind; the step stays due
        OfficialDocument.objects.filter(pk__in=[d.pk for d in documents],
                                        ledger_index__isnull=True).delete()
        raise
    return _record(step, tender, kind, entry, user, signed) if signed else []


class NotYetSigned(Exception):
    """The buyer's signed contract is not issued yet: its countersignature waits."""


def _buyer_signed(contract: Contract) -> dict[str, bytes]:
    """The contract as the buyer signed it, per language: the supplier's countersignature
    is added to these very files (an incremental update: the buyer's signature stays
    valid, and covers exactly what it covered)."""
    documents = OfficialDocument.objects.filter(step_index=contract.signed_index,
                                                ledger_index__isnull=False)
    found = {d.language: bytes(d.content) for d in documents}
    if set(found) != set(LANGUAGES):
        raise NotYetSigned(contract.pk)
    return found


@transaction.atomic
def _record(step: Step, tender: Tender, kind: Kind, entry: dict, user,
            signed: dict[int, tuple[bytes, bytes]]) -> list[OfficialDocument]:
    """Store the signed files and put each on the ledger, in one short transaction; none
    when another worker recorded them meanwhile."""
    from sahab.procurement.services import _step

    # the tender first, as every service locks it before the ledger: a step recorded
    # after the ledger's lock would wait for a service's tender lock while that service
    # waits for the ledger (a deadlock on PostgreSQL, a 500 for the person)
    tender = locked_tenders().get(pk=tender.pk)
    documents = list(OfficialDocument.objects.select_for_update().filter(pk__in=signed)
                     .order_by("language"))
    if len(documents) != len(signed) or any(d.ledger_index is not None for d in documents):
        return []
    for document in documents:
        content, certificate = signed[document.pk]
        document.content, document.size = content, len(content)
        document.sha256 = hashlib.sha256(content).hexdigest()
        document.certificate = certificate
        document.ledger_index = _step(tender, ProcurementEvent.DOCUMENT_SIGNED, None, {
            "document": document.pk, "kind": kind.value, "language": document.language,
            "sha256": document.sha256, "size": document.size,
            "signer": entry["actor"] if user is not None else "platform",
            "certificate_sha256": pdfsign.fingerprint(document.certificate),
            "step": step.ledger_index}, publish=False)
        document.save()
    return documents


def issue_due(limit: int = 10) -> int:
    """Issue the documents of up to ``limit`` due steps; returns how many steps got them."""
    issued = 0
    for step in due_steps(limit):
        started = time.monotonic()
        try:
            documents = issue_for_step(step)
        except IntegrityError:
            continue  # another worker issued them meanwhile
        except Exception:
            # one step that cannot be signed (no certificate for its signer) must not
            # hold back the others; it stays due and is tried again at the next run
            log.exception("official documents of step %s not issued", step.ledger_index)
            continue
        if not documents:
            continue  # another worker recorded them meanwhile
        issued += 1
        log.info("official documents of step %s issued in %.2f s", step.ledger_index,
                 time.monotonic() - started)
    return issued


@task()
def issue_documents() -> int:
    """The worker's job: sign the official documents of the steps that lack them."""
    return issue_due(settings.PROCUREMENT_OFFICIAL_DOCUMENTS_BATCH)


# --- reading ---------------------------------------------------------------------------

def verification(document: OfficialDocument) -> dict:
    """What the public verification page shows: the stored file validated against the
    platform's trust roots now, and its ledger entry's hash compared with the file's."""
    content = bytes(document.content)
    entry = _entry(document.ledger_index)
    try:
        result = pdfsign.validate(content)
    except Exception as exc:  # a file that no longer parses is a failed check, not a 500
        log.warning("official document %s does not validate: %s", document.pk, exc)
        result = None
    return {"validation": result,
            "ledger_sha256": entry["data"]["sha256"],
            "matches_ledger": entry["data"]["sha256"] == hashlib.sha256(content).hexdigest(),
            "certificate_sha256": entry["data"]["certificate_sha256"]}
