"""Who is told what about complaints and amendments, by mail through sahab's own mail system: the
complaints body when a complaint waits for its ruling, the buyer's procurement officers
when their tender is complained against, and the company that complained at each ruling.
The complaints body is found with the rule its services check
(``rules.can_decide_complaint``), so no one is told of a complaint they may not decide.

The account page's "waiting for you" list gets the same people's work: complaints to
rule on or to decide, and the tenders whose evaluation committee they sit on."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from sahab.directory import rules
from sahab.directory import selectors as directory
from sahab.directory.models import Agent, CompanyMember, Role
from sahab.mail import notices
from sahab.mail.models import NoticeKind
from sahab.procurement.models import (
    Amendment,
    Complaint,
    Contract,
    Explanation,
    Participation,
    State,
    Tender,
    TenderAmendment,
)


def _link(tender: Tender) -> str:
    return settings.PUBLIC_URL.rstrip("/") + reverse("procurement:tender",
                                                     args=(tender.reference,))


def _agents_with(role: str, **where) -> list:
    return [a.user for a in Agent.objects.filter(roles__role=role, user__is_active=True,
                                                  **where).select_related("user").distinct()]


def complaints_body(tender: Tender) -> list:
    """The members of the complaints body who may rule on complaints against ``tender``."""
    return [u for u in _agents_with(Role.COMPLAINTS_BODY)
            if rules.can_decide_complaint(u, tender.buyer)]


def buyer_officers(tender: Tender) -> list:
    """The procurement officers of the buying administration."""
    return _agents_with(Role.PROCUREMENT_OFFICER, administration=tender.buyer)


def _company_members(complaint: Complaint) -> list:
    return [m.user for m in CompanyMember.objects.filter(company=complaint.company_id)
            .select_related("user")]


def _facts(complaint: Complaint) -> dict:
    tender = complaint.tender
    return {"number": complaint.pk, "reference": tender.reference, "title": tender.title,
            "company": complaint.company.name, "link": _link(tender)}


@notices.in_platform_language
def complaint_filed(complaint: Complaint) -> None:
    facts = _facts(complaint)
    notices.tell(complaints_body(complaint.tender),
                 _("A complaint waits for your ruling: %(reference)s") % facts,
                 _("%(company)s filed complaint no. %(number)s against %(reference)s "
                   "(%(title)s). Rule on its admissibility within the time limit:\n\n"
                   "%(link)s") % facts,
                 kind=NoticeKind.COMPLAINTS)
    notices.tell(buyer_officers(complaint.tender),
                 _("Complaint filed against %(reference)s") % facts,
                 _("%(company)s filed complaint no. %(number)s against %(reference)s "
                   "(%(title)s). It suspends nothing until the complaints body admits it."
                   "\n\n%(link)s") % facts,
                 kind=NoticeKind.COMPLAINTS)


@notices.in_platform_language
def complaint_ruled(complaint: Complaint) -> None:
    """Admitted or not, then upheld or rejected: the company and the buyer are told."""
    facts = _facts(complaint) | {"status": complaint.get_status_display().lower(),
                                 "why": complaint.decision or complaint.admissibility_reason}
    notices.tell(_company_members(complaint) + buyer_officers(complaint.tender),
                 _("Complaint no. %(number)s on %(reference)s: %(status)s") % facts,
                 _("The complaints body ruled on complaint no. %(number)s of %(company)s "
                   "against %(reference)s (%(title)s): %(status)s.\n\n%(why)s\n\n%(link)s")
                 % facts,
                 kind=NoticeKind.COMPLAINTS)


def _members_of(companies) -> list:
    return [m.user for m in CompanyMember.objects.filter(company__in=list(companies))
            .select_related("user").order_by("pk")]


@notices.in_platform_language
def tender_amended(amendment: TenderAmendment, *, bidders, others, to_confirm: bool) -> None:
    """The companies with a sealed bid and those that asked questions are told of an
    amendment; nobody else learns who bid. When the amendment changed the conditions
    (``to_confirm``) bidders must confirm or replace their bid by the deadline, else it is
    not opened; after later deadlines alone it stays valid."""
    tender = amendment.tender
    facts = {"number": amendment.number, "reference": tender.reference,
             "title": tender.title, "rationale": amendment.rationale,
             "deadline": f"{tender.submission_deadline:%Y-%m-%d %H:%M} UTC",
             "link": _link(tender)}
    subject = _("%(reference)s is amended (amendment no. %(number)s)") % facts
    to_bidders = (
        _("The buyer amended %(reference)s (%(title)s): %(rationale)s\n\n"
          "The conditions changed: you must confirm or replace your sealed bid by "
          "%(deadline)s. A bid not confirmed after amendment no. %(number)s is not opened. "
          "You may also withdraw it.\n\n%(link)s") if to_confirm else
        _("The buyer amended %(reference)s (%(title)s): %(rationale)s\n\n"
          "Bids are due by %(deadline)s. Your sealed bid stays valid unless you "
          "withdraw it; you may replace it with a new one before the deadline."
          "\n\n%(link)s"))
    notices.tell(_members_of(bidders), subject, to_bidders % facts, kind=NoticeKind.TENDERS)
    notices.tell(_members_of(others), subject,
                 _("The buyer amended %(reference)s (%(title)s): %(rationale)s\n\n"
                   "Bids are due by %(deadline)s.\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


@notices.in_platform_language
def candidate_decided(participation: Participation, *, reason: str,
                      complain_by: dt.datetime | None) -> None:
    """A candidate of a restricted procedure is told whether it may bid; a refused one
    is given the buyer's reasons and the date until which it may complain."""
    tender = participation.tender
    facts = {"reference": tender.reference, "title": tender.title, "reason": reason,
             "link": _link(tender),
             "due": f"{complain_by:%Y-%m-%d %H:%M} UTC" if complain_by else ""}
    if complain_by is None:
        subject = _("%(reference)s: your company may bid") % facts
        body = _("The buyer qualified your company to bid on %(reference)s (%(title)s)."
                 "\n\n%(link)s") % facts
    else:
        subject = _("%(reference)s: your company is not qualified") % facts
        body = _("The buyer did not qualify your company to bid on %(reference)s "
                 "(%(title)s): %(reason)s\n\nYou may complain against this refusal on the "
                 "tender's page until %(due)s.\n\n%(link)s") % facts
    notices.tell(_members_of([participation.company_id]), subject, body,
                 kind=NoticeKind.TENDERS)


