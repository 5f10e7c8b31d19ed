"""Reads of the cloud marketplace: which provider may take orders, what a plan costs
under its framework contract, who sees which orders, and the cost figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Greatest, TruncMonth
from django.utils import timezone

from sahab.cloud.errors import CloudError
from sahab.cloud.models import (
    Alert,
    Attestation,
    Binding,
    Budget,
    Instance,
    InstanceState,
    Label,
    Order,
    Provider,
    ServicePlan,
    UsageRecord,
)
from sahab.core.errors import Conflict
from sahab.directory import rules
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, AdministrationKind, Role
from sahab.procurement import selectors as procurement

HOURS_PER_MONTH = Decimal(730)
LIVE_STATES = [InstanceState.REQUESTED, InstanceState.PROVISIONING, InstanceState.ACTIVE,
               InstanceState.UPDATING, InstanceState.DEPROVISIONING]


# --- providers ----------------------------------------------------------------------------

def valid_labels(provider: Provider, today: dt.date | None = None) -> set[str]:
    """Labels the provider holds today: accepted, started, not expired."""
    today = today or timezone.localdate()
    return set(provider.attestations.filter(
        status=Attestation.Status.ACCEPTED, valid_from__lte=today, expires_on__gte=today,
    ).values_list("label", flat=True))


def provider_can_take_orders(provider: Provider) -> bool:
    """Only qualified providers with a valid G-cloud label host administrations' systems."""
    return provider.status == Provider.Status.QUALIFIED and Label.G_CLOUD in valid_labels(provider)


def providers() -> QuerySet[Provider]:
    return Provider.objects.select_related("company").prefetch_related("attestations") \
        .order_by("company__name")


# --- catalogue and prices -----------------------------------------------------------------

def contract_price(plan: ServicePlan):
    """The plan's price line in the provider's active framework agreement, or None."""
    return procurement.framework_prices(plan.offering.broker.provider.company,
                                        [plan.plan_id]).first()


def not_orderable(plan: ServicePlan) -> Conflict | None:
    """Why the plan cannot be ordered now, as the refusal to raise, or None when it can."""
    return _refusal(plan, valid_labels(plan.offering.broker.provider), contract_price(plan))


def not_orderable_reason(plan: ServicePlan) -> str:
    """Why the plan cannot be ordered now, or '' when it can."""
    refusal = not_orderable(plan)
    return refusal.detail if refusal else ""


def _reason(plan: ServicePlan, labels: set[str], price) -> str:
    refusal = _refusal(plan, labels, price)
    return refusal.detail if refusal else ""


def _refusal(plan: ServicePlan, labels: set[str], price) -> Conflict | None:
    provider = plan.offering.broker.provider
    if provider.status != Provider.Status.QUALIFIED:
        return Conflict(CloudError.PROVIDER_NOT_QUALIFIED, provider=provider.company.name)
    if Label.G_CLOUD not in labels:
        return Conflict(CloudError.PROVIDER_WITHOUT_G_CLOUD, provider=provider.company.name)
    if not plan.active or not plan.offering.active:
        return Conflict(CloudError.PLAN_WITHDRAWN)
    if not plan.available:
        reason = plan.metadata.get("unavailableReason")
        if not reason:
            return Conflict(CloudError.PLAN_MARKED_UNAVAILABLE)
        return Conflict(CloudError.PLAN_UNAVAILABLE, reason=reason)
    if price is None:
        return Conflict(CloudError.PLAN_WITHOUT_PRICE)
    return None


@dataclass
class CatalogueRow:
    plan: ServicePlan
    price: Decimal | None
    contract: object
    labels: set[str]
    reason: str

    @property
    def monthly(self) -> Decimal | None:
        return None if self.price is None else monthly_cost(self.price)

    @property
    def orderable(self) -> bool:
        return not self.reason

    @property
    def provider(self) -> Provider:
        return self.plan.offering.broker.provider

    @property
    def locations(self) -> list[str]:
        return self.provider.location_list


