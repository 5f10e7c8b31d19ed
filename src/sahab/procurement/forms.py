"""Web forms of procurement: they parse; the services decide."""

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.procurement.models import AwardCriteria, Procedure

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


class DocumentForm(forms.Form):
    document = forms.FileField(label=_("Document"))


class ContractForm(forms.Form):
    start_date = forms.DateField(label=_("Start"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=_("End"), widget=forms.DateInput(attrs={"type": "date"}))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AmendmentForm(forms.Form):
    """An amendment of a published tender: its rationale, later deadlines, new documents
    (the files are read from the request; a same-named document gets its next version)."""

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
    documents = forms.FileField(label=_("New documents or new versions (optional)"),
                                required=False, widget=MultipleFileInput())

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "amendment")
        super().__init__(*args, **kwargs)
