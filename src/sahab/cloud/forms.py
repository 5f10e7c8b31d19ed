"""Forms of the cloud pages: they parse input; the services decide."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.cloud.models import Attestation, Binding, Category, Label, ServicePlan


class CatalogueFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    category = forms.ChoiceField(label=_("Category"), required=False,
                                 choices=[("", _("All")), *Category.choices])
    location = forms.CharField(label=_("Location"), required=False, max_length=100)
    label = forms.ChoiceField(label=_("Label"), required=False,
                              choices=[("", _("All")), *Label.choices])
    max_price = forms.DecimalField(label=_("Maximum price (TND per hour)"), required=False,
                                   min_value=0, max_digits=12, decimal_places=3)
    orderable = forms.BooleanField(label=_("Orderable only"), required=False)


class OrderForm(forms.Form):
    purpose = forms.CharField(label=_("Purpose"), max_length=500,
                              help_text=_("The information system this service is for."))
    parameters = forms.CharField(
        label=_("Parameters (JSON)"), required=False, initial="{}",
        widget=forms.Textarea(attrs={"rows": 3, "dir": "ltr"}),
        help_text=_("Optional settings the plan accepts, as a JSON object."))

    def clean_parameters(self) -> dict:
        text = (self.cleaned_data.get("parameters") or "").strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("The parameters are not valid JSON.")) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The parameters must be a JSON object."))
        return value


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}))


class NameForm(forms.Form):
    name = forms.CharField(label=_("Application"), max_length=100)


class ApplicationForm(forms.Form):
    locations = forms.CharField(label=_("Data-centre cities"), max_length=300,
                                help_text=_("Comma-separated, e.g. Tunis, Sfax"))
    description = forms.CharField(label=_("Description"), required=False, max_length=5000,
                                  widget=forms.Textarea(attrs={"rows": 3}))


class AttestationForm(forms.Form):
    label = forms.ChoiceField(label=_("Label or certificate"), choices=Label.choices)
    issuer = forms.CharField(label=_("Issuer"), max_length=200)
    scope = forms.CharField(label=_("Scope"), max_length=500)
    reference = forms.CharField(label=_("Reference"), max_length=100)
    valid_from = forms.DateField(label=_("Valid from"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    expires_on = forms.DateField(label=_("Expires on"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    document = forms.FileField(label=_("Document"), required=False)


class BrokerForm(forms.Form):
    url = forms.URLField(label=_("Broker URL"), max_length=500, assume_scheme="https")
    username = forms.CharField(label=_("User name"), max_length=200)
    password = forms.CharField(label=_("Password"), max_length=500,
                               widget=forms.PasswordInput(render_value=False))


class BudgetForm(forms.Form):
    year = forms.IntegerField(label=_("Year"), min_value=2000, max_value=2100)
    amount = forms.DecimalField(label=_("Budget (TND)"), min_value=0, max_digits=15,
                                decimal_places=3)
    thresholds = forms.CharField(label=_("Alert thresholds (%)"), initial="50, 80, 100",
                                 max_length=50)

    def clean_thresholds(self) -> list[int]:
        try:
            return [int(part) for part in self.cleaned_data["thresholds"].split(",")
                    if part.strip()]
        except ValueError:
            raise forms.ValidationError(_("Whole percentages separated by commas.")) from None


class DecisionForm(forms.Form):
    """Approve or refuse (an order, an attestation, a provider), with a note."""

    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


class BindingForm(forms.Form):
    binding = forms.ModelChoiceField(Binding.objects.none(), label=_("Credentials"))

    def __init__(self, *args, instance, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["binding"].queryset = Binding.objects.filter(instance=instance)


class PlanChangeForm(forms.Form):
    plan = forms.ModelChoiceField(ServicePlan.objects.all(), label=_("Plan"))


class AttestationDecisionForm(DecisionForm):
    attestation = forms.ModelChoiceField(Attestation.objects.none(), label=_("Attestation"))

    def __init__(self, *args, provider, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["attestation"].queryset = Attestation.objects.filter(provider=provider)


class ConfirmForm(forms.Form):
    """A button with nothing to fill in (delete the instance, try again)."""