def catalogue(*, q: str = "", category: str = "", location: str = "", label: str = "",
              max_price=None, orderable_only: bool = False) -> list[CatalogueRow]:
    """Every active plan with its contract price, labels and orderability, cheapest first."""
    plans = ServicePlan.objects.filter(active=True, offering__active=True).select_related(
        "offering__broker__provider__company")
    if q:
        plans = plans.filter(Q(name__icontains=q) | Q(description__icontains=q) |
                             Q(offering__name__icontains=q) |
                             Q(offering__description__icontains=q) |
                             Q(offering__broker__provider__company__name__icontains=q))
    if category:
        plans = plans.filter(offering__category=category)
    if location:
        plans = plans.filter(offering__broker__provider__locations__icontains=location)
    rows = []
    labels_cache: dict[int, set[str]] = {}
    for plan in plans:
        provider = plan.offering.broker.provider
        if provider.pk not in labels_cache:
            labels_cache[provider.pk] = valid_labels(provider)
        labels = labels_cache[provider.pk]
        if label and label not in labels:
            continue
        price = contract_price(plan)
        if max_price is not None and (price is None or price.unit_price > Decimal(max_price)):
            continue
        row = CatalogueRow(plan, price.unit_price if price else None,
                           price.contract if price else None, labels, _reason(plan, labels, price))
        if orderable_only and not row.orderable:
            continue
        rows.append(row)
    rows.sort(key=lambda r: (r.plan.offering.category, r.price is None, r.price or 0,
                             r.plan.name))
    return rows


# --- who sees what ------------------------------------------------------------------------

def sees_everything(user) -> bool:
    """Platform admins, auditors (appointed by platform admins only, directory.rules) and
    the ministry in charge of ICT see every administration."""
    if rules.sees_every_administration(user):
        return True
    agent = directory.agent_of(user)
    return agent is not None and agent.administration.path.startswith(_ict_ministry_path())


def _ict_ministry_path() -> str:
    """The ICT ministry's path. Only an administration of the ministry kind counts (the
    tree places one at the top or under the presidency only), so that no administrator
    gets its oversight by giving one of their own units the ministry's code."""
    ministry = Administration.objects.filter(code=settings.CLOUD_ICT_MINISTRY,
                                             kind=AdministrationKind.MINISTRY).first()
    return ministry.path if ministry else "\x00"


def scope_path(agent) -> str:
    """The part of the tree an agent's cloud pages and API cover: the whole ministry for a
    finance agent (its finance directorate approves and budgets for every unit of it, as
    the services allow), else the agent's own administration and the units under it."""
    if Role.FINANCE in agent.role_set:
        return ministry_path(agent.administration)
    return agent.administration.path


def may_decide_order(user, order: Order) -> bool:
    """Whether ``user`` may approve or refuse ``order``: a finance agent of the ordering
    administration's ministry who did not place it. The service, the API and the order
    page all ask this one question."""
    agent = directory.agent_of(user)
    return bool(agent and Role.FINANCE in agent.role_set and user != order.ordered_by
                and order.administration.path.startswith(ministry_path(agent.administration)))


def administrations_visible_to(user) -> QuerySet[Administration]:
    if sees_everything(user):
        return Administration.objects.all()
    agent = directory.agent_of(user)
    if agent is None:
        return Administration.objects.none()
    return Administration.objects.filter(path__startswith=scope_path(agent))


def orders_visible_to(user) -> QuerySet[Order]:
    """Agents see their scope (``scope_path``); providers the orders made to them."""
    qs = Order.objects.select_related("administration", "plan__offering__broker__provider__company",
                                      "instance", "ordered_by")
    if sees_everything(user):
        return qs
    agent = directory.agent_of(user)
    if agent is not None:
        return qs.filter(administration__path__startswith=scope_path(agent))
    company = directory.company_of(user)
    if company is not None:
        return qs.filter(plan__offering__broker__provider__company=company)
    return qs.none()


def instances_visible_to(user) -> QuerySet[Instance]:
    return Instance.objects.filter(order__in=orders_visible_to(user)).select_related(
        "order__administration", "plan__offering__broker__provider__company")


