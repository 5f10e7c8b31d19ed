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
                    "purpose": order.purpose, "link": _link(order)})


@notices.in_platform_language
def order_decided(order: Order) -> None:
    if order.status == Order.Status.APPROVED:
        subject = _("Order %(number)s approved") % {"number": order.number}
        body = _("Your order was approved; the provider is creating the service.\n\n%(link)s")
    else:
        subject = _("Order %(number)s refused") % {"number": order.number}
        body = _("Your order was refused: %(note)s\n\n%(link)s")
    notices.tell([order.ordered_by], subject,
                 body % {"note": order.decision_note, "link": _link(order)})


@notices.in_platform_language
def instance_ready(instance: Instance) -> None:
    order = instance.order
    notices.tell([order.ordered_by, instance.requested_by],
                 _("Order %(number)s is ready") % {"number": order.number},
                 _("The service you ordered is ready. Ask for its credentials on the order's "
                   "page:\n\n%(link)s") % {"link": _link(order)})


@notices.in_platform_language
def instance_failed(instance: Instance, why: str) -> None:
    order = instance.order
    notices.tell([order.ordered_by, instance.requested_by],
                 _("Order %(number)s could not be provisioned") % {"number": order.number},
                 _("The provider could not create the service: %(why)s\n\n%(link)s")
                 % {"why": why, "link": _link(order)})