@notices.in_platform_language
def explanation_requested(explanation: Explanation) -> None:
    """The bidder of an abnormally low price is asked to explain it by the deadline."""
    bid_lot = explanation.bid_lot
    tender = bid_lot.bid.tender
    facts = {"reference": tender.reference, "title": tender.title, "lot": bid_lot.lot.number,
             "question": explanation.question, "link": _link(tender),
             "due": f"{explanation.due_at:%Y-%m-%d %H:%M} UTC"}
    notices.tell(_members_of([bid_lot.bid.company_id]),
                 _("%(reference)s: explain your price for lot %(lot)s") % facts,
                 _("The evaluation committee of %(reference)s (%(title)s) found your price "
                   "for lot %(lot)s abnormally low and asks you to explain it by %(due)s:"
                   "\n\n%(question)s\n\nWithout an answer by then, your bid may be "
                   "rejected on this lot.\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


@notices.in_platform_language
def report_to_approve(report, *, voters: list) -> None:
    """A report is proposed: each member of the committee who votes is asked to approve
    it, or to dissent with reasons — the award waits for the quorum."""
    tender = report.tender
    facts = {"number": report.number, "reference": tender.reference, "title": tender.title,
             "quorum": tender.evaluation_quorum, "sha256": report.sha256,
             "link": _link(tender)}
    notices.tell(voters,
                 _("Evaluation report no. %(number)s of %(reference)s waits for your vote")
                 % facts,
                 _("The evaluation report no. %(number)s of %(reference)s (%(title)s) is "
                   "proposed to the evaluation committee. Read it, then approve it or dissent "
                   "with your reasons; it is adopted once %(quorum)s members approve this "
                   "very report (SHA-256 %(sha256)s).\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


# --- contracts: the supplier's countersignature, amendments beyond the ceiling ----------------

def _contract_facts(contract: Contract) -> dict:
    tender = contract.tender
    return {"contract": contract.pk, "reference": tender.reference, "title": tender.title,
            "lot": contract.award.lot.number, "company": contract.supplier.name,
            "value": f"{contract.value} TND", "link": _link(tender) + f"#contract-{contract.pk}"}


@notices.in_platform_language
def contract_to_countersign(contract: Contract) -> None:
    """The buyer signed: the supplier's users are asked to countersign the same terms."""
    facts = _contract_facts(contract) | {"terms": contract.terms_sha256}
    notices.tell(_members_of([contract.supplier_id]),
                 _("Contract no. %(contract)s of %(reference)s waits for your signature")
                 % facts,
                 _("The buyer signed the contract of lot %(lot)s of %(reference)s "
                   "(%(title)s) with %(company)s, for %(value)s. It is in force once a user "
                   "of %(company)s countersigns it; the terms both parties sign have the "
                   "SHA-256 %(terms)s.\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


@notices.in_platform_language
def amendment_to_approve(amendment: Amendment) -> None:
    """An amendment beyond the ceiling: the control agents of the buyer's line are told."""
    from sahab.procurement import selectors

    contract = amendment.contract
    facts = _contract_facts(contract) | {
        "number": amendment.pk, "old": f"{amendment.old_value} TND",
        "new": f"{amendment.new_value} TND", "increase": amendment.cumulative_increase,
        "justification": amendment.justification}
    notices.tell(selectors.amendment_controllers(contract.tender.buyer),
                 _("Amendment no. %(number)s of %(reference)s waits for your approval")
                 % facts,
                 _("The buyer proposes to change contract no. %(contract)s of %(reference)s "
                   "(%(title)s, %(company)s) from %(old)s to %(new)s: %(increase)s %% over "
                   "the signed value in all, beyond the ceiling. Approve or refuse it, with "
                   "your reasons:\n\n%(justification)s\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


@notices.in_platform_language
def amendment_decided(amendment: Amendment) -> None:
    """The buyer's procurement officers learn the control's decision."""
    contract = amendment.contract
    facts = _contract_facts(contract) | {
        "number": amendment.pk, "status": amendment.get_status_display().lower(),
        "why": amendment.decision_reason}
    notices.tell(buyer_officers(contract.tender),
                 _("Amendment no. %(number)s of %(reference)s: %(status)s") % facts,
                 _("The control ruled on amendment no. %(number)s of contract no. "
                   "%(contract)s of %(reference)s (%(title)s): %(status)s.\n\n%(why)s"
                   "\n\n%(link)s") % facts,
                 kind=NoticeKind.TENDERS)


# --- the account page's "waiting for you" ---------------------------------------------------

def waiting_for(user) -> list:
    """Complaints this person may rule on or decide, tenders they may evaluate,
    amendments they may approve; for a company's users, what the company is to do."""
    from sahab.core.waiting import Waiting

    agent = directory.agent_of(user)
    if agent is None:
        return _company_waiting(user) + _bids_to_confirm(user)
    items = []
    if Role.AUDITOR in agent.role_set:
        from sahab.procurement import selectors

        proposed = Amendment.objects.filter(
            status=Amendment.Status.PROPOSED, contract__status=Contract.Status.ACTIVE) \
            .select_related("contract__tender__buyer").order_by("created_at")[:100]
        for a in proposed:
            if selectors.may_control_amendments(user, a.contract.tender.buyer) and \
                    a.proposed_by_id != user.pk:
                items.append(Waiting(
                    _("Approve or refuse amendment no. %(number)s of %(reference)s")
                    % {"number": a.pk, "reference": a.contract.tender.reference},
                    reverse("procurement:tender", args=(a.contract.tender.reference,)),
                    a.created_at))
    if Role.COMPLAINTS_BODY in agent.role_set:
        open_ = Complaint.objects.filter(status__in=[Complaint.Status.FILED,
                                                     Complaint.Status.ADMITTED]) \
            .select_related("tender__buyer", "company").order_by("filed_at")[:100]
        for c in open_:
            if not rules.can_decide_complaint(user, c.tender.buyer):
                continue
            label = (_("Rule on the admissibility of complaint no. %(number)s on "
                       "%(reference)s") if c.status == Complaint.Status.FILED else
                     _("Decide complaint no. %(number)s on %(reference)s"))
            items.append(Waiting(label % {"number": c.pk, "reference": c.tender.reference},
                                 reverse("procurement:tender", args=(c.tender.reference,)),
                                 c.filed_at))
    items += _reports_to_vote_on(user)
    if Role.EVALUATOR in agent.role_set:
        # the tenders of the evaluator's administration and below (``_buyer_agent``'s rule)
        # whose evaluation committee they sit on: only members evaluate
        for tender in Tender.objects.filter(
                state=State.EVALUATION, buyer__path__startswith=agent.administration.path,
                evaluation_committee__member=user).order_by("submission_deadline")[:100]:
            items.append(Waiting(_("Evaluate the bids of %(reference)s")
                                 % {"reference": tender.reference},
                                 reverse("procurement:tender", args=(tender.reference,)),
                                 tender.submission_deadline))
    return items


def _reports_to_vote_on(user) -> list:
    """Proposed reports of committees the person sits on, not yet voted on by them."""
    from sahab.core.waiting import Waiting
    from sahab.procurement.models import EvaluationReport

    reports = EvaluationReport.objects.filter(
        status=EvaluationReport.Status.PROPOSED, tender__evaluation_committee__member=user) \
        .exclude(approvals__member=user).select_related("tender").order_by("proposed_at")
    return [Waiting(_("Vote on evaluation report no. %(number)s of %(reference)s")
                    % {"number": r.number, "reference": r.tender.reference},
                    reverse("procurement:tender", args=(r.tender.reference,)), r.proposed_at)
            for r in reports[:100]]


def _bids_to_confirm(user) -> list:
    """The company's sealed bids that an amendment asks to confirm, until confirmed,
    replaced or withdrawn, or until the deadline passes (``services.confirm_bid``'s
    rule)."""
    from django.utils import timezone

    from sahab.core.waiting import Waiting
    from sahab.procurement.models import Bid

    company = directory.company_of(user)
    if company is None or not company.active:
        return []
    bids = Bid.objects.filter(
        company=company, status=Bid.Status.SUBMITTED, confirm_amendment__isnull=False,
        tender__state__in=[State.ENQUIRIES, State.TENDERING],
        tender__submission_deadline__gt=timezone.now()).select_related("tender") \
        .order_by("tender__submission_deadline")
    return [Waiting(_("Confirm or replace your bid on %(reference)s after amendment no. "
                      "%(number)s, by %(deadline)s")
                    % {"reference": b.tender.reference, "number": b.confirm_amendment,
                       "deadline": f"{b.tender.submission_deadline:%Y-%m-%d %H:%M} UTC"},
                    reverse("procurement:tender", args=(b.tender.reference,)),
                    b.tender.submission_deadline)
            for b in bids[:100]]


def _company_waiting(user) -> list:
    """Contracts the company is to countersign and prices it is asked to explain (bids an
    amendment asks to confirm wait as ``_bids_to_confirm``; an amendment that leaves a bid
    valid asks nothing: the tender page tells the company beside its bid)."""
    from sahab.core.waiting import Waiting

    company = directory.company_of(user)
    if company is None:
        return []
    items = [Waiting(_("Explain your price for lot %(lot)s of %(reference)s by %(due)s")
                     % {"lot": e.bid_lot.lot.number, "reference": e.bid_lot.bid.tender.reference,
                        "due": _when(e.due_at)},
                     reverse("procurement:tender", args=(e.bid_lot.bid.tender.reference,)),
                     e.requested_at)
             for e in Explanation.objects.filter(
                 bid_lot__bid__company=company, status=Explanation.Status.REQUESTED,
                 bid_lot__bid__tender__state=State.EVALUATION)
             .select_related("bid_lot__lot", "bid_lot__bid__tender").order_by("due_at")[:100]]
    return items + [Waiting(_("Countersign contract no. %(contract)s of %(reference)s")
                    % {"contract": c.pk, "reference": c.tender.reference},
                    reverse("procurement:tender", args=(c.tender.reference,)), c.signed_at)
            for c in Contract.objects.filter(supplier=company, status=Contract.Status.PENDING)
            .select_related("tender").order_by("signed_at")[:100]]


def _when(moment) -> str:
    """A date and time as the person reads them (their language, the platform's zone)."""
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