def services_in_use(user) -> list[dict]:
    """Live instances per service and plan, most used first."""
    counts: dict[tuple[str, str], int] = {}
    for instance in instances_visible_to(user).filter(state__in=LIVE_STATES):
        key = (instance.plan.offering.display_name, instance.plan.display_name)
        counts[key] = counts.get(key, 0) + 1
    return [{"service": service, "plan": plan, "instances": n}
            for (service, plan), n in sorted(counts.items(), key=lambda kv: -kv[1])]


def bindings_of(instance: Instance) -> QuerySet[Binding]:
    return instance.bindings.order_by("-created_at")


def alerts_for(user, limit: int = 20) -> QuerySet[Alert]:
    return Alert.objects.filter(
        administration__in=administrations_visible_to(user)).select_related(
        "administration")[:limit]


# --- money --------------------------------------------------------------------------------

def _usage_in(administration: Administration | None, start: dt.datetime, end: dt.datetime):
    usage = UsageRecord.objects.filter(period_start__gte=start, period_start__lt=end)
    if administration is not None:
        usage = usage.filter(administration__path__startswith=administration.path)
    return usage


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (dt.datetime(year, 1, 1, tzinfo=tz), dt.datetime(year + 1, 1, 1, tzinfo=tz))


def ministry_path(administration: Administration) -> str:
    """The path of the ministry (or independent body) at the top of the administration's
    tree: its finance directorate approves and budgets for the whole ministry."""
    return "/" + administration.path.strip("/").split("/")[0] + "/"


def budgets_over(administration: Administration, year: int) -> QuerySet[Budget]:
    """The budgets of ``year`` of an administration and of its parents."""
    return Budget.objects.filter(year=year,
                                 administration__path__in=_ancestor_paths(administration)) \
        .select_related("administration")


def spent(administration: Administration, year: int) -> Decimal:
    start, end = _year_bounds(year)
    total = _usage_in(administration, start, end).aggregate(total=Sum("cost"))["total"]
    return (total or Decimal(0)).quantize(Decimal("0.001"))


def months_left(now: dt.datetime) -> Decimal:
    _, end = _year_bounds(now.year)
    return Decimal((end - now).total_seconds() / 3600) / HOURS_PER_MONTH


def committed_until_year_end(administration: Administration, now: dt.datetime) -> Decimal:
    """Spent this year plus what the live instances will cost until 31 December.

    An instance whose plan change is under way counts at the higher of its two prices:
    the change was checked against the budget when asked, and the budget stays taken
    while the broker works, so that orders placed meanwhile cannot spend it again."""
    live = Instance.objects.filter(order__administration__path__startswith=administration.path,
                                   state__in=LIVE_STATES).aggregate(total=Sum(Greatest(
                                       "unit_price", Coalesce("target_unit_price", "unit_price"))))
    hourly = live["total"] or Decimal(0)
    return spent(administration, now.year) + hourly * HOURS_PER_MONTH * months_left(now)


@dataclass(frozen=True)
class BudgetCheck:
    """What an extra monthly cost does to the tightest budget over an administration this
    year: the order page shows it before ordering, and the services refuse with it."""

    budget: Budget | None
    committed: Decimal  # spent this year, plus the live instances until 31 December
    needed: Decimal  # the extra monthly cost until 31 December

    @property
    def remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget.amount - self.committed

    @property
    def fits(self) -> bool:
        return self.budget is not None and self.committed + self.needed <= self.budget.amount


def budget_check(administration: Administration, monthly: Decimal,
                 now: dt.datetime, budgets: Iterable[Budget] | None = None) -> BudgetCheck:
    """Whether ``monthly`` more, from ``now`` to the end of the year, fits the budget.

    Every budget over the administration must hold it: a unit's own budget adds a
    limit under its ministry's, it does not lift the ministry's. The check returned is
    the tightest (least left), the nearest budget when several leave the same."""
    if budgets is None:
        budgets = budgets_over(administration, now.year)
    checks = [_check_one(budget, monthly, now) for budget in
              sorted(budgets, key=lambda b: -len(b.administration.path))]
    if not checks:
        return BudgetCheck(None, Decimal(0), Decimal(0))
    return min(checks, key=lambda check: check.remaining)


