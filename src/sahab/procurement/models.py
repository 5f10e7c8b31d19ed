"""Public procurement: plans, tenders with lots, sealed bids, evaluation, awards,
complaints and contracts. States change only through ``services``; every change is a
ledger entry, and ``Step`` keeps the ledger index of each one for pages and the API."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration, Company

MONEY = {"max_digits": 18, "decimal_places": 3}  # the dinar has 1000 millimes


class Procedure(models.TextChoices):
    OPEN = "open", _("Open call for tenders")
    RESTRICTED = "restricted", _("Restricted (with pre-qualification)")
    NEGOTIATED = "negotiated", _("Negotiated")
    SIMPLIFIED = "simplified", _("Simplified consultation")
    FRAMEWORK = "framework", _("Framework agreement")
    MINI_COMPETITION = "mini_competition", _("Call-off by mini-competition")


class State(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ENQUIRIES = "enquiries", _("Published (enquiries)")
    TENDERING = "tendering", _("Tendering")
    OPENING = "opening", _("Opening")
    EVALUATION = "evaluation", _("Evaluation")
    AWARDED = "awarded", _("Awarded")
    STANDSTILL = "standstill", _("Standstill")
    COMPLETE = "complete", _("Complete")
    CANCELLED = "cancelled", _("Cancelled")
    UNSUCCESSFUL = "unsuccessful", _("Unsuccessful")


class AwardCriteria(models.TextChoices):
    LOWEST_PRICE = "lowest_price", _("Lowest price")
    WEIGHTED = "weighted", _("Price and quality")


class Plan(models.Model):
    """An administration's procurement plan for one year."""

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="procurement_plans")
    year = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("procurement plan")
        verbose_name_plural = _("procurement plans")
        constraints = [models.UniqueConstraint(fields=["administration", "year"],
                                               name="one_plan_per_year")]
        ordering = ["-year"]

    def __str__(self) -> str:
        return f"{self.administration.code} {self.year}"


class PlanItem(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="items")
    description = models.CharField(max_length=500)
    cpv = models.CharField(max_length=10)
    budget_line = models.CharField(max_length=50)
    estimated_value = models.DecimalField(**MONEY)
    quarter = models.PositiveSmallIntegerField()
    procedure = models.CharField(max_length=20, choices=Procedure.choices)
    ocid = models.CharField(max_length=100, blank=True)  # the process it starts (OCDS)

    def __str__(self) -> str:
        return self.description


class Tender(models.Model):
    reference = models.CharField(max_length=40, unique=True)
    ocid = models.CharField(max_length=100, blank=True)  # its plan item's, or its own
    buyer = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="tenders")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    procedure = models.CharField(max_length=20, choices=Procedure.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT,
                             db_index=True)
    suspended = models.BooleanField(default=False)
    award_criteria = models.CharField(max_length=20, choices=AwardCriteria.choices,
                                      default=AwardCriteria.LOWEST_PRICE)
    price_weight = models.PositiveSmallIntegerField(default=100)
    # What every bid must comply with (administrative and technical conformity checks).
    compliance_criteria = models.JSONField(default=list, blank=True)
    currency = models.CharField(max_length=3, default="TND")
    estimated_value = models.DecimalField(**MONEY)
    enquiry_deadline = models.DateTimeField()
    submission_deadline = models.DateTimeField(db_index=True)
    standstill_days = models.PositiveSmallIntegerField(default=10)
    standstill_until = models.DateTimeField(null=True, blank=True)
    framework = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="call_offs")
    plan_item = models.ForeignKey(PlanItem, null=True, blank=True, on_delete=models.SET_NULL)
    # Sealing (docs/procurement.md): bids open with the keys of ``committee_threshold``
    # of the committee's members; bid entries go to the ledger under ``bid_tag``, which
    # the opening report makes public, so that nobody counts bids before the opening.
    committee_threshold = models.PositiveSmallIntegerField(default=0)
    # The evaluation committee's quorum: how many of its members must approve the
    # evaluation report before the award (0 until the committee is named).
    evaluation_quorum = models.PositiveSmallIntegerField(default=0)
    bid_tag = models.CharField(max_length=64, blank=True)
    # the publication entry commits to the tag (``sealing.tag_commitment``) with this
    # secret salt, which the opening report reveals: a tag changed in the database after
    # the publication no longer matches, and the opening refuses it
    bid_tag_salt = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # What the public search matches besides the texts above: the names and matricules of
    # the companies whose bids were opened, the names of the winners (procurement.search
    # rewrites it at the opening, the award and a company's renaming)
    party_names = models.TextField(blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("tender")
        verbose_name_plural = _("tenders")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "-published_at"]),
                   # the public list's order, whatever the states asked for
                   models.Index(fields=["-published_at", "-id"],
                                name="procurement_tender_pub_id")]
        # a tender's sealed bids are the ledger's entries under its tag: a tag copied
        # onto another tender in the database would open the first tender's bids there
        constraints = [models.UniqueConstraint(fields=["bid_tag"], condition=~models.Q(bid_tag=""),
                                               name="procurement_tender_bid_tag_once")]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def save(self, *args, **kwargs) -> None:
        # party_names is written only by procurement.search, in SQL: saving a tender read
        # before an opening or an award must not put the former names back
        if not self._state.adding and kwargs.get("update_fields") is None \
                and not kwargs.get("force_insert"):
            skipped = {"party_names"} | self.get_deferred_fields()  # as Django's own save
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name not in skipped
                                       and f.attname not in skipped]
        super().save(*args, **kwargs)


