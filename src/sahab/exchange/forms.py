"""Forms of the registry page. They check shapes and find the named objects; the services
decide who may do what (and check every value again, as the API reaches them directly)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration
from sahab.exchange.models import ClientToken, Grant, ProviderHost, Service, Subsystem

TEXT = 5000


class SubsystemForm(forms.Form):
    administration = forms.ModelChoiceField(Administration.objects.none(), to_field_name="code",
                                            label=_("Administration"))
    code = forms.CharField(label=_("Code"), max_length=100)
    name = forms.CharField(label=_("Name"), max_length=300)

    def __init__(self, *args, administrations, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["administration"].queryset = administrations


class ServiceForm(forms.Form):
    subsystem = forms.ModelChoiceField(Subsystem.objects.all(), label=_("Information system"))
    code = forms.CharField(label=_("Code"), max_length=100)
    name = forms.CharField(label=_("Name"), max_length=300)
    base_url = forms.CharField(label=_("Base URL"), max_length=2000)
    owner = forms.CharField(label=_("Owner"), max_length=300)
    classification = forms.CharField(label=_("Classification"), max_length=40)
    openapi_url = forms.CharField(label=_("OpenAPI URL"), max_length=2000, required=False)
    openapi = forms.CharField(label=_("OpenAPI description"), required=False,
                              max_length=1_000_000)
    max_concurrency = forms.IntegerField(label=_("Concurrent calls at most"), required=False,
                                         min_value=1, max_value=100_000)


class GrantRequestForm(forms.Form):
    client = forms.ModelChoiceField(Subsystem.objects.all(), label=_("Client system"))
    service = forms.ModelChoiceField(Service.objects.all(), label=_("Service"))
    legal_basis = forms.CharField(label=_("Legal basis"), max_length=TEXT)
    purpose = forms.CharField(label=_("Purpose"), max_length=TEXT)
    endpoints = forms.CharField(label=_("Endpoints"), required=False, max_length=TEXT)


class GrantDecisionForm(forms.Form):
    grant = forms.ModelChoiceField(Grant.objects.all(), label=_("Grant"))
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)
    endpoints = forms.CharField(label=_("Endpoints"), required=False, max_length=TEXT)


class GrantRevocationForm(forms.Form):
    grant = forms.ModelChoiceField(Grant.objects.all(), label=_("Grant"))
    note = forms.CharField(label=_("Reason"), required=False, max_length=2000)


class HostForm(forms.Form):
    administration = forms.ModelChoiceField(Administration.objects.all(), to_field_name="code",
                                            label=_("Administration"))
    host = forms.CharField(label=_("Host"), max_length=253)
    port = forms.IntegerField(label=_("Port"), required=False, min_value=1, max_value=65535)
    path_prefix = forms.CharField(label=_("Path prefix"), required=False, max_length=500)
    allow_internal = forms.BooleanField(label=_("Internal address allowed"), required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


class HostRevocationForm(forms.Form):
    host = forms.ModelChoiceField(ProviderHost.objects.all(), label=_("Host"))


class TokenForm(forms.Form):
    subsystem = forms.ModelChoiceField(Subsystem.objects.all(), label=_("Information system"))
    name = forms.CharField(label=_("Token name"), required=False, max_length=100)


class TokenRevocationForm(forms.Form):
    token = forms.ModelChoiceField(ClientToken.objects.select_related(
        "subsystem__administration"), label=_("Gateway token"))
