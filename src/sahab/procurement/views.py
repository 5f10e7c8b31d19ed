"""Public procurement pages: tenders, their documents, opening reports, awards, contracts,
and the forms of the tender page. Views parse the request with a form, call a service and
render or redirect; every right is checked in the services."""

import base64
from collections import Counter, defaultdict
from decimal import Decimal

from django import forms as forms_module
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import http_date
from django.utils.translation import gettext as _

from sahab.core.actions import run_form_action
from sahab.core.charts import bars
from sahab.core.downloads import attach, table_response
from sahab.core.errors import DomainError
from sahab.core.pagination import SEARCH_WINDOW, CappedPaginator
from sahab.core.problems import problem_response
from sahab.directory import rules
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Role
from sahab.ledger import services as ledger_services
from sahab.portal.links import flag_url
from sahab.procurement import dashboard as boards
from sahab.procurement import forms, ocds, redflags, selectors, services
from sahab.procurement.models import (
    Award,
    Bid,
    BidLot,
    ConflictDeclaration,
    EvaluationMember,
    Explanation,
    Participation,
    Procedure,
    State,
    Tender,
    TenderDocument,
)


class TenderFilters(forms_module.Form):
    """The portal's tender search: every field optional, bad values simply ignored."""

    q = forms_module.CharField(required=False, max_length=100)
    buyer = forms_module.CharField(required=False, max_length=32)
    state = forms_module.ChoiceField(required=False,
                                     choices=[("", "")] + [c for c in State.choices
                                                           if c[0] != State.DRAFT])
    procedure = forms_module.ChoiceField(required=False, choices=[("", ""), *Procedure.choices])
    cpv = forms_module.RegexField(required=False, regex=r"^\d{1,8}$")
    min_value = forms_module.DecimalField(required=False, min_value=0, max_digits=18,
                                          decimal_places=3)
    max_value = forms_module.DecimalField(required=False, min_value=0, max_digits=18,
                                          decimal_places=3)
    published_from = forms_module.DateField(required=False)
    published_to = forms_module.DateField(required=False)
    flag = forms_module.CharField(required=False, max_length=10)


def _filtered(request):
    form = TenderFilters(request.GET)
    form.is_valid()
    data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    flag = data.pop("flag", "")
    if flag:
        data["references"] = {ref for f in redflags.current() if f.code == flag
                              for ref in ([f.subject] if f.level == "tender" else f.tenders)}
    if "buyer" in data:
        data["buyer"] = data["buyer"].upper()
    return form, selectors.public_tenders(**data)


TENDERS_PER_PAGE = 25
# A search counts and downloads its matches up to this many; past it, the page says
# "more than" and the bulk OCDS files hold everything (see core.pagination).
SEARCH_COUNT_CAP = SEARCH_WINDOW


def tenders(request):
    """The public tender search: its form, one page of rows (only the rows for htmx),
    and the CSV or JSON of the matches."""
    form, qs = _filtered(request)
    if request.GET.get("format") in ("csv", "json"):
        if qs[:SEARCH_COUNT_CAP + 1].count() > SEARCH_COUNT_CAP:
            return _download_too_large(request)
        return _table_download(request.GET["format"], "tenders", _tender_table(qs))
    page = CappedPaginator(qs, TENDERS_PER_PAGE, SEARCH_COUNT_CAP).get_page(
        request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"page": page, "values": form.cleaned_data, "query": query.urlencode(),
               "cap": SEARCH_COUNT_CAP}
    if request.headers.get("HX-Request"):
        return render(request, "procurement/_tender_rows.html", context)
    return render(request, "procurement/tenders.html", {
        **context, "form": form,
        "states": [(v, label) for v, label in State.choices if v != State.DRAFT],
        "procedures": Procedure.choices,
        "chosen_buyer": _chosen_buyer(form.cleaned_data.get("buyer")),
        "flag_codes": list(redflags.TITLES.items())})


