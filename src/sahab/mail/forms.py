"""Forms of the mail administration pages. Each form belongs to one domain's page: the
objects it names are looked up among that domain's only, and the services check the rights."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration, Agent
from sahab.mail.models import Alias, Delegation, Mailbox, MailDomain

MEGABYTE = 1024 * 1024


class DomainForm(forms.Form):
    """A form whose choices are limited to one mail domain."""

    def __init__(self, *args, domain: MailDomain, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.domain = domain
        scopes = {
            "mailbox": Mailbox.objects.filter(domain=domain),
            "alias": Alias.objects.filter(domain=domain),
            "delegation": Delegation.objects.filter(mailbox__domain=domain),
            "administration": Administration.objects.filter(
                path__startswith=domain.administration.path),
            "agent": Agent.objects.filter(
                administration__path__startswith=domain.administration.path),
        }
        for name, field in self.fields.items():
            if name in scopes:
                field.queryset = scopes[name]


class MailboxForm(DomainForm):
    mailbox = forms.ModelChoiceField(Mailbox.objects.none(), label=_("Mailbox"))


class QuotaForm(MailboxForm):
    quota_mb = forms.IntegerField(label=_("Quota (MB)"), min_value=1, max_value=10_000_000)

    @property
    def quota_bytes(self) -> int:
        return self.cleaned_data["quota_mb"] * MEGABYTE


class SharedMailboxForm(DomainForm):
    administration = forms.ModelChoiceField(Administration.objects.none(), to_field_name="code",
                                            label=_("Administration"))
    local_part = forms.CharField(label=_("Address (before @)"), max_length=64)
    display_name = forms.CharField(label=_("Display name"), max_length=200)


class AliasForm(DomainForm):
    administration = forms.ModelChoiceField(Administration.objects.none(), to_field_name="code",
                                            label=_("Administration"))
    local_part = forms.CharField(label=_("Address (before @)"), max_length=64)
    members = forms.CharField(label=_("Members (addresses, comma-separated)"), max_length=5000)
    description = forms.CharField(label=_("Description"), max_length=500, required=False)

    def clean_members(self) -> list[str]:
        text = self.cleaned_data["members"].replace(";", ",")
        return [address.strip() for address in text.split(",") if address.strip()]


class AliasRefForm(DomainForm):
    alias = forms.ModelChoiceField(Alias.objects.none(), label=_("Alias"))


class DelegationForm(MailboxForm):
    agent = forms.ModelChoiceField(Agent.objects.none(), label=_("Agent"))
    can_send = forms.BooleanField(label=_("may send as"), required=False)


class DelegationRefForm(DomainForm):
    delegation = forms.ModelChoiceField(Delegation.objects.none(), label=_("Delegation"))
