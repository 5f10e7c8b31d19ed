"""Web forms of procurement: they parse; the services decide."""

import base64

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from sahab.core.formfields import MultipleFileField
from sahab.procurement.models import (
    Amendment,
    Award,
    AwardCriteria,
    Bid,
    BidLot,
    Complaint,
    Contract,
    Explanation,
    Participation,
    Procedure,
    Question,
)
from sahab.procurement.sealing import MAX_ENVELOPE_BYTES

LOT_ROWS = 3


class TenderForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=300)
    description = forms.CharField(label=_("Description"), required=False, max_length=20000,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    procedure = forms.ChoiceField(label=_("Procedure"), choices=Procedure.choices)
    award_criteria = forms.ChoiceField(label=_("Award criteria"), choices=AwardCriteria.choices)
    price_weight = forms.IntegerField(label=_("Price weight (%)"), min_value=1, max_value=100,
                                      initial=100)
    enquiry_deadline = forms.DateTimeField(
        label=_("Questions until"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}))
    submission_deadline = forms.DateTimeField(
        label=_("Bids until"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}))
    standstill_days = forms.IntegerField(label=_("Standstill (days)"), min_value=0,
                                         max_value=60, initial=10)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for n in range(1, LOT_ROWS + 1):
            required = n == 1
            self.fields[f"lot{n}_title"] = forms.CharField(
                label=_("Lot %(n)s: title") % {"n": n}, max_length=300, required=required)
            self.fields[f"lot{n}_cpv"] = forms.RegexField(
                label=_("Lot %(n)s: CPV code") % {"n": n}, regex=r"^\d{8}-\d$",
                required=required, help_text=_("For example 72000000-5."))
            self.fields[f"lot{n}_value"] = forms.DecimalField(
                label=_("Lot %(n)s: estimated value (TND)") % {"n": n}, max_digits=18,
                decimal_places=3, min_value=0.001, required=required)

    def lots(self) -> list[dict]:
        rows = []
        for n in range(1, LOT_ROWS + 1):
            title = self.cleaned_data.get(f"lot{n}_title")
            if title:
                rows.append({"title": title, "cpv": self.cleaned_data.get(f"lot{n}_cpv"),
                             "estimated_value": self.cleaned_data.get(f"lot{n}_value")})
        return rows


class TextForm(forms.Form):
    text = forms.CharField(label=_("Text"), max_length=20000,
                           widget=forms.Textarea(attrs={"rows": 3}))


# --- the forms of the tender page ---------------------------------------------------------
#
# Each action of the tender page has its form: it parses what the page posts (the same
# field names as the templates), finds the objects it names among the tender's own, and
# leaves every decision to the service. Limits are the services' own, so that the form
# refuses nothing the service would accept.

YES_NO = [("yes", _("Yes")), ("no", _("No"))]


def _yes(value: str) -> bool:
    return value == "yes"


def yes_no(label) -> forms.TypedChoiceField:
    """A required yes/no radio choice, cleaned to a bool."""
    return forms.TypedChoiceField(label=label, choices=YES_NO, coerce=_yes,
                                  widget=forms.RadioSelect)


def text_field(label, max_length: int, *, required: bool = True) -> forms.CharField:
    return forms.CharField(label=label, max_length=max_length, required=required,
                           widget=forms.Textarea(attrs={"rows": 2}))


class Base64Field(forms.CharField):
    """Base64 text (a key, a signature), cleaned to its bytes."""

    default_error_messages = {"invalid": _("This is not base64.")}

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return ""  # empty: "This field is required."
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error is a ValueError
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") \
                from None


class UserNamesField(forms.CharField):
    """User names separated by commas, cleaned to the users in the order given (a name
    given twice stays twice: the service says that members are distinct)."""

    default_error_messages = {"unknown": _("Name members by their user names.")}

    def clean(self, value):
        names = [n.strip() for n in super().clean(value).split(",") if n.strip()]
        found = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
        if set(names) != set(found):
            raise forms.ValidationError(self.error_messages["unknown"], code="unknown")
        return [found[n] for n in names]


