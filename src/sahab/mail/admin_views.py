"""Mail administration pages: the list of the domains one administers (searchable, paged),
and one page per domain with its DNS records (and whether they are published), its
mailboxes (searchable, paged), shared mailboxes, delegations and aliases. Each form posts
to its own action; the services decide who may do what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms as django_forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sahab.core.actions import run_form_action
from sahab.core.charts import bars
from sahab.directory import selectors as directory
from sahab.mail import dnscheck, forms, selectors, services
from sahab.mail.models import Alias, Delegation, MailDomain

DOMAINS_PER_PAGE = 25
MAILBOXES_PER_PAGE = 50


def _search(request) -> str:
    return request.GET.get("q", "")[:100]


def _query(q: str) -> str:
    """The search part of the pager's links."""
    return urlencode({"q": q}) + "&"


@login_required
def domains(request):
    """The mail domains the person administers; 404 for everyone else."""
    every = selectors.managed_domains(request.user)
    if not every.exists():
        raise Http404
    q = _search(request)
    page = Paginator(selectors.managed_domains(request.user, q), DOMAINS_PER_PAGE) \
        .get_page(request.GET.get("page"))
    return render(request, "mail/admin_domains.html", {"page": page, "q": q, "query": _query(q)})


def _managed_domain(user, name: str) -> MailDomain:
    domain = get_object_or_404(MailDomain.objects.select_related("administration"),
                               name=name.lower())
    if not services.can_manage_mail(user, domain.administration):
        raise Http404
    return domain


@login_required
def domain(request, name: str):
    """One domain: DNS records (checked on request), mailboxes, sharing, aliases."""
    domain = _managed_domain(request.user, name)
    q = _search(request)
    boxes = selectors.domain_mailboxes(domain, q)
    page = Paginator(boxes, MAILBOXES_PER_PAGE).get_page(request.GET.get("page"))
    fullest = selectors.fullest_mailboxes(domain)
    checked = request.GET.get("check") == "1"
    records = (dnscheck.check_domain(domain) if checked else
               [dnscheck.RecordCheck(n, t, v, "") for n, t, v in services.dns_records(domain)])
    return render(request, "mail/admin_domain.html", {
        "domain": domain, "page": page, "q": q, "query": _query(q),
        "records": records, "checked": checked,
        "missing": sum(r.status in (dnscheck.MISSING, dnscheck.WRONG) for r in records),
        # nothing answered (lookups off, resolver silent): not the same as all published
        "none_checked": checked and all(r.status == dnscheck.UNCHECKED for r in records),
        "usage_bars": bars([{"address": b.address,
                             "percent": round(100 * b.used_bytes / max(b.quota_bytes, 1), 1)}
                            for b in fullest], "address", "percent", scale=100),
        "aliases": Alias.objects.filter(domain=domain).prefetch_related("members__mailbox"),
        "delegations": Delegation.objects.filter(mailbox__domain=domain)
        .select_related("mailbox", "agent__user"),
        "shared": selectors.domain_mailboxes(domain).exclude(kind="personal"),
        "delegate_form": forms.DelegationForm(domain=domain),
        "administrations": forms.SharedMailboxForm(domain=domain)
        .fields["administration"].queryset,
    })


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    form: type[django_forms.Form]
    perform: Callable  # (user, form) -> message or None


def _password(user, form) -> str:
    mailbox = form.cleaned_data["mailbox"]
    password = services.set_password(actor=user, mailbox=mailbox)
    return _("New password of %(address)s (shown once): %(pw)s") % {
        "address": mailbox.address, "pw": password}


def _alias(is_list: bool):
    def perform(user, form) -> None:
        data = form.cleaned_data
        services.create_alias(
            actor=user, administration=data["administration"], local_part=data["local_part"],
            members=[services.mailbox_by_address(a) for a in data["members"]],
            is_list=is_list, description=data["description"])
    return perform


def _shared(registry: bool):
    def perform(user, form) -> None:
        data = form.cleaned_data
        services.create_shared_mailbox(
            actor=user, administration=data["administration"], local_part=data["local_part"],
            display_name=data["display_name"], registry=registry)
    return perform


ACTIONS: dict[str, Action] = {
    "quota": Action(forms.QuotaForm, lambda user, form: services.set_quota(
        actor=user, mailbox=form.cleaned_data["mailbox"], quota_bytes=form.quota_bytes)),
    "disable": Action(forms.MailboxForm, lambda user, form: services.set_mailbox_active(
        actor=user, mailbox=form.cleaned_data["mailbox"], active=False)),
    "enable": Action(forms.MailboxForm, lambda user, form: services.set_mailbox_active(
        actor=user, mailbox=form.cleaned_data["mailbox"], active=True)),
    "password": Action(forms.MailboxForm, _password),
    "shared": Action(forms.SharedMailboxForm, _shared(registry=False)),
    "registry": Action(forms.SharedMailboxForm, _shared(registry=True)),
    "alias": Action(forms.AliasForm, _alias(is_list=False)),
    "list": Action(forms.AliasForm, _alias(is_list=True)),
    "delete-alias": Action(forms.AliasRefForm, lambda user, form: services.delete_alias(
        actor=user, alias=form.cleaned_data["alias"])),
    "delegate": Action(forms.DelegationForm, lambda user, form: services.delegate(
        actor=user, mailbox=form.cleaned_data["mailbox"], agent=form.cleaned_data["agent"],
        can_send=form.cleaned_data["can_send"])),
    "revoke": Action(forms.DelegationRefForm, lambda user, form: services.revoke_delegation(
        actor=user, delegation=form.cleaned_data["delegation"])),
}


@login_required
@require_POST
def domain_action(request, name: str, action: str):
    """Run one form of a domain's page, then show the page again."""
    if action not in ACTIONS or (directory.agent_of(request.user) is None \
            and not directory.is_platform_admin(request.user)):
        raise Http404
    domain = get_object_or_404(MailDomain, name=name.lower())
    chosen = ACTIONS[action]
    form = chosen.form(request.POST, domain=domain)
    run_form_action(request, form, lambda _data: chosen.perform(request.user, form))
    return redirect("mail:admin_domain", domain.name)