def locked_tenders(*, skip_locked: bool = False) -> models.QuerySet:
    """Tenders to change, each row locked until the transaction ends.

    The lock is ``FOR NO KEY UPDATE`` on PostgreSQL: it excludes every other lock of the
    tender, the bids' ``FOR SHARE`` included, but not the key-share lock that PostgreSQL's
    deferred foreign-key checks take at commit on the tender of a new row. With ``FOR
    UPDATE``, a transaction that had appended to the ledger (its lock is held until commit)
    and inserted a row of the tender deadlocked at commit against one holding the tender
    and waiting for the ledger. SQLite runs one writing transaction at a time anyway."""
    return Tender.objects.select_for_update(no_key=True, skip_locked=skip_locked)


class Lot(models.Model):
    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="lots")
    number = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=300)
    cpv = models.CharField(max_length=10)
    estimated_value = models.DecimalField(**MONEY)
    # A lot cancelled on its own (an upheld complaint's remedy) is never awarded.
    cancelled = models.BooleanField(default=False)
    # An upheld complaint invalidated the lot's evaluation: it is evaluated again (every
    # eligibility decided anew, then ranked) before it can be awarded.
    needs_evaluation = models.BooleanField(default=False)
    # Suspended by admitted complaints since this time; ``time_left`` is what remained of
    # the running period (bids or standstill) then, given back when the suspension ends.
    suspended_since = models.DateTimeField(null=True, blank=True)
    time_left = models.DurationField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["tender", "number"], name="lot_number")]

    def __str__(self) -> str:
        return f"{self.tender.reference} lot {self.number}"


class Item(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="items")
    description = models.CharField(max_length=300)
    cpv = models.CharField(max_length=10)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit = models.CharField(max_length=30)

    def __str__(self) -> str:
        return self.description


# The full opening report is a document of the tender under this name (the ledger entry of
# the opening holds its SHA-256); uploads cannot take it, .json being no upload format.
OPENING_REPORT = "opening-report.json"
OPENING_REPORT_FORMAT = "sahab-opening-report/1"


class TenderDocument(models.Model):
    """A tender document; a new upload with the same name is a new version."""

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=200)
    version = models.PositiveSmallIntegerField()
    media_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["tender", "name", "version"],
                                               name="document_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TenderAmendment(models.Model):
    """A modification of a published tender (avis rectificatif): new versions of its
    documents, new compliance criteria, new or changed lots and/or new deadlines, with its
    rationale. Each is a version of the tender: a ledger entry and an OCDS
    ``tenderAmendment`` release; bidders keep the legal minimum of days after it
    (docs/procurement.md, "Amendments")."""

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="amendments")
    number = models.PositiveSmallIntegerField()
    rationale = models.TextField()
    old_enquiry_deadline = models.DateTimeField()
    new_enquiry_deadline = models.DateTimeField()
    old_submission_deadline = models.DateTimeField()
    new_submission_deadline = models.DateTimeField()
    # the new document versions: [{"id", "name", "version", "sha256", "size"}]
    documents = models.JSONField(default=list, blank=True)
    # the compliance criteria before and after, when the amendment changed them
    old_compliance_criteria = models.JSONField(null=True, blank=True)
    new_compliance_criteria = models.JSONField(null=True, blank=True)
    # the lots added or changed: [{"number", "old": terms or None (added), "new": terms,
    # "items" (added lots)}], terms being the title, CPV and estimated value
    lots = models.JSONField(default=list, blank=True)
    amended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    amended_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["tender", "number"],
                                               name="amendment_number")]

    def __str__(self) -> str:
        return f"{self.tender.reference} amendment {self.number}"

    @property
    def extends_deadline(self) -> bool:
        return self.new_submission_deadline != self.old_submission_deadline