class TenderActionForm(forms.Form):
    """A form that acts on one tender; the objects it names are looked up among that
    tender's own (``scoped``: field → queryset given the tender), so that no form reaches
    another tender's question, bid or contract. A form whose object is not found is a
    404, as a missing page is.

    The page's text areas are named ``<text_prefix><id>-text``, the id being the posted
    value of ``text_prefix_field`` (several such forms sit on one page without
    clashing); the form's other fields have no prefix."""

    text_prefix = ""
    text_prefix_field = ""
    scoped: dict = {}

    def __init__(self, data=None, files=None, *, tender=None, **kwargs):
        self.tender = tender
        super().__init__(data, files, **kwargs)
        for name, queryset in self.scoped.items():
            self.fields[name].queryset = queryset(tender) if tender is not None \
                else self.fields[name].queryset.none()

    def add_prefix(self, field_name):
        if field_name == "text" and self.text_prefix:
            key = self.data.get(self.text_prefix_field, "") if self.text_prefix_field else ""
            return f"{self.text_prefix}{key}-text"
        return super().add_prefix(field_name)

    def object_missing(self) -> bool:
        """Whether an object the form names is not the tender's (or not named at all)."""
        return any(self.has_error(name) for name in self.scoped)


def _choice(model, label) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(label=label, queryset=model.objects.none(),
                                  widget=forms.HiddenInput)


class ConfirmForm(TenderActionForm):
    """A step that takes nothing but the button (publish, complete the evaluation)."""


class CancelForm(TenderActionForm):
    text_prefix = "cancel"
    text = text_field(_("Reason"), 2000)


class DocumentForm(TenderActionForm):
    document = forms.FileField(label=_("Document"))


class AmendmentForm(TenderActionForm):
    """An amendment of a published tender: its rationale, later deadlines, new documents
    (a same-named document gets its next version), new criteria, changed or new lots."""

    rationale = forms.CharField(label=_("Rationale (published)"), max_length=20000,
                                widget=forms.Textarea(attrs={"rows": 3}))
    enquiry_deadline = forms.DateTimeField(
        label=_("New question deadline (optional)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}))
    submission_deadline = forms.DateTimeField(
        label=_("New bid deadline (optional)"), required=False,
        help_text=_("Needed when fewer than the legal minimum of days would remain after "
                    "the amendment."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}))
    documents = MultipleFileField(label=_("New documents or new versions (optional)"),
                                  required=False)
    compliance_criteria = forms.CharField(
        label=_("New compliance criteria (optional)"), required=False, max_length=10000,
        help_text=_("One per line: the whole list every bid will be checked against. "
                    "Empty: unchanged."),
        widget=forms.Textarea(attrs={"rows": 3}))

    new_lot_title = forms.CharField(label=_("New lot: title (optional)"), required=False,
                                    max_length=300)
    new_lot_cpv = forms.CharField(label=_("New lot: CPV code"), required=False, max_length=10)
    new_lot_value = forms.DecimalField(label=_("New lot: estimated value (TND)"),
                                       required=False, max_digits=18, decimal_places=3)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "amendment")
        super().__init__(*args, **kwargs)
        # each lot's terms, shown as they are: what is changed is amended
        for lot in self._lots():
            n = lot.number
            self.fields[f"lot{n}_title"] = forms.CharField(
                label=_("Lot %(n)s: title") % {"n": n}, initial=lot.title, max_length=300,
                required=False)
            self.fields[f"lot{n}_cpv"] = forms.CharField(
                label=_("Lot %(n)s: CPV code") % {"n": n}, initial=lot.cpv, max_length=10,
                required=False)
            self.fields[f"lot{n}_value"] = forms.DecimalField(
                label=_("Lot %(n)s: estimated value (TND)") % {"n": n},
                initial=lot.estimated_value, max_digits=18, decimal_places=3, required=False)

    def _lots(self) -> list:
        return [] if self.tender is None else list(self.tender.lots.filter(cancelled=False))

    def clean(self) -> dict:
        """``lots``: the whole new list when a lot's terms changed or a lot is added (the
        service checks each), else None (lots unchanged)."""
        data = super().clean()
        lots, changed = [], False
        for lot in self._lots():
            n = lot.number
            terms = {"number": n,
                     "title": data.get(f"lot{n}_title") or lot.title,
                     "cpv": data.get(f"lot{n}_cpv") or lot.cpv,
                     "estimated_value": data.get(f"lot{n}_value") or lot.estimated_value}
            changed |= (terms["title"], terms["cpv"], terms["estimated_value"]) != \
                (lot.title, lot.cpv, lot.estimated_value)
            lots.append(terms)
        if data.get("new_lot_title"):
            lots.append({"title": data["new_lot_title"], "cpv": data.get("new_lot_cpv"),
                         "estimated_value": data.get("new_lot_value")})
            changed = True
        data["lots"] = lots if changed else None
        return data

    def clean_compliance_criteria(self) -> list[str] | None:
        lines = [line.strip() for line in self.cleaned_data["compliance_criteria"]
                 .splitlines() if line.strip()]
        return lines or None


class QuestionForm(TenderActionForm):
    text_prefix = "question"
    text = text_field(_("Question"), 5000)


