"""Public procurement pages: tenders, their documents, opening reports, awards, contracts."""

import base64

from django import forms as forms_module
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from sahab.core.downloads import attach
from sahab.procurement import selectors
from sahab.procurement.models import Bid, Procedure, State, TenderDocument


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
    from sahab.procurement import redflags

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


def tenders(request):
    from django.conf import settings
    from django.core.cache import cache
    from django.db.models import Exists, OuterRef

    from sahab.directory.models import Administration
    from sahab.procurement import redflags
    from sahab.procurement.models import Tender

    form, qs = _filtered(request)
    if request.GET.get("format") in ("csv", "json"):
        return _table_download(request.GET["format"], "tenders", _tender_table(qs))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = ("procurement/_tender_rows.html" if request.headers.get("HX-Request")
                else "procurement/tenders.html")
    return render(request, template, {
        "page": page, "form": form, "values": form.cleaned_data, "query": query.urlencode(),
        "states": [(v, label) for v, label in State.choices if v != State.DRAFT],
        "procedures": Procedure.choices,
        "buyers": cache.get_or_set("sahab:tenders:buyers", lambda: list(
            Administration.objects.filter(Exists(Tender.objects.filter(
                buyer=OuterRef("pk"), published_at__isnull=False))).order_by("name_fr")),
            settings.PORTAL_FIGURES_SECONDS),
        "flag_codes": list(redflags.TITLES.items())})


def _tender_table(qs) -> list[dict]:
    """The tender list as a table, with its winners and what they were awarded."""
    from decimal import Decimal

    from django.db.models import Prefetch

    from sahab.procurement.models import Award

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
    from sahab.core.downloads import table_response

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
    from sahab.directory import rules
    from sahab.directory import selectors as directory
    from sahab.directory.models import Role
    from sahab.procurement import forms

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
        from sahab.procurement import services

        context["my_bids"] = tender.bids.filter(company=company).order_by("-submitted_at")
        context["may_bid"] = state in (State.ENQUIRIES, State.TENDERING) and \
            timezone.now() < tender.submission_deadline and services.may_bid(tender, company)
        # what the page's script seals to, and the company keys it may sign with
        context["committee_keys"] = " ".join(
            base64.b64encode(bytes(m.public_key)).decode() for m in tender.committee.all())
        context["registered_keys"] = " ".join(
            company.signing_keys.filter(revoked_at=None).values_list("fingerprint", flat=True))
    context.update(_evaluation_panel(tender, user, agent, company, context["is_officer"]))
    if context["evaluation_seat"] and state == State.EVALUATION:
        from sahab.procurement.models import BidLot, ConflictDeclaration

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
    context["amendment_form"] = forms.AmendmentForm()
    if context["is_officer"]:
        from sahab.procurement.services import min_days_after_amendment

        context["min_days_after_amendment"] = min_days_after_amendment()
    context["contract_form"] = forms.ContractForm()
    return context


def _evaluation_panel(tender, user, agent, company, is_officer: bool) -> dict:
    """The evaluation committee's part of the tender page: the committee and its reports
    for everyone (names for agents), the seat and vote of a member, the explanations the
    officer or the chair may ask for and decide, and those a company is asked for."""
    from sahab.procurement.models import BidLot, EvaluationMember, Explanation

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
    from collections import defaultdict
    from decimal import Decimal

    from sahab.core.charts import bars
    from sahab.procurement import dashboard as boards

    name = request.GET.get("table", "")
    if name in boards.TABLES and request.GET.get("format") in ("csv", "json"):
        return _table_download(request.GET["format"], name, boards.table(name))
    from django.utils import translation

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
    })


def _tender_flags(item):
    from sahab.procurement import redflags

    return [_linked(f) for f in redflags.for_tender(item.reference)] \
        if item.opened_at or item.published_at else []


def red_flags(request):
    """Every flag, counted per indicator (chart and table), per buyer and per company."""
    from collections import Counter

    from sahab.procurement import redflags

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
    from sahab.portal.links import flag_url

    flag.url = flag_url(flag)
    return flag


def _csv(flags) -> HttpResponse:
    from sahab.procurement import redflags

    return _table_download("csv", "red-flags", [
        {k: (" ".join(v) if isinstance(v, list) else v)
         for k, v in redflags.as_dict(f).items()} for f in flags])


