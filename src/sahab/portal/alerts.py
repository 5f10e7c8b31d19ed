"""Alerts on new tenders and on what followed companies win, by e-mail through sahab's
own mail (delivered locally or queued for the smart host) and as Atom feeds.

Public follows are confirmed by a link sent to the address first; every message carries a
one-click unsubscribe link. A registered company gets, without asking, the new tenders in
its sectors (the CPV divisions it has bid in) at its registered address, until it
unsubscribes. Addresses are personal data: they stay out of the public ledger.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sahab.core.errors import CoreError, InvalidInput, NotFound
from sahab.directory.models import Administration, Company
from sahab.portal.errors import PortalError
from sahab.portal.models import Subscription
from sahab.procurement import selectors
from sahab.procurement.models import Step, Tender

log = logging.getLogger(__name__)
K = Subscription.Kind
MAX_PENDING_PER_ADDRESS = 10


# --- what a follow matches ------------------------------------------------------------

def _company_tenders(company: Company) -> QuerySet[Tender]:
    return Tender.objects.filter(Q(bids__company=company, bids__status__in=selectors.OPENED)
                                 | Q(awards__supplier=company))


def sectors(company: Company) -> list[str]:
    """The CPV divisions (2 digits) in which the company's bids were opened or it won."""
    from sahab.procurement.models import Lot

    cpvs = Lot.objects.filter(Q(bid_prices__bid__company=company,
                                bid_prices__bid__status__in=selectors.OPENED)
                              | Q(awards__supplier=company)).values_list("cpv", flat=True)
    return sorted({c[:2] for c in cpvs})


def matching(kind: str, value: str, company: Company | None = None) -> QuerySet[Tender]:
    """Published tenders matching one follow (newest first)."""
    qs = Tender.objects.filter(state__in=selectors.PUBLIC_STATES)
    if kind == K.CPV:
        qs = qs.filter(lots__cpv__startswith=value)
    elif kind == K.BUYER:
        qs = qs.filter(Q(buyer__code=value) | Q(buyer__path__contains=f"/{value}/"))
    elif kind == K.COMPANY:
        found = Company.objects.filter(matricule_fiscal=value).first()
        qs = qs.filter(pk__in=_company_tenders(found).values("pk")) if found else qs.none()
    elif kind == K.SEARCH:
        qs = selectors.public_tenders(q=value)
    elif kind == K.SECTORS and company is not None:
        divisions = sectors(company)
        condition = Q(pk__in=[])
        for division in divisions:
            condition |= Q(lots__cpv__startswith=division)
        qs = qs.filter(condition)
    else:
        return qs.none()
    return qs.select_related("buyer").distinct().order_by("-published_at", "-pk")


def clean(kind: str, value: str) -> str:
    """The follow's value, checked; raises InvalidInput."""
    value = (value or "").strip()
    if kind == K.CPV:
        digits = value.replace("-", "")[:8].rstrip("0")
        if not digits.isdigit() or not 2 <= len(digits) <= 8:
            raise InvalidInput(PortalError.CPV_INVALID)
        return digits
    if kind == K.BUYER:
        if not Administration.objects.filter(code=value.upper()).exists():
            raise InvalidInput(CoreError.NO_ADMINISTRATION, code=value)
        return value.upper()
    if kind == K.COMPANY:
        found = selectors.company_by_slug(value)
        if found is None:
            raise InvalidInput(PortalError.NO_COMPANY_WITH_MATRICULE, value=value)
        return found.matricule_fiscal
    if kind == K.SEARCH:
        if not 3 <= len(value) <= 100:
            raise InvalidInput(PortalError.SEARCH_LENGTH)
        return value
    raise InvalidInput(PortalError.NOTHING_TO_FOLLOW)


# --- services ------------------------------------------------------------------------

def _clean_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(PortalError.NOT_AN_EMAIL, email=email) from None
    return email.lower()


@transaction.atomic
def follow(*, email: str, kind: str, value: str) -> Subscription:
    """Ask to follow: a confirmation link goes to the address; nothing is sent before."""
    email, value = _clean_email(email), clean(kind, value)
    existing = Subscription.objects.filter(email=email, kind=kind, value=value,
                                           unsubscribed_at=None).first()
    if existing is not None and existing.confirmed_at:
        return existing
    pending = Subscription.objects.filter(email=email, confirmed_at=None,
                                          unsubscribed_at=None).count()
    if existing is None and pending >= MAX_PENDING_PER_ADDRESS:
        raise InvalidInput(PortalError.TOO_MANY_UNCONFIRMED)
    subscription = existing or Subscription.objects.create(
        email=email, kind=kind, value=value, token=secrets.token_urlsafe(32),
        last_index=_ledger_size())
    _send(email, _("Confirm your sahab alert"),
          _("Someone asked sahab to send this address new tenders for: %(what)s.\n\n"
            "To confirm, open %(link)s\n\nIf it was not you, ignore this message: "
            "nothing will be sent.") % {"what": describe(subscription),
                                        "link": _url("portal:confirm", subscription.token)},
          subscription)
    return subscription