def _chosen_buyer(code: str | None) -> Administration | None:
    """The administration whose code the buyer field holds, to show its name."""
    if not code:
        return None
    return Administration.objects.filter(code=code.upper()).first()


def tender_buyers(request):
    """The buyers whose code or name holds what was typed in the search's buyer field
    (the options of its list): a country has thousands of buyers, too many to send
    them all with every search page."""
    buyers = selectors.buyers_matching(request.GET.get("buyer", "")[:100])
    return render(request, "procurement/_buyer_options.html", {"buyers": buyers})


def _download_too_large(request) -> HttpResponse:
    return problem_response(
        400, _("Too many tenders to download"),
        _("More than %(n)s tenders match this search: narrow it, or download every "
          "tender at once from the bulk OCDS file %(url)s.")
        % {"n": SEARCH_COUNT_CAP,
           "url": request.build_absolute_uri(reverse("ocds:bulk_releases"))})


def _tender_table(qs) -> list[dict]:
    """The tender list as a table, with its winners and what they were awarded."""
    active = Award.objects.filter(status=Award.Status.ACTIVE).select_related("supplier")
    rows = []
    for t in qs.prefetch_related(Prefetch("awards", queryset=active, to_attr="active_awards"),
                                 "contracts"):
        winners = list(dict.fromkeys((a.supplier.name, a.supplier.matricule_fiscal)
                                     for a in t.active_awards))
        rows.append({
            "reference": t.reference, "title": t.title, "buyer": t.buyer.code,
            "buyer_name": t.buyer.name_fr, "procedure": t.procedure, "state": t.state,
            "estimated_value": str(t.estimated_value),
            "published_at": t.published_at.isoformat() if t.published_at else "",
            "submission_deadline": t.submission_deadline.isoformat(),
            "winners": "; ".join(name for name, _mf in winners),
            "winners_matricules": "; ".join(mf for _name, mf in winners),
            "awarded_value": str(sum((a.value for a in t.active_awards), Decimal(0)))
            if t.active_awards else "",
            "contracted_value": str(sum((c.value for c in t.contracts.all()), Decimal(0)))
            if t.contracts.all() else ""})
    return rows


def _table_download(fmt: str, name: str, rows: list[dict]) -> HttpResponse:
    return table_response(fmt, name, rows)


def tender(request, reference: str):
    item = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if item is None:
        raise Http404
    return _tender_page(request, item)