def _tender_page(request, item):
    bids = []
    if item.opened_at:
        bids = selectors.opened_bids(item)
    return render(request, "procurement/tender.html", {
        "tender": item, "lots": item.lots.prefetch_related("items"),
        "documents": item.documents.all(),
        "questions": item.questions.exclude(answered_at=None),
        "open_questions": item.questions.filter(answered_at=None),
        "bids": bids, "awards": item.awards.select_related("lot", "supplier", "contract")
        if item.awards.exists() else [],
        "contracts": item.contracts.select_related("award__lot", "supplier")
        .prefetch_related("amendments", "payments", "prices"),
        "complaints": item.complaints.select_related("company").prefetch_related("lots"),
        "amendments": item.amendments.all(),
        "steps": _steps(item), **_panels(request, item),
        "red_flags": _tender_flags(item),
    })


def _steps(item):
    """Every step, in ledger order, at its ledger entry's time (the time that proves it)."""
    from sahab.ledger.models import Entry

    steps = list(item.steps.all())
    times = dict(Entry.objects.filter(index__in=[s.ledger_index for s in steps])
                 .values_list("index", "at"))
    for step in steps:
        step.recorded_at = times.get(step.ledger_index, step.at)
    return steps


def _int(value: str | None) -> int:
    """A posted id; anything else finds nothing (a 404, never a 500)."""
    return int(value) if value and value.isdigit() and len(value) < 19 else 0


def _date(value: str | None):
    import datetime as dt

    from sahab.core.errors import InvalidInput

    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not a date (YYYY-MM-DD).") from None