class Participation(models.Model):
    """Who may bid where the procedure is not open: invited, candidate, qualified."""

    class Kind(models.TextChoices):
        INVITED = "invited", _("Invited")
        CANDIDATE = "candidate", _("Candidate")
        QUALIFIED = "qualified", _("Qualified")
        NOT_QUALIFIED = "not_qualified", _("Not qualified")

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="participants")
    company = models.ForeignKey(Company, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tender", "company"],
                                               name="one_participation")]

    def __str__(self) -> str:
        return f"{self.company} {self.kind}"


class Question(models.Model):
    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="questions")
    company = models.ForeignKey(Company, on_delete=models.PROTECT)
    text = models.TextField()
    asked_at = models.DateTimeField(default=timezone.now)
    answer = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["asked_at"]

    def __str__(self) -> str:
        return self.text[:50]


class SigningKey(models.Model):
    """A company's Ed25519 bid-signing key (public half only); registered and revoked on
    the ledger, which is what the opening trusts."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="signing_keys")
    public_key = models.BinaryField()
    fingerprint = models.CharField(max_length=64, unique=True)
    certificate = models.TextField(blank=True)  # PEM, issued by the national or demo CA
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                      on_delete=models.SET_NULL, related_name="+")
    registered_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-registered_at"]

    def __str__(self) -> str:
        return f"{self.company} key {self.fingerprint[:16]}"


class CommitteeMember(models.Model):
    """A member of a tender's opening committee and their one-time X25519 opening key:
    the public half registered before publication, the private half released (and
    published) only after the submission deadline."""

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="committee")
    position = models.PositiveSmallIntegerField()
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="opening_committees")
    public_key = models.BinaryField(default=b"")
    key_ledger_index = models.BigIntegerField(null=True, blank=True)
    released_key = models.BinaryField(default=b"")
    released_at = models.DateTimeField(null=True, blank=True)
    release_ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["tender", "position"], name="committee_position"),
            models.UniqueConstraint(fields=["tender", "member"], name="committee_member")]

    def __str__(self) -> str:
        return f"{self.tender.reference} member {self.position}"


class Bid(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        REPLACED = "replaced", _("Replaced")
        OPENED = "opened", _("Opened")
        TAMPERED = "tampered", _("Rejected at the opening")
        # still to confirm at the opening, after an amendment changed the conditions
        UNCONFIRMED = "unconfirmed", _("Not confirmed after an amendment")

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="bids")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="bids")
    status = models.CharField(max_length=20, choices=Status.choices)
    envelope = models.BinaryField()  # a signed sahab-bid/2 envelope (sealing.py)
    commitment = models.CharField(max_length=64)  # SHA-256 of the envelope, in the ledger
    signing_key = models.ForeignKey(SigningKey, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="bids")
    problem = models.CharField(max_length=300, blank=True)  # why the opening rejected it
    # the number of the amendment that changed the tender's conditions after this bid was
    # sealed: the company must confirm (or replace, or withdraw) the bid before the
    # deadline; cleared by the confirmation. The opening decides from the ledger.
    confirm_amendment = models.PositiveIntegerField(null=True, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    # the bid's entry is written pending (``ledger.enqueue``); its index comes from the
    # sequencer right after the bid's commit (empty for that moment, or until the worker
    # integrates it if the server stopped in between)
    ledger_pending = models.BigIntegerField(null=True, blank=True, unique=True)
    ledger_index = models.BigIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    technical_offer = models.TextField(blank=True)  # readable after opening only
    documents = models.JSONField(default=list)  # names and SHA-256 after opening

    class Meta:
        ordering = ["submitted_at"]
        # the tender search by a bidder's name: its tenders without reading the bids
        indexes = [models.Index(fields=["company", "tender", "status"],
                                name="procurement_bid_comp_tender"),
                   # the few bids waiting for their ledger index, found by every tick
                   models.Index(fields=["ledger_pending"], name="procurement_bid_unsequenced",
                                condition=models.Q(ledger_index__isnull=True))]

    def __str__(self) -> str:
        return f"bid {self.pk} of {self.company} on {self.tender.reference}"


class BidLot(models.Model):
    """A bid's price for one lot, known only after opening."""

    bid = models.ForeignKey(Bid, on_delete=models.CASCADE, related_name="lot_prices")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="bid_prices")
    price = models.DecimalField(**MONEY)
    eligible = models.BooleanField(null=True)
    eligibility_reason = models.TextField(blank=True)
    compliance = models.JSONField(default=dict, blank=True)  # criterion → met
    abnormally_low = models.BooleanField(default=False)
    score = models.DecimalField(max_digits=7, decimal_places=3, null=True)
    rank = models.PositiveSmallIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bid", "lot"], name="one_price_per_lot")]

    def __str__(self) -> str:
        return f"{self.bid} lot {self.lot.number}: {self.price}"