def _(text: str) -> str:  # the messages go out in the platform's language, French
    from django.utils.translation import gettext

    return gettext(text)


@transaction.atomic
def confirm(*, token: str) -> Subscription:
    subscription = Subscription.objects.select_for_update().filter(token=token).first()
    if subscription is None or subscription.unsubscribed_at:
        raise NotFound(PortalError.LINK_EXPIRED)
    if subscription.confirmed_at is None:
        subscription.confirmed_at = timezone.now()
        subscription.save(update_fields=["confirmed_at"])
    return subscription


@transaction.atomic
def unsubscribe(*, token: str) -> Subscription:
    subscription = Subscription.objects.select_for_update().filter(token=token).first()
    if subscription is None:
        raise NotFound(PortalError.LINK_INVALID)
    if subscription.unsubscribed_at is None:
        subscription.unsubscribed_at = timezone.now()
        subscription.save(update_fields=["unsubscribed_at"])
    return subscription


def describe(subscription: Subscription) -> str:
    labels = {K.CPV: "CPV", K.BUYER: _("buyer"), K.COMPANY: _("company"),
              K.SEARCH: _("search"), K.SECTORS: _("your sectors")}
    value = subscription.value
    if subscription.kind == K.SECTORS and subscription.company:
        value = ", ".join(sectors(subscription.company)) or "—"
    return f"{labels[subscription.kind]} {value}".strip()


# --- sending -------------------------------------------------------------------------

def _ledger_size() -> int:
    from sahab.ledger import services as ledger

    return ledger.tree_size() - 1


def _url(name: str, *args) -> str:
    from django.urls import reverse

    return f"{settings.PUBLIC_URL.rstrip('/')}{reverse(name, args=args)}"


def _send(to: str, subject: str, body: str, subscription: Subscription) -> None:
    """One message through sahab's mail: delivered here or queued for the smart host."""
    from sahab.mail import delivery, notices

    unsubscribe_link = _url("portal:unsubscribe", subscription.token)
    try:
        notices.send(sender=settings.PORTAL_ALERTS_FROM, to=to, subject=subject,
                     body=f"{body}\n\n-- \n{_('Unsubscribe')}: {unsubscribe_link}\n",
                     headers={"List-Unsubscribe": f"<{unsubscribe_link}>"},
                     helo="sahab-alerts")
    except (OSError, delivery.Refused) as exc:
        log.warning("alert to %s not sent: %s", to, exc)
        raise InvalidInput(PortalError.MESSAGE_NOT_SENT) from exc


def _company_sector_subscriptions() -> None:
    """Every registered company with an address follows its sectors, until it stops."""
    have = set(Subscription.objects.filter(kind=K.SECTORS).values_list("company_id", flat=True))
    now = timezone.now()
    size = _ledger_size()
    Subscription.objects.bulk_create([
        Subscription(email=c.email.lower(), kind=K.SECTORS, company=c,
                     token=secrets.token_urlsafe(32), confirmed_at=now, last_index=size)
        for c in Company.objects.filter(active=True, is_bidder=True).exclude(email="")
        if c.pk not in have])


def dispatch(now: dt.datetime | None = None) -> int:
    """Send each confirmed follow what was published since its last message; returns the
    number of messages sent. Safe to run in several workers (rows are locked)."""
    _company_sector_subscriptions()
    size = _ledger_size()
    sent = 0
    for pk in Subscription.objects.filter(unsubscribed_at=None).exclude(confirmed_at=None) \
            .filter(last_index__lt=size).values_list("pk", flat=True):
        with transaction.atomic():
            s = (Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                 .select_related("company").filter(pk=pk).first())
            if s is None or s.last_index >= size:
                continue
            events = ["tender.published"] + (["tender.opened", "tender.awarded",
                                              "contract.signed"]
                                             if s.kind == K.COMPANY else [])
            changed = Step.objects.filter(ledger_index__gt=s.last_index,
                                          ledger_index__lte=size, type__in=events)
            tenders = list(matching(s.kind, s.value, s.company)
                           .filter(pk__in=changed.values("tender_id"))[:50])
            if tenders:
                lines = [f"- {t.reference} — {t.title} ({t.buyer.name_fr}): "
                         f"{_url('procurement:tender', t.reference)}" for t in tenders]
                try:
                    _send(s.email, _("sahab: %(n)s new for %(what)s")
                          % {"n": len(tenders), "what": describe(s)},
                          "\n".join(lines), s)
                except InvalidInput:
                    continue  # not sent: tried again at the next run, from the same point
                sent += 1
            s.last_index = size
            s.save(update_fields=["last_index"])
    return sent