class AnswerForm(TenderActionForm):
    text_prefix, text_prefix_field = "answer", "question"
    scoped = {"question": lambda tender: Question.objects.filter(tender=tender)}
    question = _choice(Question, _("Question"))
    text = text_field(_("Answer"), 10000)


class BidForm(TenderActionForm):
    """The sealed, signed envelope the page made: it arrives as ASCII text."""

    envelope = forms.CharField(label=_("Sealed envelope"), strip=False,
                               max_length=MAX_ENVELOPE_BYTES)

    def clean_envelope(self) -> bytes:
        # forms send line breaks as CRLF; the envelope's canonical form has LF only
        envelope = self.cleaned_data["envelope"].replace("\r\n", "\n")
        if not envelope.isascii():
            raise forms.ValidationError(_("The sealed envelope is ASCII text."),
                                        code="not_ascii")
        return envelope.encode()


class CommitteeForm(TenderActionForm):
    members = UserNamesField(label=_("Members"), max_length=2000)
    threshold = forms.IntegerField(label=_("Threshold"), min_value=1, max_value=1000)


class CommitteeKeyForm(TenderActionForm):
    public_key = Base64Field(label=_("Opening key (public half)"), max_length=1000)


class ReleaseKeyForm(TenderActionForm):
    private_key = Base64Field(label=_("Opening key (private half)"), max_length=1000)


class SigningKeyForm(TenderActionForm):
    public_key = Base64Field(label=_("Signing key"), max_length=1000)
    proof = Base64Field(label=_("Proof of possession"), max_length=1000)


class WithdrawForm(TenderActionForm):
    scoped = {"bid": lambda tender: Bid.objects.filter(tender=tender)}
    bid = _choice(Bid, _("Bid"))


class ConfirmBidForm(TenderActionForm):
    """The company confirms its sealed bid after an amendment (the service checks whose)."""

    scoped = {"bid": lambda tender: Bid.objects.filter(tender=tender)}
    bid = _choice(Bid, _("Bid"))


class DeclarationForm(TenderActionForm):
    no_conflict = yes_no(_("No conflict of interest"))
    statement = text_field(_("Statement"), 5000, required=False)


def _bid_lots(tender):
    return BidLot.objects.filter(bid__tender=tender)


class EligibilityForm(TenderActionForm):
    """The compliance check of a bid on a lot: the criteria met are ticked by index."""

    scoped = {"bid_lot": _bid_lots}
    bid_lot = _choice(BidLot, _("Bid"))
    check = forms.TypedMultipleChoiceField(label=_("Criteria met"), coerce=int,
                                           required=False)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        criteria = self.tender.compliance_criteria if self.tender is not None else []
        self.fields["check"].choices = [(str(i), c) for i, c in enumerate(criteria)]

    def clean(self):
        data = super().clean()
        met = set(data.get("check") or [])
        data["checks"] = {c: i in met for i, c in enumerate(self.tender.compliance_criteria)}
        return data


class ScoreForm(TenderActionForm):
    scoped = {"bid_lot": _bid_lots}
    bid_lot = _choice(BidLot, _("Bid"))
    score = forms.DecimalField(label=_("Score"), min_value=0, max_value=100, max_digits=5,
                               decimal_places=2)
    comment = forms.CharField(label=_("Comment"), max_length=5000, required=False)


class EvaluationCommitteeForm(TenderActionForm):
    evaluation_members = UserNamesField(label=_("Members"), max_length=2000)
    chair = forms.CharField(label=_("Chair"), max_length=150)
    quorum = forms.IntegerField(label=_("Quorum"), max_value=1000)

    def clean(self):
        data = super().clean()
        members = data.get("evaluation_members") or []
        # a chair outside the members is no one: the service says the chair is a member
        data["chair"] = next((u for u in members if u.username == data.get("chair")), None)
        return data


class ApprovalForm(TenderActionForm):
    sha256 = forms.CharField(label=_("Report"), max_length=64)
    approved = yes_no(_("Approval"))
    reason = text_field(_("Reasons"), 5000, required=False)


class ExplanationRequestForm(TenderActionForm):
    scoped = {"bid_lot": _bid_lots}
    bid_lot = _choice(BidLot, _("Bid"))
    question = text_field(_("What the bidder must explain"), 5000)


def _explanations(tender):
    return Explanation.objects.filter(bid_lot__bid__tender=tender)


class ExplanationAnswerForm(TenderActionForm):
    scoped = {"explanation": _explanations}
    explanation = _choice(Explanation, _("Explanation"))
    answer = text_field(_("Your explanation"), 20000)