class ConflictDeclaration(models.Model):
    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="declarations")
    evaluator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    no_conflict = models.BooleanField()
    statement = models.TextField(blank=True)
    declared_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tender", "evaluator"],
                                               name="one_declaration")]

    def __str__(self) -> str:
        return f"{self.evaluator} on {self.tender}"


class EvaluationMember(models.Model):
    """A member of a tender's evaluation committee (commission d'évaluation): only members
    declare their interests, decide eligibility, score and approve the evaluation report;
    the report is adopted when ``Tender.evaluation_quorum`` of them approved it."""

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE,
                               related_name="evaluation_committee")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="evaluation_committees")
    chair = models.BooleanField(default=False)
    named_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-chair", "pk"]
        constraints = [models.UniqueConstraint(fields=["tender", "member"],
                                               name="evaluation_member")]

    def __str__(self) -> str:
        return f"{self.tender.reference} evaluator {self.member}"


class EvaluationReport(models.Model):
    """One evaluation report as the committee proposed it (``complete_evaluation``): its
    members approve or dissent from this exact report (its SHA-256); a later proposal, or
    a change to the evaluation, supersedes it."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        ADOPTED = "adopted", _("Adopted")
        SUPERSEDED = "superseded", _("Superseded")

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE,
                               related_name="evaluation_reports")
    number = models.PositiveSmallIntegerField()
    report = models.JSONField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices,
                              default=Status.PROPOSED)
    proposed_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField(null=True, blank=True)
    adopted_at = models.DateTimeField(null=True, blank=True)
    adopted_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["tender", "number"],
                                               name="evaluation_report_number")]

    def __str__(self) -> str:
        return f"{self.tender.reference} evaluation report {self.number}"


class ReportApproval(models.Model):
    """A committee member's approval of, or dissent (with reasons) from, one report."""

    report = models.ForeignKey(EvaluationReport, on_delete=models.CASCADE,
                               related_name="approvals")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    approved = models.BooleanField()
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["report", "member"],
                                               name="one_vote_per_report")]

    def __str__(self) -> str:
        return f"{self.member} {'approves' if self.approved else 'dissents'} {self.report}"


