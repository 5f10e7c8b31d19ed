"""Web forms of the directory. They only parse input; services decide and write."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import AdministrationKind, Role


class LoginForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username",
                                                             "autofocus": True}))
    password = forms.CharField(label=_("Password"), max_length=128, strip=False,
                               widget=forms.PasswordInput(
                                   attrs={"autocomplete": "current-password"}))
    # where to go once signed in; checked by the view (same host only)
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)


class TotpForm(forms.Form):
    code = forms.CharField(label=_("Six-digit code from your authenticator app"),
                           min_length=6, max_length=7,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "numeric",
                                                         "autofocus": True}))


class EndSessionsForm(forms.Form):
    """End one session (``sign_in``) or every other one, with the password typed again."""

    password = forms.CharField(label=_("Your password"), strip=False, max_length=128,
                               widget=forms.PasswordInput(
                                   attrs={"autocomplete": "current-password"}))
    sign_in = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label=_("Current password"), strip=False,
                                   widget=forms.PasswordInput(
                                       attrs={"autocomplete": "current-password"}))
    new_password = forms.CharField(label=_("New password"), strip=False, min_length=10,
                                   max_length=128,
                                   widget=forms.PasswordInput(
                                       attrs={"autocomplete": "new-password"}))


class PasswordResetRequestForm(forms.Form):
    identifier = forms.CharField(label=_("Username or e-mail address"), max_length=320,
                                 widget=forms.TextInput(attrs={"autocomplete": "username",
                                                               "autofocus": True}))


class PasswordResetForm(forms.Form):
    new_password = forms.CharField(label=_("New password"), strip=False, min_length=10,
                                   max_length=128,
                                   widget=forms.PasswordInput(
                                       attrs={"autocomplete": "new-password",
                                              "autofocus": True}))
    again = forms.CharField(label=_("New password again"), strip=False, max_length=128,
                            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("again"):
            self.add_error("again", _("The two passwords differ."))
        return data


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100)
    expires_at = forms.DateTimeField(label=_("Expires at (optional)"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    code = forms.CharField(label=_("Six-digit code (when two-factor sign-in is on)"),
                           required=False, max_length=7,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "numeric"}))


class AgentForm(forms.Form):
    username = forms.RegexField(label=_("Username"), regex=r"^[\w.@+-]+$", max_length=150)
    email = forms.EmailField(label=_("Email"))
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    title = forms.CharField(label=_("Job title"), max_length=200, required=False)
    administration = forms.ChoiceField(label=_("Administration"))
    roles = forms.MultipleChoiceField(label=_("Roles"), choices=Role.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, administrations=(), grantable=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["administration"].choices = [(a.code, f"{a.code} — {a.name}")
                                                 for a in administrations]
        _offer_roles(self, grantable)


def _offer_roles(form: forms.Form, grantable) -> None:
    """Offer only the roles the user may grant (directory.rules); the service checks again."""
    if grantable is not None:
        form.fields["roles"].choices = [(v, label) for v, label in Role.choices
                                        if v in set(grantable)]


class AgentRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(label=_("Roles"), choices=Role.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple)
    active = forms.BooleanField(label=_("Account enabled"), required=False)

    def __init__(self, *args, grantable=None, **kwargs):
        super().__init__(*args, **kwargs)
        _offer_roles(self, grantable)


class AdministrationForm(forms.Form):
    code = forms.RegexField(label=_("Code"), regex=r"^[A-Za-z][A-Za-z0-9-]{1,31}$",
                            max_length=32,
                            help_text=_("2 to 32 letters, digits or hyphens, e.g. MEF-DGI."))
    kind = forms.ChoiceField(label=_("Kind"), choices=AdministrationKind.choices)
    name_fr = forms.CharField(label=_("Name in French"), max_length=300)
    name_ar = forms.CharField(label=_("Name in Arabic"), max_length=300,
                              widget=forms.TextInput(attrs={"dir": "rtl", "lang": "ar"}))
    name_en = forms.CharField(label=_("Name in English"), max_length=300, required=False)
    acronym = forms.CharField(label=_("Acronym"), max_length=32, required=False)
    mail_domain = forms.CharField(label=_("Mail domain"), max_length=253, required=False)


class CompanyRegistrationForm(forms.Form):
    name = forms.CharField(label=_("Company name"), max_length=300)
    legal_form = forms.CharField(label=_("Legal form (SA, SARL, SUARL…)"), max_length=50,
                                 required=False)
    matricule_fiscal = forms.CharField(label=_("Matricule fiscal"), max_length=20,
                                       help_text=_("For example 1234567A/A/M/000."))
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    email = forms.EmailField(label=_("Company email"))
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    is_cloud_provider = forms.BooleanField(label=_("We offer cloud services"), required=False)
    admin_username = forms.RegexField(label=_("Your username"), regex=r"^[\w.@+-]+$",
                                      max_length=150)
    admin_first_name = forms.CharField(label=_("Your first name"), max_length=150)
    admin_last_name = forms.CharField(label=_("Your last name"), max_length=150)
    admin_email = forms.EmailField(label=_("Your email"))
    admin_password = forms.CharField(label=_("Password"), strip=False, min_length=10,
                                     max_length=128,
                                     widget=forms.PasswordInput(
                                         attrs={"autocomplete": "new-password"}))


def apply_domain_error(form: forms.Form, exc) -> None:
    """Show a service's refusal on the form: on its fields when it names them."""
    placed = False
    for field, messages in (exc.field_errors or {}).items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, exc.detail)