def tender_action(request, reference: str, action: str):
    """Every form of the tender page posts here; the service decides and records."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from sahab.core.errors import DomainError
    from sahab.procurement import forms, services
    from sahab.procurement.models import Award, BidLot, Complaint, Question

    if request.method != "POST" or not request.user.is_authenticated:
        return redirect("procurement:tender", reference=reference)
    item = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if item is None:
        raise Http404
    post, user = request.POST, request.user
    # each text form has its own prefix, so that several sit on one page without clashing
    prefix = {"answer": f"answer{post.get('question')}",
              "admissibility": f"admissibility{post.get('complaint')}",
              "decide": f"decide{post.get('complaint')}",
              "complete": f"complete{post.get('contract')}",
              "decide_amendment": f"amendment{post.get('amendment')}"}.get(action, action)
    text = forms.TextForm(post, prefix=prefix)
    try:
        if action == "publish":
            services.publish_tender(actor=user, tender=item)
        elif action == "cancel" and text.is_valid():
            services.cancel_tender(actor=user, tender=item, reason=text.cleaned_data["text"])
        elif action == "document":
            form = forms.DocumentForm(post, request.FILES)
            if not form.is_valid():
                raise services.InvalidInput("Choose a document to upload.")
            upload = form.cleaned_data["document"]
            services.add_document(actor=user, tender=item, name=upload.name,
                                  content=upload.read())
        elif action == "amend_tender":
            form = forms.AmendmentForm(post)
            if not form.is_valid():
                raise services.InvalidInput(
                    "Give the rationale, and deadlines as dates and times.")
            uploads = request.FILES.getlist("amendment-documents")
            services.amend_tender(
                actor=user, tender=item, rationale=form.cleaned_data["rationale"],
                documents=[(u.name, u.read()) for u in uploads],
                enquiry_deadline=form.cleaned_data["enquiry_deadline"],
                submission_deadline=form.cleaned_data["submission_deadline"])
        elif action == "question" and text.is_valid():
            services.ask_question(actor=user, tender=item, text=text.cleaned_data["text"])
        elif action == "answer" and text.is_valid():
            question = get_object_or_404(Question, pk=post.get("question"), tender=item)
            services.answer_question(actor=user, question=question,
                                     answer=text.cleaned_data["text"])
        elif action == "bid":
            # the page sealed and signed the bid: only the envelope arrives here
            # forms send line breaks as CRLF; the envelope's canonical form has LF only
            envelope = post.get("envelope", "").replace("\r\n", "\n")
            if not envelope.isascii():
                raise services.InvalidInput("The sealed envelope is ASCII text.")
            bid = services.submit_bid(actor=user, tender=item, envelope=envelope.encode())
            messages.success(request, f"Bid sealed. Commitment {bid.commitment}, ledger "
                                      f"entry #{bid.ledger_index}.")
        elif action == "committee":
            from django.contrib.auth import get_user_model

            names = [n.strip() for n in post.get("members", "").split(",") if n.strip()]
            users = list(get_user_model().objects.filter(username__in=names))
            if len(users) != len(set(names)):
                raise services.InvalidInput("Name members by their user names.")
            try:
                threshold = int(post.get("threshold", ""))
            except ValueError:
                raise services.InvalidInput("The threshold is a number.") from None
            services.name_committee(actor=user, tender=item, threshold=threshold,
                                    members=sorted(users, key=lambda u: names.index(u.username)))
        elif action in ("committee_key", "release"):
            field = "public_key" if action == "committee_key" else "private_key"
            try:
                raw = base64.b64decode(post.get(field, "").strip(), validate=True)
            except ValueError:
                raise services.InvalidInput("The key is not base64.") from None
            if action == "committee_key":
                services.register_committee_key(actor=user, tender=item, public_key=raw)
            else:
                services.release_committee_key(actor=user, tender=item, private_key=raw)
        elif action == "register_key":
            try:
                public_key = base64.b64decode(post.get("public_key", ""), validate=True)
                proof = base64.b64decode(post.get("proof", ""), validate=True)
            except ValueError:
                raise services.InvalidInput("The key or its proof is not base64.") from None
            key = services.register_signing_key(actor=user, public_key=public_key, proof=proof)
            messages.success(request, f"Signing key {key.fingerprint[:16]}… registered "
                                      f"(ledger entry #{key.ledger_index}).")
        elif action == "withdraw":
            bid = get_object_or_404(Bid, pk=post.get("bid"), tender=item)
            services.withdraw_bid(actor=user, bid=bid)
        elif action == "declare":
            services.declare_conflict_of_interest(
                actor=user, tender=item, no_conflict=post.get("no_conflict") == "yes",
                statement=post.get("statement", ""))
        elif action == "eligibility":
            row = get_object_or_404(BidLot, pk=post.get("bid_lot"), bid__tender=item)
            met = set(post.getlist("check"))
            checks = {c: str(i) in met for i, c in enumerate(item.compliance_criteria)}
            services.decide_eligibility(actor=user, bid_lot=row,
                                        eligible=all(checks.values()), checks=checks,
                                        reason=post.get("reason", ""))
        elif action == "score":
            row = get_object_or_404(BidLot, pk=post.get("bid_lot"), bid__tender=item)
            services.score_quality(actor=user, bid_lot=row, score=post.get("score", ""),
                                   comment=post.get("comment", ""))
        elif action == "evaluation_committee":
            from django.contrib.auth import get_user_model

            names = [n.strip() for n in post.get("evaluation_members", "").split(",")
                     if n.strip()]
            found = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
            if set(names) != set(found):
                raise services.InvalidInput("Name members by their user names.")
            services.name_evaluation_committee(
                actor=user, tender=item, members=[found[n] for n in names],
                chair=found.get(post.get("chair", "").strip()), quorum=post.get("quorum"))
        elif action == "approve":
            services.approve_evaluation(actor=user, tender=item, sha256=post.get("sha256", ""),
                                        approved=post.get("approved") != "no",
                                        reason=post.get("reason", ""))
        elif action == "explain_request":
            row = get_object_or_404(BidLot, pk=_int(post.get("bid_lot")), bid__tender=item)
            services.request_explanation(actor=user, bid_lot=row,
                                         question=post.get("question", ""))
        elif action in ("explain_answer", "explain_decide"):
            from sahab.procurement.models import Explanation

            explanation = get_object_or_404(Explanation, pk=_int(post.get("explanation")),
                                            bid_lot__bid__tender=item)
            if action == "explain_answer":
                services.answer_explanation(actor=user, explanation=explanation,
                                            answer=post.get("answer", ""))
            else:
                services.decide_explanation(actor=user, explanation=explanation,
                                            accepted=post.get("accepted") == "yes",
                                            reason=post.get("reason", ""))
        elif action == "evaluate":
            services.complete_evaluation(actor=user, tender=item)
        elif action == "award":
            services.award_tender(actor=user, tender=item,
                                  justification=post.get("justification", ""))
        elif action == "complaint" and text.is_valid():
            services.file_complaint(actor=user, tender=item, text=text.cleaned_data["text"],
                                    lots=[n for n in post.getlist("lot") if n.isdigit()])
        elif action == "admissibility" and text.is_valid():
            complaint = get_object_or_404(Complaint, pk=_int(post.get("complaint")),
                                          tender=item)
            services.rule_admissibility(actor=user, complaint=complaint,
                                        admissible=post.get("admissible") == "yes",
                                        reason=text.cleaned_data["text"])
        elif action == "decide" and text.is_valid():
            complaint = get_object_or_404(Complaint, pk=_int(post.get("complaint")),
                                          tender=item)
            upheld = post.get("upheld") == "yes"
            services.decide_complaint(actor=user, complaint=complaint, upheld=upheld,
                                      remedy=post.get("remedy", "") if upheld else "",
                                      decision=text.cleaned_data["text"])
        elif action == "amend":
            from sahab.procurement.models import Contract

            contract = get_object_or_404(Contract, pk=post.get("contract"), tender=item)
            services.amend_contract(actor=user, contract=contract,
                                    justification=post.get("justification", ""),
                                    new_value=post.get("new_value") or None,
                                    new_end_date=_date(post.get("new_end_date")))
        elif action == "pay":
            from sahab.procurement.models import Contract

            contract = get_object_or_404(Contract, pk=post.get("contract"), tender=item)
            services.record_payment(actor=user, contract=contract,
                                    milestone=post.get("milestone", ""),
                                    amount=post.get("amount", ""))
        elif action == "price":
            from sahab.procurement.models import Contract

            contract = get_object_or_404(Contract, pk=post.get("contract"), tender=item)
            services.set_contract_price(actor=user, contract=contract,
                                        code=post.get("code", ""),
                                        description=post.get("description", ""),
                                        unit=post.get("unit", "") or "hour",
                                        unit_price=post.get("unit_price", ""))
        elif action == "countersign":
            from sahab.procurement.models import Contract

            contract = get_object_or_404(Contract, pk=_int(post.get("contract")), tender=item)
            services.countersign_contract(actor=user, contract=contract,
                                          terms_sha256_seen=post.get("terms_sha256", ""))
        elif action == "complete" and text.is_valid():
            from sahab.procurement.models import Contract

            contract = get_object_or_404(Contract, pk=_int(post.get("contract")), tender=item)
            services.complete_contract(actor=user, contract=contract,
                                       reason=text.cleaned_data["text"])
        elif action == "decide_amendment" and text.is_valid():
            from sahab.procurement.models import Amendment

            amendment = get_object_or_404(Amendment, pk=_int(post.get("amendment")),
                                          contract__tender=item)
            services.decide_amendment(actor=user, amendment=amendment,
                                      approve=post.get("approve") == "yes",
                                      reason=text.cleaned_data["text"])
        elif action == "contract":
            form = forms.ContractForm(post)
            award = get_object_or_404(Award, pk=post.get("award"), tender=item)
            if not form.is_valid():
                raise services.InvalidInput("Give the contract's start and end dates.")
            services.sign_contract(actor=user, award=award, **form.cleaned_data)
        else:
            raise services.InvalidInput("Fill in the form.")
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        if action not in ("bid", "register_key"):
            messages.success(request, "Done: the step is recorded in the public ledger.")
    return redirect("procurement:tender", reference=reference)


def manage(request):
    """A buyer's tenders (drafts included) and the form to draft a new one."""
    from django.contrib import messages
    from django.contrib.auth.views import redirect_to_login
    from django.shortcuts import redirect

    from sahab.core.errors import DomainError
    from sahab.directory import selectors as directory
    from sahab.directory.models import Role
    from sahab.procurement import forms, services
    from sahab.procurement.models import Tender

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
            messages.success(request, f"{tender.reference} is drafted.")
            return redirect("procurement:tender", reference=tender.reference)
    tenders = Tender.objects.filter(buyer__path__startswith=agent.administration.path) \
        .select_related("buyer").order_by("-created_at")[:200]
    return render(request, "procurement/manage.html",
                  {"form": form, "tenders": tenders, "officer": officer},
                  status=400 if form.errors else 200)