class Explanation(models.Model):
    """The explanation of an abnormally low price asked of its bidder: the committee
    asks with a deadline, the company answers, the committee accepts it or rejects it
    (a rejected bid is disqualified on the lot)."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        ANSWERED = "answered", _("Answered")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        VOID = "void", _("Void (the lot was evaluated again)")

    bid_lot = models.ForeignKey("BidLot", on_delete=models.CASCADE,
                                related_name="explanations")
    question = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                     on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    requested_index = models.BigIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_index = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices,
                              default=Status.REQUESTED, db_index=True)
    decision = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["requested_at", "pk"]

    def __str__(self) -> str:
        return f"explanation {self.pk} of {self.bid_lot}"


class QualityScore(models.Model):
    bid_lot = models.ForeignKey(BidLot, on_delete=models.CASCADE, related_name="quality_scores")
    evaluator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    score = models.DecimalField(max_digits=6, decimal_places=2)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bid_lot", "evaluator"],
                                               name="one_score_per_evaluator")]

    def __str__(self) -> str:
        return f"{self.score}"


class Award(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="awards")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="awards")
    bid_lot = models.ForeignKey(BidLot, on_delete=models.PROTECT)
    supplier = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="awards")
    value = models.DecimalField(**MONEY)
    justification = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    decided_at = models.DateTimeField(default=timezone.now)
    # Each award has its own standstill: a lot awarded again after an upheld complaint
    # does not hold back the contracts of the others.
    standstill_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("award")
        verbose_name_plural = _("awards")
        # the tender search by a winner's name: its tenders without reading the awards
        indexes = [models.Index(fields=["supplier", "tender"],
                                name="procurement_award_supp_tender")]

    def __str__(self) -> str:
        return f"{self.lot} → {self.supplier}"


class Complaint(models.Model):
    """A complaint to the complaints body (docs/procurement.md, "Complaints"): filed by a
    company, ruled admissible or not, then decided on the merits; only an admitted
    complaint suspends, and only the lots it concerns."""

    class Kind(models.TextChoices):
        DOCUMENTS = "documents", _("Against the tender documents")
        AWARD = "award", _("Against the evaluation or award of a lot")
        QUALIFICATION = "qualification", _("Against a refusal at pre-qualification")

    class Status(models.TextChoices):
        FILED = "filed", _("Filed")
        ADMITTED = "admitted", _("Admitted")
        INADMISSIBLE = "inadmissible", _("Inadmissible")
        LAPSED = "lapsed", _("Lapsed (admissibility not ruled in time)")
        UPHELD = "upheld", _("Upheld")
        REJECTED = "rejected", _("Rejected")

    class Remedy(models.TextChoices):
        NONE = "", _("None")
        REEVALUATE = "reevaluate", _("The lot's evaluation is redone")
        AMEND_DOCUMENTS = "amend_documents", _("The documents are amended")
        CANCEL_LOT = "cancel_lot", _("The lot is cancelled")
        QUALIFY = "qualify", _("The candidate is admitted to bid")

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="complaints")
    company = models.ForeignKey(Company, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DOCUMENTS)
    lots = models.ManyToManyField(Lot, related_name="complaints")
    text = models.TextField()
    filed_at = models.DateTimeField(default=timezone.now)
    filed_index = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.FILED,
                              db_index=True)
    admissibility_reason = models.TextField(blank=True)
    admissibility_at = models.DateTimeField(null=True, blank=True)
    admissibility_index = models.BigIntegerField(null=True, blank=True)
    decision = models.TextField(blank=True)
    remedy = models.CharField(max_length=20, choices=Remedy.choices, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_index = models.BigIntegerField(null=True, blank=True)
    # The suspension of the lots concerned: from admission until the decision (or until
    # the documents are amended, or the decision's time limit passed).
    suspended_from = models.DateTimeField(null=True, blank=True)
    suspended_until = models.DateTimeField(null=True, blank=True)
    remedied_at = models.DateTimeField(null=True, blank=True)
    remedied_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"complaint {self.pk} on {self.tender.reference}"

    @property
    def suspends(self) -> bool:
        return self.suspended_from is not None and self.suspended_until is None


class Contract(models.Model):
    """A lot's contract: signed by the buyer's procurement officer (``pending``), then
    countersigned by a user of the supplier (``active``), both over the same terms
    (``terms_sha256``); ``completed`` when the buyer accepts it as carried out (or the
    timer finds it fully paid and over), ``terminated`` when ended early. The statuses
    are OCDS's contractStatus, with ``completed`` published as ``terminated``."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting the supplier's signature")
        ACTIVE = "active", _("Active")
        TERMINATED = "terminated", _("Terminated")
        COMPLETED = "completed", _("Completed")

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="contracts")
    award = models.OneToOneField(Award, on_delete=models.PROTECT, related_name="contract")
    supplier = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="contracts")
    value = models.DecimalField(**MONEY)
    start_date = models.DateField()
    end_date = models.DateField()
    # the buyer's signature (the first one): when, by whom (null: the platform), its entry
    signed_at = models.DateTimeField(default=timezone.now)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    signed_index = models.BigIntegerField(null=True, blank=True)
    # SHA-256 of the canonical terms both parties sign (value, dates, lot, supplier)
    terms_sha256 = models.CharField(max_length=64, blank=True)
    # the supplier's countersignature, which makes the contract binding (OCDS dateSigned)
    supplier_signed_at = models.DateTimeField(null=True, blank=True)
    supplier_signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="+")
    supplier_signed_index = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    termination_reason = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completion_reason = models.TextField(blank=True)
    final_value = models.DecimalField(null=True, blank=True, **MONEY)  # paid in all
    completion_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")

    def __str__(self) -> str:
        return f"contract {self.pk} {self.supplier}"


