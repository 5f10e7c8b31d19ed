"""Forms of the cloud pages: they parse input; the services decide."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext
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


PARAMETER_PREFIX = "parameter_"
# What a provider's schema may put on the page: labels and help are its own text
# (escaped like any other), bounded so that a catalogue cannot flood the form.
MAX_SCHEMA_FIELDS = 30
MAX_SCHEMA_TEXT = 300


def _schema_text(value, fallback: str = "") -> str:
    """A provider's text, in the reader's language when the platform's catalogue has it
    (the reference broker's terms; a provider's own stay as written)."""
    text = value[:MAX_SCHEMA_TEXT] if isinstance(value, str) else fallback
    return gettext(text) if text else text


def _number(value) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def field_for_property(name: str, spec: dict, *, required: bool) -> forms.Field | None:
    """A form field for one property of a plan's parameter schema (JSON Schema draft 4,
    as the Open Service Broker API carries it), or None for what a simple field cannot
    hold (objects, arrays, several types): those go in the JSON box."""
    if not isinstance(spec, dict):
        return None
    common = {"label": _schema_text(spec.get("title"), name.replace("_", " ").capitalize()),
              "help_text": _schema_text(spec.get("description")), "required": required}
    kind, default = spec.get("type"), spec.get("default")
    if isinstance(spec.get("enum"), list) and all(isinstance(v, str) for v in spec["enum"]) \
            and spec["enum"] and kind in (None, "string"):
        choices = [(v, _schema_text(v)) for v in spec["enum"]]
        return forms.ChoiceField(choices=choices if required else [("", "—"), *choices],
                                 initial=default, **common)
    if kind == "string":
        return forms.CharField(max_length=_number(spec.get("maxLength")),
                               min_length=_number(spec.get("minLength")),
                               initial=default if isinstance(default, str) else None,
                               widget=forms.TextInput(attrs={"dir": "auto"}), **common)
    if kind == "integer":
        return forms.IntegerField(min_value=_number(spec.get("minimum")),
                                  max_value=_number(spec.get("maximum")),
                                  initial=_number(default), **common)
    if kind == "number":
        return forms.FloatField(min_value=_number(spec.get("minimum")),
                                max_value=_number(spec.get("maximum")),
                                initial=_number(default), **common)
    if kind == "boolean":
        return forms.BooleanField(initial=default is True, **{**common, "required": False})
    return None


class OrderForm(forms.Form):
    """An order of one plan: its purpose, then one field per parameter of the plan's
    schema (types, limits, choices and help from the schema); a JSON box only for the
    parameters no simple field can hold. The service checks the whole against the schema
    again: the form is a convenience, not the authority."""

    purpose = forms.CharField(label=_("Purpose"), max_length=500,
                              help_text=_("The information system this service is for."))

    def __init__(self, *args, schema: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        schema = schema if isinstance(schema, dict) else {}
        properties = schema.get("properties") if isinstance(schema.get("properties"),
                                                            dict) else {}
        required = set(schema.get("required") or []) if isinstance(
            schema.get("required"), list) else set()
        self.parameter_names: list[str] = []
        free_form = schema.get("additionalProperties", True) is not False
        for name, spec in list(properties.items())[:MAX_SCHEMA_FIELDS]:
            field = field_for_property(str(name), spec, required=name in required)
            if field is None:
                free_form = True
                continue
            self.fields[PARAMETER_PREFIX + str(name)] = field
            self.parameter_names.append(str(name))
        if free_form and schema:
            self.fields["parameters"] = forms.CharField(
                label=_("Other parameters (JSON)"), required=False, initial="{}",
                widget=forms.Textarea(attrs={"rows": 3, "dir": "ltr"}),
                help_text=_("Settings of the plan that have no field above, as a JSON "
                            "object."))

    def clean_parameters(self) -> dict:
        text = (self.cleaned_data.get("parameters") or "").strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("The parameters are not valid JSON.")) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The parameters must be a JSON object."))
        return value

    def clean(self) -> dict:
        data = super().clean()
        parameters = dict(data.get("parameters") or {})
        for name in self.parameter_names:
            value = data.get(PARAMETER_PREFIX + name)
            if value is not None and value != "":
                parameters[name] = value
        data["parameters"] = parameters
        return data


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