def _check_one(budget: Budget, monthly: Decimal, now: dt.datetime) -> BudgetCheck:
    committed = committed_until_year_end(budget.administration, now)
    return BudgetCheck(budget, committed.quantize(Decimal("0.001")),
                       (monthly * months_left(now)).quantize(Decimal("0.001")))


def monthly_cost(unit_price: Decimal) -> Decimal:
    """A price per hour as a month's cost (730 hours), to the millime."""
    return (unit_price * HOURS_PER_MONTH).quantize(Decimal("0.001"))


def needs_approval(monthly: Decimal) -> bool:
    """Orders above the threshold wait for the finance service of the ministry."""
    return monthly > settings.CLOUD_APPROVAL_THRESHOLD


def _ancestor_paths(administration: Administration) -> list[str]:
    parts = administration.path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def budget_use(year: int, user) -> list[dict]:
    """The budgets the user may see: every one for those who see everything; else those
    of their administration's subtree and the parents' budgets that pay for it."""
    budgets = Budget.objects.filter(year=year).select_related("administration")
    if not sees_everything(user):
        agent = directory.agent_of(user)
        if agent is None:
            return []
        own = agent.administration
        budgets = budgets.filter(Q(administration__path__startswith=scope_path(agent)) |
                                 Q(administration__path__in=_ancestor_paths(own)))
    rows = []
    for budget in budgets.order_by("administration__code"):
        used = spent(budget.administration, year)
        rows.append({"administration": budget.administration, "year": year,
                     "budget": budget.amount,
                     "spent": used, "percent": int(used * 100 / budget.amount)
                     if budget.amount else 0})
    return rows


def cost_by(usage, field: str) -> list[dict]:
    return list(usage.values(field).annotate(cost=Sum("cost")).order_by("-cost"))


def monthly_costs(usage) -> list[dict]:
    return list(usage.annotate(month=TruncMonth("period_start")).values("month")
                .annotate(cost=Sum("cost")).order_by("month"))


def usage_visible_to(user, *, year: int | None = None):
    usage = UsageRecord.objects.filter(administration__in=administrations_visible_to(user))
    if year:
        start, end = _year_bounds(year)
        usage = usage.filter(period_start__gte=start, period_start__lt=end)
    return usage


def onprem_monthly_cost(resources: dict) -> Decimal:
    """What one instance of these resources costs per month in an administration's own
    hosting centre (settings.CLOUD_ONPREM, method in docs/cloud.md)."""
    ref = settings.CLOUD_ONPREM
    base = (Decimal(str(ref["server_month"])) +
            Decimal(str(ref["vcpu_month"])) * Decimal(str(resources.get("vcpu", 1))) +
            Decimal(str(ref["memory_gb_month"])) * Decimal(str(resources.get("memory_gb", 1))) +
            Decimal(str(ref["storage_gb_month"])) * Decimal(str(resources.get("storage_gb", 0))))
    return base / Decimal(str(ref["utilisation"]))


def savings(usage) -> dict:
    """Cloud spending against the on-premise cost of the same instance-hours."""
    by_plan = usage.values("instance__plan").annotate(cost=Sum("cost"), hours=Sum("hours"))
    plans = {p.pk: p for p in ServicePlan.objects.filter(
        pk__in=[row["instance__plan"] for row in by_plan]).select_related("offering")}
    cloud = onprem = Decimal(0)
    rows = []
    for row in by_plan:
        plan = plans[row["instance__plan"]]
        hourly_onprem = onprem_monthly_cost(plan.metadata.get("resources") or {}) / HOURS_PER_MONTH
        equivalent = (hourly_onprem * row["hours"]).quantize(Decimal("0.001"))
        cloud += row["cost"]
        onprem += equivalent
        rows.append({"plan": plan, "hours": row["hours"],
                     "cloud": row["cost"].quantize(Decimal("0.001")), "onprem": equivalent})
    cloud = cloud.quantize(Decimal("0.001"))
    return {"cloud": cloud, "onprem": onprem, "saved": onprem - cloud,
            "percent": int((onprem - cloud) * 100 / onprem) if onprem else 0, "rows": rows}