class ContractPrice(models.Model):
    """One line of a contract's schedule of unit prices (bordereau des prix unitaires).

    Framework agreements for services bought per use carry a price per unit for each
    catalogue item; ``code`` names the item in the supplier's catalogue (for cloud
    services: the Open Service Broker plan id), so that orders use the contractual price.
    """

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="prices")
    code = models.CharField(max_length=100)
    description = models.CharField(max_length=300)
    unit = models.CharField(max_length=30, default="hour")
    unit_price = models.DecimalField(**MONEY)
    ledger_index = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contract", "code"],
                                               name="one_price_per_item_and_contract")]

    def __str__(self) -> str:
        return f"{self.code}: {self.unit_price} TND/{self.unit}"


class Amendment(models.Model):
    """A change of a contract's value or end date (avenant). Within the ceiling it is
    ``applied`` at once; a value raised beyond it, counted from the signed value, is
    ``proposed`` and waits for a control agent who ``approved`` (then applied) or
    ``refused`` it."""

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied (within the ceiling)")
        PROPOSED = "proposed", _("Awaiting approval")
        APPROVED = "approved", _("Approved and applied")
        REFUSED = "refused", _("Refused")

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="amendments")
    old_value = models.DecimalField(**MONEY)
    new_value = models.DecimalField(**MONEY)
    old_end_date = models.DateField()
    new_end_date = models.DateField()
    justification = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.APPLIED,
                              db_index=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    ledger_index = models.BigIntegerField(null=True, blank=True)
    # the increase over the signed value, in percent, this amendment would bring in all
    cumulative_increase = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    decided_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"amendment {self.pk}"

    @property
    def in_force(self) -> bool:
        """Whether the amendment changed the contract (applied at once, or approved)."""
        return self.status in (self.Status.APPLIED, self.Status.APPROVED)


class Payment(models.Model):
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="payments")
    milestone = models.CharField(max_length=300)
    amount = models.DecimalField(**MONEY)
    paid_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.amount} for {self.milestone}"


class CallOff(models.Model):
    """An order placed directly under a framework agreement, at its prices."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="call_offs")
    buyer = models.ForeignKey(Administration, on_delete=models.PROTECT,
                              related_name="call_offs")
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit_price = models.DecimalField(**MONEY)
    value = models.DecimalField(**MONEY)
    ordered_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField()

    class Meta:
        verbose_name = _("call-off")
        verbose_name_plural = _("call-offs")
        ordering = ["-ordered_at"]

    def __str__(self) -> str:
        return f"call-off {self.pk} on {self.contract}"


class Step(models.Model):
    """One recorded step of a procedure and its ledger index (shown on every page)."""

    tender = models.ForeignKey(Tender, on_delete=models.CASCADE, related_name="steps")
    type = models.CharField(max_length=100)
    # a step that publishes nothing (a question asked) is written with a pending entry
    # (``ledger.enqueue``): it keeps the promise's number until the worker's sequencer
    # gives it its index, within a second
    ledger_pending = models.BigIntegerField(null=True, blank=True, unique=True)
    ledger_index = models.BigIntegerField(unique=True, null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("procedure step")
        verbose_name_plural = _("procedure steps")
        # in ledger order, a step still pending last (on both databases)
        ordering = [models.F("ledger_index").asc(nulls_last=True), "id"]
        indexes = [models.Index(fields=["ledger_pending"], name="procurement_step_unsequenced",
                                condition=models.Q(ledger_index__isnull=True))]

    def __str__(self) -> str:
        if self.ledger_index is None and self.ledger_pending is not None:
            return f"{self.type} (promise {self.ledger_pending})"
        return f"{self.type} #{self.ledger_index}"


class Notice(models.Model):
    """A message to a company about a tender (award notification, complaint decision)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="notices")
    tender = models.ForeignKey(Tender, on_delete=models.CASCADE)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text[:50]