def document(request, reference: str, document_id: int):
    tender = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if tender is None:
        raise Http404
    doc = get_object_or_404(TenderDocument, pk=document_id, tender=tender)
    response = HttpResponse(bytes(doc.content), content_type=doc.media_type)
    attach(response, doc.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Digest"] = f"sha-256={doc.sha256}"
    return response


# --- buyers, evaluators, companies and the complaints body ------------------------------

def _panels(request, tender) -> dict:
    """What the signed-in user may do on this tender (the services check it again)."""
    user = request.user
    agent = directory.agent_of(user)
    company = directory.company_of(user)
    buyer_side = agent is not None and tender.buyer.is_within(agent.administration)
    roles = agent.role_set if agent else set()
    state = tender.state
    context = {
        "is_finance": buyer_side and Role.FINANCE in roles,
        "is_officer": buyer_side and Role.PROCUREMENT_OFFICER in roles,
        "is_evaluator": buyer_side and Role.EVALUATOR in roles,
        "is_auditor": agent is not None and rules.can_decide_complaint(user, tender.buyer),
        # control of amendments beyond the ceiling (auditors of the buyer's ministry line)
        "is_controller": agent is not None and Role.AUDITOR in roles and
        selectors.may_control_amendments(user, tender.buyer),
        "company": company,
    }
    if company is not None:
        context["my_bids"] = tender.bids.filter(company=company).order_by("-submitted_at")
        context["may_bid"] = state in (State.ENQUIRIES, State.TENDERING) and \
            timezone.now() < tender.submission_deadline and services.may_bid(tender, company)
        # what the page's script seals to, and the company keys it may sign with
        context["committee_keys"] = " ".join(
            base64.b64encode(bytes(m.public_key)).decode() for m in tender.committee.all())
        context["registered_keys"] = " ".join(
            company.signing_keys.filter(revoked_at=None).values_list("fingerprint", flat=True))
        context["amendments_since_bid"] = selectors.amendments_since_bid(tender, company) \
            if context["may_bid"] else []
    context.update(_prequalification_panel(tender, company, context["is_officer"]))
    context.update(_evaluation_panel(tender, user, agent, company, context["is_officer"]))
    if context["evaluation_seat"] and state == State.EVALUATION:
        context["declared"] = ConflictDeclaration.objects.filter(
            tender=tender, evaluator=user).first()
        context["bid_lots"] = BidLot.objects.filter(
            bid__tender=tender, bid__status=Bid.Status.OPENED).select_related(
            "bid__company", "lot").order_by("lot__number", "price")
    context["committee"] = list(tender.committee.select_related("member"))
    seat = next((m for m in context["committee"] if m.member_id == user.pk), None)
    context["my_seat"] = seat
    context["may_release"] = seat is not None and seat.released_at is None and \
        tender.published_at is not None and timezone.now() >= tender.submission_deadline and \
        state in (State.OPENING, State.TENDERING, State.ENQUIRIES)
    if context["is_auditor"] or context["is_officer"]:
        context["pending_complaints"] = tender.complaints.filter(
            status__in=["filed", "admitted"]).select_related("company")
    for name in ("cancel", "question", "complaint"):
        context[f"{name}_form"] = forms.TextForm(prefix=name)
    context["answer_forms"] = [(q, forms.TextForm(prefix=f"answer{q.pk}"))
                               for q in tender.questions.filter(answered_at=None)]
    context["decide_forms"] = [
        (c, forms.TextForm(prefix=f"{'decide' if c.status == 'admitted' else 'admissibility'}"
                                  f"{c.pk}"))
        for c in context.get("pending_complaints", [])]
    context["document_form"] = forms.DocumentForm()
    context["amendment_form"] = forms.AmendmentForm(tender=tender)
    if context["is_officer"]:
        context["min_days_after_amendment"] = services.min_days_after_amendment()
    context["contract_form"] = forms.ContractForm()
    return context


def _prequalification_panel(tender, company, is_officer: bool) -> dict:
    """A restricted procedure's candidates: a company applies during the enquiry period
    and sees the buyer's decision (with, when refused, until when it may complain); the
    buyer's officers decide on each candidate until the submission deadline."""
    if tender.procedure != Procedure.RESTRICTED or \
            tender.state not in (State.ENQUIRIES, State.TENDERING):
        return {}
    context = {}
    if company is not None:
        mine = tender.participants.filter(company=company).first()
        context["my_participation"] = mine
        context["may_apply"] = mine is None and tender.state == State.ENQUIRIES
        if mine is not None and mine.kind == Participation.Kind.NOT_QUALIFIED:
            context["complain_by"] = services.refusal_complaint_due(tender, company)
    if is_officer and timezone.now() < tender.submission_deadline:
        context["decides_candidates"] = True
        context["candidates"] = [
            (p, forms.TextForm(prefix=f"qualify{p.pk}"))
            for p in tender.participants.select_related("company").order_by("company__name")]
    return context


def _evaluation_panel(tender, user, agent, company, is_officer: bool) -> dict:
    """The evaluation committee's part of the tender page: the committee and its reports
    for everyone (names for agents), the seat and vote of a member, the explanations the
    officer or the chair may ask for and decide, and those a company is asked for."""
    seat = (EvaluationMember.objects.filter(tender=tender, member=user).first()
            if user.is_authenticated else None)
    report = tender.evaluation_reports.order_by("-number").first()
    context = {"evaluation": selectors.evaluation(tender, names=agent is not None),
               "evaluation_seat": seat, "current_report": report,
               "my_vote": report.approvals.filter(member=user).first()
               if report is not None and seat is not None else None,
               "is_chair": seat is not None and seat.chair}
    if tender.state == State.EVALUATION and (is_officer or context["is_chair"]):
        open_ = [Explanation.Status.REQUESTED, Explanation.Status.ANSWERED]
        context["explanations_to_decide"] = Explanation.objects.filter(
            bid_lot__bid__tender=tender, status__in=open_).select_related(
            "bid_lot__bid__company", "bid_lot__lot")
        context["explanations_to_ask"] = BidLot.objects.filter(
            bid__tender=tender, abnormally_low=True, eligible=True).exclude(
            explanations__status__in=[*open_, Explanation.Status.ACCEPTED]).select_related(
            "bid__company", "lot")
    if company is not None:
        context["my_explanations"] = Explanation.objects.filter(
            bid_lot__bid__tender=tender, bid_lot__bid__company=company,
            status=Explanation.Status.REQUESTED).select_related("bid_lot__lot")
    return context


def dashboard(request):
    """Spending, competition, non-competitive share and flags over time, as charts and
    tables; ``?table=<name>&format=csv|json`` downloads one table."""
    name = request.GET.get("table", "")
    if name in boards.TABLES and request.GET.get("format") in ("csv", "json"):
        rows, computed = boards.table_computed(name)
        response = _table_download(request.GET["format"], name, rows)
        # the time the worker computed these rows (none when they were aggregated for
        # this request)
        if computed is not None:
            response["Last-Modified"] = http_date(computed.timestamp())
        return response
    spending = boards.table("spending")
    arabic = (translation.get_language() or "").startswith("ar")
    per_ministry: dict[str, Decimal] = defaultdict(Decimal)
    for row in spending:
        row["name"] = row["ministry_ar"] if arabic else row["ministry"]
        per_ministry[row["name"]] += Decimal(row["contracted_value"])
    ministry_rows = [{"ministry": m, "value": str(v)} for m, v in
                     sorted(per_ministry.items(), key=lambda kv: -kv[1])]
    competition = boards.table("competition")
    non_competitive = boards.table("non_competitive")
    flags = boards.table("flags")
    return render(request, "procurement/dashboard.html", {
        "spending": spending, "ministry_bars": bars(ministry_rows, "ministry", "value"),
        "competition": competition,
        "competition_bars": bars(competition, "year", "average_bids"),
        "non_competitive": non_competitive,
        "non_competitive_bars": bars(
            [{"year": r["year"], "pct": round(100 * r["share_of_tenders"])}
             for r in non_competitive], "year", "pct", scale=100),
        "flags": flags, "flag_bars": bars(flags, "month", "flags"),
        "figures": boards.freshness(boards.TABLES),
    })


def _tender_flags(item):
    return [_linked(f) for f in redflags.for_tender(item.reference)] \
        if item.opened_at or item.published_at else []


def red_flags(request):
    """Every flag, counted per indicator (chart and table), per buyer and per company."""
    flags = redflags.current()
    if request.GET.get("format") == "csv":
        return _csv(flags)
    counts = Counter(f.code for f in flags)
    top = max(counts.values(), default=1)
    rows = [{"code": code, "title": redflags.TITLES[code], "count": counts.get(code, 0),
             "percent": round(100 * counts.get(code, 0) / top),
             "explanation": redflags.WHY[code]} for code in redflags.TITLES]
    return render(request, "procurement/red_flags.html",
                  {"rows": rows, "flags": [_linked(f) for f in flags],
                   "run": redflags.last_run()})


def _linked(flag):
    """A flag with the page of what it concerns (a tender, a buyer or a company)."""
    flag.url = flag_url(flag)
    return flag


def _csv(flags) -> HttpResponse:
    return _table_download("csv", "red-flags", [
        {k: (" ".join(v) if isinstance(v, list) else v)
         for k, v in redflags.as_dict(f).items()} for f in flags])


def _tender_page(request, item):
    bids = []
    if item.opened_at:
        bids = selectors.opened_bids(item)
    return render(request, "procurement/tender.html", {
        "tender": item, "lots": selectors.lots_with_cancellations(item),
        "documents": item.documents.all(),
        "questions": item.questions.exclude(answered_at=None),
        "open_questions": item.questions.filter(answered_at=None),
        "bids": bids, "awards": item.awards.select_related("lot", "supplier", "contract")
        .order_by("lot__number", "decided_at", "pk") if item.awards.exists() else [],
        "contracts": item.contracts.select_related("award__lot", "supplier")
        .prefetch_related("amendments", "payments", "prices"),
        "complaints": item.complaints.select_related("company").prefetch_related("lots"),
        "amendments": item.amendments.all(),
        "steps": _steps(item), **_panels(request, item),
        "red_flags": _tender_flags(item),
        # its releases exist from publication on: the record compiles them
        "ocid": ocds.ocid(item) if item.published_at else "",
    })


def _steps(item):
    """Every step, in ledger order, at its ledger entry's time (the time that proves it)."""
    steps = list(item.steps.all())
    times = dict(ledger_services.logged_entries().filter(
        index__in=[s.ledger_index for s in steps if s.ledger_index is not None])
        .values_list("index", "at"))
    for step in steps:
        step.recorded_at = times.get(step.ledger_index, step.at)
    return steps




# --- the forms of the tender page ---------------------------------------------------------
#
# Each action is a form (what the page posts) and what it does with the form's cleaned
# data; the service decides and records. ``perform(user, tender, data)`` returns the
# message to show, or None for the usual one.

def _publish(user, tender, data):
    services.publish_tender(actor=user, tender=tender)


def _cancel(user, tender, data):
    services.cancel_tender(actor=user, tender=tender, reason=data["text"])


def _document(user, tender, data):
    upload = data["document"]
    services.add_document(actor=user, tender=tender, name=upload.name, content=upload.read())


def _amend_tender(user, tender, data):
    services.amend_tender(actor=user, tender=tender, rationale=data["rationale"],
                          documents=[(u.name, u.read()) for u in data["documents"]],
                          enquiry_deadline=data["enquiry_deadline"],
                          submission_deadline=data["submission_deadline"],
                          compliance_criteria=data["compliance_criteria"],
                          lots=data["lots"])


def _question(user, tender, data):
    services.ask_question(actor=user, tender=tender, text=data["text"])


def _answer(user, tender, data):
    services.answer_question(actor=user, question=data["question"], answer=data["text"])


def _bid(user, tender, data):
    # the page sealed and signed the bid: only the envelope arrives here
    bid = services.submit_bid(actor=user, tender=tender, envelope=data["envelope"])
    # the sequencer gives the entry its index within a second or so: the page shows it
    return _("Bid sealed. Commitment %(commitment)s, ledger entry promised.") % {
        "commitment": bid.commitment}


def _committee(user, tender, data):
    services.name_committee(actor=user, tender=tender, threshold=data["threshold"],
                            members=data["members"])


def _committee_key(user, tender, data):
    services.register_committee_key(actor=user, tender=tender, public_key=data["public_key"])


def _release(user, tender, data):
    services.release_committee_key(actor=user, tender=tender, private_key=data["private_key"])


def _register_key(user, tender, data):
    key = services.register_signing_key(actor=user, public_key=data["public_key"],
                                        proof=data["proof"])
    return _("Signing key %(fingerprint)s… registered (ledger entry #%(index)s).") % {
        "fingerprint": key.fingerprint[:16], "index": key.ledger_index}


def _withdraw(user, tender, data):
    services.withdraw_bid(actor=user, bid=data["bid"])


def _confirm_bid(user, tender, data):
    services.confirm_bid(actor=user, bid=data["bid"])


def _declare(user, tender, data):
    services.declare_conflict_of_interest(actor=user, tender=tender,
                                          no_conflict=data["no_conflict"],
                                          statement=data["statement"])


def _eligibility(user, tender, data):
    checks = data["checks"]
    services.decide_eligibility(actor=user, bid_lot=data["bid_lot"],
                                eligible=all(checks.values()), checks=checks,
                                reason=data["reason"])


def _score(user, tender, data):
    services.score_quality(actor=user, bid_lot=data["bid_lot"], score=data["score"],
                           comment=data["comment"])


def _evaluation_committee(user, tender, data):
    services.name_evaluation_committee(actor=user, tender=tender,
                                       members=data["evaluation_members"],
                                       chair=data["chair"], quorum=data["quorum"])


def _approve(user, tender, data):
    services.approve_evaluation(actor=user, tender=tender, sha256=data["sha256"],
                                approved=data["approved"], reason=data["reason"])


def _explain_request(user, tender, data):
    services.request_explanation(actor=user, bid_lot=data["bid_lot"],
                                 question=data["question"])


def _explain_answer(user, tender, data):
    services.answer_explanation(actor=user, explanation=data["explanation"],
                                answer=data["answer"])


def _explain_decide(user, tender, data):
    services.decide_explanation(actor=user, explanation=data["explanation"],
                                accepted=data["accepted"], reason=data["reason"])


def _evaluate(user, tender, data):
    services.complete_evaluation(actor=user, tender=tender)


def _award(user, tender, data):
    services.award_tender(actor=user, tender=tender, justification=data["justification"])


def _apply(user, tender, data):
    services.apply_for_prequalification(actor=user, tender=tender)


def _qualify(user, tender, data):
    services.decide_prequalification(actor=user, participation=data["participation"],
                                     qualified=data["qualified"], reason=data["text"])


def _complaint(user, tender, data):
    services.file_complaint(actor=user, tender=tender, text=data["text"], lots=data["lot"])


def _admissibility(user, tender, data):
    services.rule_admissibility(actor=user, complaint=data["complaint"],
                                admissible=data["admissible"], reason=data["text"])


def _decide(user, tender, data):
    services.decide_complaint(actor=user, complaint=data["complaint"], upheld=data["upheld"],
                              remedy=data["remedy"] if data["upheld"] else "",
                              decision=data["text"])


def _amend(user, tender, data):
    services.amend_contract(actor=user, contract=data["contract"],
                            justification=data["justification"],
                            new_value=data["new_value"], new_end_date=data["new_end_date"])


def _pay(user, tender, data):
    services.record_payment(actor=user, contract=data["contract"],
                            milestone=data["milestone"], amount=data["amount"])


def _price(user, tender, data):
    services.set_contract_price(actor=user, contract=data["contract"], code=data["code"],
                                description=data["description"], unit=data["unit"],
                                unit_price=data["unit_price"])


def _countersign(user, tender, data):
    services.countersign_contract(actor=user, contract=data["contract"],
                                  terms_sha256_seen=data["terms_sha256"])


def _complete(user, tender, data):
    services.complete_contract(actor=user, contract=data["contract"], reason=data["text"])


def _decide_amendment(user, tender, data):
    services.decide_amendment(actor=user, amendment=data["amendment"],
                              approve=data["approve"], reason=data["text"])


def _contract(user, tender, data):
    services.sign_contract(actor=user, award=data["award"], start_date=data["start_date"],
                           end_date=data["end_date"])


# action (the URL's slug) → (its form, what it does)
TENDER_ACTIONS = {
    "publish": (forms.ConfirmForm, _publish),
    "cancel": (forms.CancelForm, _cancel),
    "document": (forms.DocumentForm, _document),
    "amend_tender": (forms.AmendmentForm, _amend_tender),
    "question": (forms.QuestionForm, _question),
    "apply": (forms.ConfirmForm, _apply),
    "qualify": (forms.QualificationForm, _qualify),
    "answer": (forms.AnswerForm, _answer),
    "bid": (forms.BidForm, _bid),
    "committee": (forms.CommitteeForm, _committee),
    "committee_key": (forms.CommitteeKeyForm, _committee_key),
    "release": (forms.ReleaseKeyForm, _release),
    "register_key": (forms.SigningKeyForm, _register_key),
    "withdraw": (forms.WithdrawForm, _withdraw),
    "confirm_bid": (forms.ConfirmBidForm, _confirm_bid),
    "declare": (forms.DeclarationForm, _declare),
    "eligibility": (forms.EligibilityForm, _eligibility),
    "score": (forms.ScoreForm, _score),
    "evaluation_committee": (forms.EvaluationCommitteeForm, _evaluation_committee),
    "approve": (forms.ApprovalForm, _approve),
    "explain_request": (forms.ExplanationRequestForm, _explain_request),
    "explain_answer": (forms.ExplanationAnswerForm, _explain_answer),
    "explain_decide": (forms.ExplanationDecisionForm, _explain_decide),
    "evaluate": (forms.ConfirmForm, _evaluate),
    "award": (forms.AwardForm, _award),
    "complaint": (forms.ComplaintForm, _complaint),
    "admissibility": (forms.AdmissibilityForm, _admissibility),
    "decide": (forms.ComplaintDecisionForm, _decide),
    "amend": (forms.ContractAmendmentForm, _amend),
    "pay": (forms.PaymentForm, _pay),
    "price": (forms.UnitPriceForm, _price),
    "countersign": (forms.CountersignForm, _countersign),
    "complete": (forms.ContractCompletionForm, _complete),
    "decide_amendment": (forms.AmendmentDecisionForm, _decide_amendment),
    "contract": (forms.SignContractForm, _contract),
}


def tender_action(request, reference: str, action: str):
    """Every form of the tender page posts here; the service decides and records."""
    if request.method != "POST" or not request.user.is_authenticated:
        return redirect("procurement:tender", reference=reference)
    item = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if item is None or action not in TENDER_ACTIONS:
        raise Http404
    form_class, perform = TENDER_ACTIONS[action]
    form = form_class(request.POST, request.FILES, tender=item)
    if form.object_missing():
        raise Http404
    run_form_action(request, form, lambda data: perform(request.user, item, data) or
                    _("Done: the step is recorded in the public ledger."))
    return redirect("procurement:tender", reference=reference)


def manage(request):
    """A buyer's tenders (drafts included) and the form to draft a new one."""
    agent = directory.agent_of(request.user)
    if agent is None:
        return redirect_to_login(request.get_full_path())
    officer = Role.PROCUREMENT_OFFICER in agent.role_set
    form = forms.TenderForm(request.POST or None)
    if request.method == "POST" and officer and form.is_valid():
        data = form.cleaned_data
        try:
            tender = services.create_tender(
                actor=request.user, buyer=agent.administration, title=data["title"],
                description=data["description"], procedure=data["procedure"],
                award_criteria=data["award_criteria"], price_weight=data["price_weight"],
                enquiry_deadline=data["enquiry_deadline"],
                submission_deadline=data["submission_deadline"],
                standstill_days=data["standstill_days"], lots=form.lots())
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("%(reference)s is drafted.")
                             % {"reference": tender.reference})
            return redirect("procurement:tender", reference=tender.reference)
    tenders = Tender.objects.filter(buyer__path__startswith=agent.administration.path) \
        .select_related("buyer").order_by("-created_at")[:200]
    return render(request, "procurement/manage.html",
                  {"form": form, "tenders": tenders, "officer": officer},
                  status=400 if form.errors else 200)
