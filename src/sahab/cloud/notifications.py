"""Who is told what in the cloud marketplace, by mail through sahab's own mail system:
finance officers when an order waits for their approval, the IT officer who ordered when
it is decided, and when the database is ready or could not be made. The approvers are
found with the same predicate the service checks (``selectors.may_decide_order``)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from sahab.cloud import selectors
from sahab.cloud.models import Instance, Order
from sahab.directory.models import Agent, Role
from sahab.mail import notices
from sahab.mail.models import NoticeKind


def _link(order: Order) -> str:
    return settings.PUBLIC_URL.rstrip("/") + reverse("cloud:order", args=(order.number,))


def approvers(order: Order) -> list:
    """The finance officers who may approve ``order`` (those the service would accept)."""
    ministry = selectors.ministry_path(order.administration)
    candidates = Agent.objects.filter(
        roles__role=Role.FINANCE, administration__path__startswith=ministry,
        user__is_active=True).select_related("user", "administration") \
        .prefetch_related("roles").distinct()
    return [a.user for a in candidates if selectors.may_decide_order(a.user, order)]


@notices.in_platform_language
def approval_needed(order: Order) -> None:
    notices.tell(approvers(order), _("An order waits for your approval: %(number)s")
                 % {"number": order.number},
                 _("%(administration)s ordered %(plan)s (%(monthly)s TND a month, above the "
                   "approval threshold) for: %(purpose)s\n\nApprove or refuse it: %(link)s")
                 % {"administration": order.administration.name_fr,
                    "plan": order.plan.name, "monthly": order.monthly_estimate,
                    "purpose": order.purpose, "link": _link(order)},
                 kind=NoticeKind.APPROVALS)


@notices.in_platform_language
def order_decided(order: Order) -> None:
    if order.status == Order.Status.APPROVED:
        subject = _("Order %(number)s approved") % {"number": order.number}
        body = _("Your order was approved; the provider is creating the service.\n\n%(link)s")
    else:
        subject = _("Order %(number)s refused") % {"number": order.number}
        body = _("Your order was refused: %(note)s\n\n%(link)s")
    notices.tell([order.ordered_by], subject,
                 body % {"note": order.decision_note, "link": _link(order)},
                 kind=NoticeKind.APPROVALS)


@notices.in_platform_language
def instance_ready(instance: Instance) -> None:
    order = instance.order
    notices.tell([order.ordered_by, instance.requested_by],
                 _("Order %(number)s is ready") % {"number": order.number},
                 _("The service you ordered is ready. Ask for its credentials on the order's "
                   "page:\n\n%(link)s") % {"link": _link(order)},
                 kind=NoticeKind.SERVICES)


@notices.in_platform_language
def instance_failed(instance: Instance, why: str) -> None:
    order = instance.order
    notices.tell([order.ordered_by, instance.requested_by],
                 _("Order %(number)s could not be provisioned") % {"number": order.number},
                 _("The provider could not create the service: %(why)s\n\n%(link)s")
                 % {"why": why, "link": _link(order)},
                 kind=NoticeKind.SERVICES)


@notices.in_platform_language
def label_expired(attestation, *, suspended: bool) -> None:
    """The provider's members are told their label expired; when that suspends the
    provider, so is every agent who ordered a service from it that is still live."""
    provider = attestation.provider
    label = attestation.get_label_display()
    notices.tell(_provider_members(provider), _("Your %(label)s label expired") % {"label": label},
                 _("Your %(label)s label %(reference)s expired on %(date)s. Submit a valid "
                   "one on your provider page.") % {
                     "label": label, "reference": attestation.reference,
                     "date": attestation.expires_on.isoformat()},
                 kind=NoticeKind.LABELS)
    if not suspended:
        return
    notices.tell(_live_customers(provider),
                 _("%(provider)s is suspended") % {"provider": provider.company.name},
                 _("The %(label)s label of %(provider)s expired: it takes no new orders until "
                   "a valid G-cloud label is accepted again. Your services stay as they are.")
                 % {"label": label, "provider": provider.company.name},
                 kind=NoticeKind.LABELS)


@notices.in_platform_language
def label_expiring(attestation, *, days_left: int, suspends: bool) -> int:
    """The provider's members are told a label expires in ``days_left`` days; when losing
    it would suspend the provider, so is every agent with a live service of it, so that
    nobody learns of the suspension on the day. Returns how many customers' addresses it
    was sent to (those who turned label notices off are not counted)."""
    provider = attestation.provider
    label = attestation.get_label_display()
    facts = {"label": label, "reference": attestation.reference, "days": days_left,
             "date": attestation.expires_on.isoformat(), "provider": provider.company.name}
    notices.tell(_provider_members(provider),
                 _("Your %(label)s label expires in %(days)s days") % facts,
                 _("Your %(label)s label %(reference)s expires on %(date)s. Submit the renewed "
                   "label on your provider page before then: without a valid G-cloud label "
                   "no administration can order from you.") % facts,
                 kind=NoticeKind.LABELS)
    if not suspends:
        return 0
    return notices.tell(_live_customers(provider),
                 _("%(provider)s's %(label)s label expires on %(date)s") % facts,
                 _("The %(label)s label of %(provider)s expires on %(date)s. If it is not "
                   "renewed by then, %(provider)s takes no new orders; your services stay as "
                   "they are.") % facts,
                 kind=NoticeKind.LABELS)


def _provider_members(provider) -> list:
    from sahab.directory.models import CompanyMember

    return [m.user for m in CompanyMember.objects.filter(
        company=provider.company).select_related("user")]


def _live_customers(provider) -> list:
    """The agents who ordered a service of ``provider`` that still runs."""
    return list({o.ordered_by for o in Order.objects.filter(
        plan__offering__broker__provider=provider,
        instance__state__in=selectors.LIVE_STATES).select_related("ordered_by")})


# --- the account page's "waiting for you" ---------------------------------------------------

# Days before a label's expiry at which its provider is warned (and, for a label whose
# loss would suspend the provider, its customers): a month to renew, then a last week.
# From the first, the label also waits on the provider's account page.
LABEL_WARNING_DAYS = (30, 7)


def waiting_for(user) -> list:
    """Orders this person may approve, and their company's labels about to expire."""
    import datetime as dt

    from django.utils import timezone

    from sahab.cloud.models import Attestation
    from sahab.core.waiting import Waiting
    from sahab.directory import selectors as directory

    items = []
    agent = directory.agent_of(user)
    if agent is not None and Role.FINANCE in agent.role_set:
        pending = selectors.orders_visible_to(user).filter(
            status=Order.Status.PENDING_APPROVAL).order_by("created_at")[:50]
        items += [Waiting(_("Approve or refuse order %(number)s of %(administration)s")
                          % {"number": o.number, "administration": o.administration.name},
                          reverse("cloud:order", args=(o.number,)), o.created_at)
                  for o in pending if selectors.may_decide_order(user, o)]
    company = directory.company_of(user)
    if company is not None:
        soon = timezone.localdate() + dt.timedelta(days=max(LABEL_WARNING_DAYS))
        for label in Attestation.objects.filter(
                provider__company=company, status=Attestation.Status.ACCEPTED,
                expires_on__lte=soon).order_by("expires_on"):
            items.append(Waiting(_("Renew your %(label)s label: it expires on %(date)s")
                                 % {"label": label.get_label_display(),
                                    "date": label.expires_on.isoformat()},
                                 reverse("cloud:my_provider"), label.expires_on))
    return items