class Release(models.Model):
    """An OCDS release: published once, never changed; a change is a new release."""

    ocid = models.CharField(max_length=100, db_index=True)
    release_id = models.CharField(max_length=120, unique=True)
    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="releases",
                               null=True, blank=True)
    plan_item = models.ForeignKey(PlanItem, on_delete=models.PROTECT, related_name="releases",
                                  null=True, blank=True)
    date = models.DateTimeField(db_index=True)
    tags = models.JSONField()
    data = models.JSONField()
    ledger_index = models.BigIntegerField(unique=True)

    class Meta:
        ordering = ["ledger_index"]

    def __str__(self) -> str:
        return self.release_id


class CompiledRelease(models.Model):
    """A contracting process's compiled release (ocdsmerge over all its releases), kept in
    the transaction of each new release: the red flags and the records file read it
    instead of merging a country's processes again on each run."""

    ocid = models.CharField(max_length=100, primary_key=True)
    up_to = models.BigIntegerField()  # the ledger index of the last release merged
    data = models.JSONField()

    def __str__(self) -> str:
        return self.ocid


class OcdsBulkFile(models.Model):
    """The current OCDS bulk file of one kind (``bulkfiles``): every release up to ledger
    index ``up_to``, written by the worker, its SHA-256 recorded on the ledger at
    ``ledger_index``."""

    class Kind(models.TextChoices):
        RELEASES = "releases", _("Releases")
        RECORDS = "records", _("Records")

    kind = models.CharField(max_length=16, choices=Kind.choices, primary_key=True)
    filename = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()  # bytes, compressed
    items = models.BigIntegerField()  # releases or records in the package
    up_to = models.BigIntegerField()  # the last release's ledger index (-1: none yet)
    built_at = models.DateTimeField()
    seconds = models.FloatField()  # how long writing it took
    ledger_index = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.kind} up to {self.up_to}"

    def path(self):
        """The file, when the row names one the worker wrote (``bulkfiles.file_of``);
        None otherwise."""
        from sahab.procurement.bulkfiles import file_of

        return file_of(self)


class RedFlagRun(models.Model):
    """One computation of the red flags over every published record, by the worker:
    pages and the API read the latest run instead of computing the flags themselves."""

    computed_at = models.DateTimeField(db_index=True)
    seconds = models.FloatField()  # how long the computation took
    releases_upto = models.BigIntegerField(null=True)  # ledger index of the last release seen
    config_sha256 = models.CharField(max_length=64)  # the settings it was computed with
    count = models.PositiveIntegerField()
    flags = models.JSONField()  # every flag, as ``redflags.stored`` writes it

    class Meta:
        ordering = ["-computed_at"]

    def __str__(self) -> str:
        return f"{self.count} flags at {self.computed_at:%Y-%m-%d %H:%M}"


class DashboardTable(models.Model):
    """One of the dashboards' tables (``dashboard.TABLES``) as the worker last aggregated
    it: at a country's size an aggregation takes seconds, which no visitor should wait
    for; pages read the stored rows."""

    name = models.CharField(max_length=32, primary_key=True)
    rows = models.JSONField()
    computed_at = models.DateTimeField()
    seconds = models.FloatField()  # how long the aggregation took

    def __str__(self) -> str:
        return f"{self.name} at {self.computed_at:%Y-%m-%d %H:%M}"


class OfficialDocument(models.Model):
    """A signed official document (PDF in French or Arabic, PAdES) recording one step:
    the opening report, an evaluation report, an award decision or a contract. Signed by
    the certificate of the agent who took the step (the platform's seal for the automatic
    opening); its SHA-256 is on the ledger (``procurement.document.signed``)."""

    class Kind(models.TextChoices):
        OPENING_REPORT = "opening_report", _("Opening report")
        EVALUATION_REPORT = "evaluation_report", _("Evaluation report")
        AWARD_DECISION = "award_decision", _("Award decision")
        CONTRACT = "contract", _("Contract")

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT,
                               related_name="official_documents")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    language = models.CharField(max_length=5)
    step_index = models.BigIntegerField()  # the ledger index of the step it records
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="official_documents")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=300)
    certificate = models.TextField(blank=True)  # PEM of the certificate it is signed with
    content = models.BinaryField(default=b"")
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ledger_index = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["step_index", "language"]
        constraints = [models.UniqueConstraint(fields=["step_index", "language"],
                                               name="one_official_document_per_language")]

    def __str__(self) -> str:
        return f"{self.tender.reference} {self.kind} ({self.language})"