class ExplanationDecisionForm(TenderActionForm):
    scoped = {"explanation": _explanations}
    explanation = _choice(Explanation, _("Explanation"))
    accepted = yes_no(_("Decision"))
    reason = text_field(_("Reasons"), 5000)


class AwardForm(TenderActionForm):
    justification = text_field(_("Justification"), 5000, required=False)


class ComplaintForm(TenderActionForm):
    """A complaint, against the lots ticked (their numbers; all when none is)."""

    text_prefix = "complaint"
    text = text_field(_("Complaint"), 20000)
    lot = forms.TypedMultipleChoiceField(label=_("Lots"), coerce=int, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        numbers = self.tender.lots.values_list("number", flat=True) \
            if self.tender is not None else []
        self.fields["lot"].choices = [(str(n), str(n)) for n in numbers]


class QualificationForm(TenderActionForm):
    """The buyer's decision on a candidate of a restricted procedure, with its reasons
    (required to refuse: the service says so)."""

    text_prefix, text_prefix_field = "qualify", "participation"
    scoped = {"participation": lambda tender: Participation.objects.filter(tender=tender)}
    participation = _choice(Participation, _("Candidate"))
    qualified = yes_no(_("Qualified to bid"))
    text = text_field(_("Reasons (published)"), 20000, required=False)


def _complaints(tender):
    return Complaint.objects.filter(tender=tender)


class AdmissibilityForm(TenderActionForm):
    text_prefix, text_prefix_field = "admissibility", "complaint"
    scoped = {"complaint": _complaints}
    complaint = _choice(Complaint, _("Complaint"))
    admissible = yes_no(_("Admissibility"))
    text = text_field(_("Reason"), 20000)


class ComplaintDecisionForm(TenderActionForm):
    text_prefix, text_prefix_field = "decide", "complaint"
    scoped = {"complaint": _complaints}
    complaint = _choice(Complaint, _("Complaint"))
    upheld = yes_no(_("Decision"))
    remedy = forms.ChoiceField(label=_("Remedy"), choices=Complaint.Remedy.choices,
                               required=False)
    text = text_field(_("Decision"), 20000)


def _contracts(tender):
    return Contract.objects.filter(tender=tender)


class ContractAmendmentForm(TenderActionForm):
    scoped = {"contract": _contracts}
    contract = _choice(Contract, _("Contract"))
    justification = text_field(_("Justification"), 5000)
    new_value = forms.DecimalField(label=_("New value (TND)"), required=False,
                                   max_digits=18, decimal_places=3)
    new_end_date = forms.DateField(label=_("New end date"), required=False)


class PaymentForm(TenderActionForm):
    scoped = {"contract": _contracts}
    contract = _choice(Contract, _("Contract"))
    milestone = forms.CharField(label=_("Milestone"), max_length=300)
    amount = forms.DecimalField(label=_("Amount (TND)"), max_digits=18, decimal_places=3)


class UnitPriceForm(TenderActionForm):
    scoped = {"contract": _contracts}
    contract = _choice(Contract, _("Contract"))
    code = forms.CharField(label=_("Code"), max_length=100)
    description = forms.CharField(label=_("Description"), max_length=300)
    unit = forms.CharField(label=_("Unit"), max_length=30, required=False)
    unit_price = forms.DecimalField(label=_("Unit price (TND)"), max_digits=18,
                                    decimal_places=3)

    def clean_unit(self) -> str:
        return self.cleaned_data["unit"] or "hour"


class CountersignForm(TenderActionForm):
    scoped = {"contract": _contracts}
    contract = _choice(Contract, _("Contract"))
    terms_sha256 = forms.CharField(label=_("Terms"), max_length=64, required=False)


class ContractCompletionForm(TenderActionForm):
    text_prefix, text_prefix_field = "complete", "contract"
    scoped = {"contract": _contracts}
    contract = _choice(Contract, _("Contract"))
    text = text_field(_("Reason (final acceptance)"), 5000)


class AmendmentDecisionForm(TenderActionForm):
    text_prefix, text_prefix_field = "amendment", "amendment"
    scoped = {"amendment": lambda tender: Amendment.objects.filter(contract__tender=tender)}
    amendment = _choice(Amendment, _("Amendment"))
    approve = yes_no(_("Decision"))
    text = text_field(_("Reasons"), 5000)


class ContractForm(TenderActionForm):
    start_date = forms.DateField(label=_("Start"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=_("End"), widget=forms.DateInput(attrs={"type": "date"}))


class SignContractForm(ContractForm):
    """The contract of an award (the page shows the dates; the award is a hidden field)."""

    scoped = {"award": lambda tender: Award.objects.filter(tender=tender)}
    award = _choice(Award, _("Award"))
