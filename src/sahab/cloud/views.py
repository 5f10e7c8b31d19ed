"""Web pages of the cloud marketplace: catalogue, orders and their instances, providers
and their review, the provider's own page, and the cost dashboards. Views parse the
request, call a service or a selector and render; every right is checked in services."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sahab.cloud import focus, forms, selectors, services
from sahab.cloud.errors import CloudError
from sahab.cloud.models import Attestation, Instance, InstanceState, Provider, ServicePlan
from sahab.core.actions import run_form_action
from sahab.core.charts import bars
from sahab.core.downloads import attach, table_response
from sahab.core.errors import DomainError, InvalidInput
from sahab.directory import selectors as directory
from sahab.directory.models import Role
from sahab.ledger import services as ledger


def _money(value) -> str:
    return f"{(value or Decimal(0)).quantize(Decimal('0.001'))}"


# --- catalogue ----------------------------------------------------------------------------

def _catalogue_table(rows) -> list[dict]:
    return [{"provider": r.provider.company.name, "service": r.plan.offering.display_name,
             "category": r.plan.offering.category, "plan": r.plan.display_name,
             "plan_id": r.plan.plan_id, "labels": " ".join(sorted(r.labels)),
             "locations": ", ".join(r.locations),
             "hourly_price_tnd": _money(r.price) if r.price is not None else "",
             "monthly_estimate_tnd": _money(r.monthly) if r.monthly is not None else "",
             "orderable": r.orderable, "reason": r.reason} for r in rows]


def catalogue(request):
    """Plans of every provider side by side, priced by the framework contracts."""
    form = forms.CatalogueFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = selectors.catalogue(q=filters.get("q", ""), category=filters.get("category", ""),
                               location=filters.get("location", ""),
                               label=filters.get("label", ""),
                               max_price=filters.get("max_price"),
                               orderable_only=filters.get("orderable", False))
    if request.GET.get("format") in ("csv", "json"):
        return table_response(request.GET["format"], "cloud-catalogue", _catalogue_table(rows))
    priced = [{"label": f"{r.provider.company.name} — {r.plan.display_name}",
               "value": _money(r.monthly)} for r in rows if r.monthly is not None]
    return render(request, "cloud/catalogue.html", {
        "form": form, "rows": rows, "price_bars": bars(priced, "label", "value"),
        "can_order": Role.IT_OFFICER in directory.roles_of(request.user),
        "query": request.GET.urlencode()})


@login_required
def order_plan(request, plan_id: int):
    plan = get_object_or_404(ServicePlan.objects.select_related(
        "offering__broker__provider__company"), pk=plan_id)
    schema = ((plan.schemas.get("service_instance") or {}).get("create") or {}) \
        .get("parameters")
    form = forms.OrderForm(request.POST or None, schema=schema)
    if request.method == "POST" and form.is_valid():
        try:
            order = services.place_order(actor=request.user, plan=plan,
                                         purpose=form.cleaned_data["purpose"],
                                         parameters=form.cleaned_data["parameters"])
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Order %(number)s placed.") % {"number": order.number})
            return redirect("cloud:order", number=order.number)
    price = selectors.contract_price(plan)
    return render(request, "cloud/order_plan.html", {
        "plan": plan, "form": form, "price": price, "quote": _quote(request.user, price),
        "reason": selectors.not_orderable_reason(plan)})


def _quote(user, price) -> dict | None:
    """What ordering would cost the person's administration, before they order: the
    month's cost, what is left of the budget and whether the finance service approves."""
    agent = directory.agent_of(user)
    if price is None or agent is None:
        return None
    monthly = selectors.monthly_cost(price.unit_price)
    return {"monthly": monthly, "needs_approval": selectors.needs_approval(monthly),
            "threshold": settings.CLOUD_APPROVAL_THRESHOLD,
            "budget": selectors.budget_check(agent.administration, monthly, timezone.now())}


# --- orders -------------------------------------------------------------------------------

@login_required
def orders(request):
    items = selectors.orders_visible_to(request.user)
    status = request.GET.get("status", "")
    if status:
        items = items.filter(status=status)
    if request.GET.get("format") in ("csv", "json"):
        rows = [{"number": o.number, "administration": o.administration.code,
                 "provider": o.plan.offering.broker.provider.company.name,
                 "plan": o.plan.name, "hourly_price_tnd": str(o.unit_price),
                 "status": o.status, "instance_state": getattr(
                     Instance.objects.filter(order=o).first(), "state", ""),
                 "created_at": o.created_at.isoformat()} for o in items[:10000]]
        return table_response(request.GET["format"], "cloud-orders", rows)
    return render(request, "cloud/orders.html", {"orders": items[:200], "status": status})


def _visible_order(request, number: str):
    order = selectors.orders_visible_to(request.user).filter(number=number).first()
    if order is None:
        raise Http404
    return order


def _order_context(request, order) -> dict:
    instance = Instance.objects.filter(order=order).select_related("plan", "target_plan").first()
    user = request.user
    agent = directory.agent_of(user)
    roles = agent.role_set if agent else set()
    mine = bool(agent and order.administration.is_within(agent.administration))
    bindings = list(selectors.bindings_of(instance)) if instance else []
    other_plans = []
    if instance is not None and instance.state == InstanceState.ACTIVE and \
            instance.plan.plan_updateable:
        other_plans = [p for p in instance.plan.offering.plans.filter(active=True)
                       .exclude(pk=instance.plan_id)]
    return {
        "order": order, "instance": instance,
        "bindings": bindings,
        "usage": instance.usage.order_by("-period_start")[:24] if instance else [],
        "spent": instance.usage.aggregate(total=Sum("cost"))["total"] if instance else None,
        "can_decide": order.status == "pending_approval" and
        selectors.may_decide_order(user, order),
        "can_manage": mine and Role.IT_OFFICER in roles, "other_plans": other_plans,
        "pending": bool(instance and instance.operation) or any(b.operation for b in bindings),
        "entries": ledger.entries_about(f"cloud:order:{order.number}")[:50],
    }


@login_required
def order(request, number: str):
    item = _visible_order(request, number)
    template = "cloud/_instance.html" if request.headers.get("HX-Request") else "cloud/order.html"
    return render(request, template, _order_context(request, item))


def _decision(approve: bool):
    def decide(request, item, instance, form) -> None:
        services.decide_order(actor=request.user, order=item, approve=approve,
                              note=form.cleaned_data["note"])
    return decide


def _bind(request, item, instance, form) -> None:
    services.request_binding(actor=request.user, instance=instance,
                             name=form.cleaned_data["name"])


# action → (form, its extra arguments, what it does); ``reveal`` answers with a page
ORDER_ACTIONS = {
    "approve": (forms.DecisionForm, _decision(approve=True)),
    "refuse": (forms.DecisionForm, _decision(approve=False)),
    "bind": (forms.NameForm, _bind),
    "unbind": (forms.BindingForm, lambda request, item, instance, form: services.request_unbind(
        actor=request.user, binding=form.cleaned_data["binding"])),
    "plan": (forms.PlanChangeForm, lambda request, item, instance, form:
             services.request_plan_change(actor=request.user, instance=instance,
                                          plan=form.cleaned_data["plan"])),
    "deprovision": (forms.ConfirmForm, lambda request, item, instance, form:
                    services.request_deprovision(actor=request.user, instance=instance)),
    "retry": (forms.ConfirmForm, lambda request, item, instance, form:
              services.retry_provisioning(actor=request.user, instance=instance)),
}
DECISIONS = ("approve", "refuse")


def _order_form(form_class, request, instance):
    if form_class is forms.BindingForm:
        return form_class(request.POST, instance=instance)
    return form_class(request.POST)


@login_required
@require_POST
def order_action(request, number: str, action: str):
    """One form of the order page; the service decides and records."""
    item = _visible_order(request, number)
    if action != "reveal" and action not in ORDER_ACTIONS:
        raise Http404
    instance = Instance.objects.filter(order=item).first()
    if instance is None and action not in DECISIONS:
        messages.error(request, InvalidInput(CloudError.ORDER_WITHOUT_INSTANCE).detail)
        return redirect("cloud:order", number=number)
    if action == "reveal":
        return _reveal(request, item, instance)
    form_class, perform = ORDER_ACTIONS[action]
    form = _order_form(form_class, request, instance)
    run_form_action(request, form, lambda data: perform(request, item, instance, form) or
                    _("Done; the page shows the progress."))
    return redirect("cloud:order", number=number)


def _reveal(request, item, instance):
    """The credentials of one binding, on a page that is never cached."""
    form = forms.BindingForm(request.POST, instance=instance)
    shown = {}

    def reveal(data: dict) -> str:
        shown["credentials"] = services.reveal_credentials(actor=request.user,
                                                           binding=data["binding"])
        return _("Recorded in the ledger.")

    if not run_form_action(request, form, reveal):
        return redirect("cloud:order", number=item.number)
    response = render(request, "cloud/credentials.html", {
        "order": item, "binding": form.cleaned_data["binding"], **shown})
    response["Cache-Control"] = "no-store"
    return response


# --- providers ----------------------------------------------------------------------------

def providers(request):
    items = list(selectors.providers())
    for item in items:
        item.labels = sorted(selectors.valid_labels(item))
        item.can_take_orders = selectors.provider_can_take_orders(item)
    return render(request, "cloud/providers.html", {"providers": items})


def provider(request, provider_id: int):
    item = get_object_or_404(selectors.providers(), pk=provider_id)
    broker = getattr(item, "broker", None) if hasattr(item, "broker") else None
    return render(request, "cloud/provider.html", {
        "provider": item, "labels": sorted(selectors.valid_labels(item)),
        "can_take_orders": selectors.provider_can_take_orders(item), "broker": broker,
        "attestations": item.attestations.all(),
        "reviewer": directory.is_platform_admin(request.user),
        "offerings": broker.offerings.filter(active=True).prefetch_related("plans")
        if broker else []})


def _review(accept: bool):
    def review(user, provider, data: dict) -> None:
        services.review_attestation(actor=user, attestation=data["attestation"],
                                    accept=accept, note=data["note"])
    return review


def _qualify(qualify: bool):
    def decide(user, provider, data: dict) -> None:
        services.decide_provider(actor=user, provider=provider, qualify=qualify,
                                 note=data["note"])
    return decide


PROVIDER_ACTIONS = {
    "accept": (forms.AttestationDecisionForm, _review(accept=True)),
    "refuse": (forms.AttestationDecisionForm, _review(accept=False)),
    "revoke": (forms.AttestationDecisionForm, lambda user, provider, data:
               services.revoke_attestation(actor=user, attestation=data["attestation"],
                                           reason=data["note"])),
    "qualify": (forms.DecisionForm, _qualify(qualify=True)),
    "disqualify": (forms.DecisionForm, _qualify(qualify=False)),
}


@login_required
@require_POST
def provider_action(request, provider_id: int, action: str):
    """A platform administrator's decision on a provider or one of its attestations."""
    item = get_object_or_404(Provider, pk=provider_id)
    if action not in PROVIDER_ACTIONS:
        raise Http404
    form_class, perform = PROVIDER_ACTIONS[action]
    form = (form_class(request.POST, provider=item)
            if form_class is forms.AttestationDecisionForm else form_class(request.POST))
    run_form_action(request, form, lambda data: perform(request.user, item, data) or
                    _("Recorded in the ledger."))
    return redirect("cloud:provider", provider_id=provider_id)


@login_required
def my_provider(request):
    """A provider company's own page: application, attestations, broker, its orders."""
    company = directory.company_of(request.user)
    if company is None:
        raise Http404
    item = Provider.objects.filter(company=company).first()
    context = {"company": company, "provider": item,
               "application_form": forms.ApplicationForm(),
               "attestation_form": forms.AttestationForm(), "broker_form": forms.BrokerForm()}
    if item is not None:
        context.update({
            "attestations": item.attestations.all(),
            "broker": getattr(item, "broker", None) if hasattr(item, "broker") else None,
            "labels": sorted(selectors.valid_labels(item)),
            "orders": selectors.orders_visible_to(request.user)[:100]})
    return render(request, "cloud/my_provider.html", context)


def _apply(user, data: dict) -> None:
    services.apply_as_provider(actor=user, **data)


def _attest(user, data: dict) -> None:
    data = dict(data)
    upload = data.pop("document")
    services.submit_attestation(actor=user, **data,
                                document=upload.read() if upload else None,
                                document_name=upload.name if upload else "")


def _broker(user, data: dict) -> str | None:
    broker = services.refresh_catalog(services.register_broker(actor=user, **data))
    if broker.catalog_error:
        raise InvalidInput(CloudError.CATALOGUE_UNREADABLE, error=broker.catalog_error)
    return None


MY_PROVIDER_ACTIONS = {
    "apply": (forms.ApplicationForm, _apply),
    "attestation": (forms.AttestationForm, _attest),
    "broker": (forms.BrokerForm, _broker),
}


@login_required
@require_POST
def my_provider_action(request, action: str):
    """A provider company's application, attestations and broker."""
    if action not in MY_PROVIDER_ACTIONS:
        raise Http404
    form_class, perform = MY_PROVIDER_ACTIONS[action]
    form = form_class(request.POST, request.FILES)
    run_form_action(request, form, lambda data: perform(request.user, data) or
                    _("Recorded in the ledger."))
    return redirect("cloud:my_provider")


# --- dashboards ---------------------------------------------------------------------------

def _year(request) -> int:
    try:
        year = int(request.GET.get("year") or timezone.localdate().year)
    except ValueError:
        year = timezone.localdate().year
    return year if 2000 <= year <= 2100 else timezone.localdate().year


def _cost_rows(rows: list[dict], key: str, label: str) -> list[dict]:
    return [{label: str(r[key]), "cost_tnd": _money(r["cost"])} for r in rows]


@login_required
def dashboard(request):
    """Spending over time, by provider, administration and service; budgets; savings."""
    year = _year(request)
    usage = selectors.usage_visible_to(request.user, year=year)
    months = [{"month": f"{r['month']:%Y-%m}", "cost_tnd": _money(r["cost"])}
              for r in selectors.monthly_costs(usage)]
    by_provider = _cost_rows(selectors.cost_by(usage, "provider__company__name"),
                             "provider__company__name", "provider")
    by_administration = _cost_rows(selectors.cost_by(usage, "administration__code"),
                                   "administration__code", "administration")
    by_service = _cost_rows(selectors.cost_by(usage, "instance__plan__name"),
                            "instance__plan__name", "plan")
    budgets = [{"administration": r["administration"].code, "budget_tnd": _money(r["budget"]),
                "spent_tnd": _money(r["spent"]), "percent": r["percent"]}
               for r in selectors.budget_use(year, request.user)]
    in_use = selectors.services_in_use(request.user)
    savings = selectors.savings(usage)
    saving_rows = [{"plan": r["plan"].display_name, "hours": f"{r['hours']:.1f}",
                    "cloud_tnd": _money(r["cloud"]), "onprem_tnd": _money(r["onprem"])}
                   for r in savings["rows"]]
    tables = {"months": months, "providers": by_provider, "administrations": by_administration,
              "plans": by_service, "budgets": budgets, "in_use": in_use, "savings": saving_rows}
    name = request.GET.get("table", "")
    if name in tables and request.GET.get("format") in ("csv", "json"):
        return table_response(request.GET["format"], f"cloud-{name}-{year}", tables[name])
    agent = directory.agent_of(request.user)
    return render(request, "cloud/dashboard.html", {
        "year": year, "everything": selectors.sees_everything(request.user),
        "total": _money(usage.aggregate(total=Sum("cost"))["total"]), **tables,
        "month_bars": bars(months, "month", "cost_tnd"),
        "provider_bars": bars(by_provider, "provider", "cost_tnd"),
        "administration_bars": bars(by_administration, "administration", "cost_tnd"),
        "plan_bars": bars(by_service, "plan", "cost_tnd"),
        "budget_bars": bars(budgets, "administration", "percent", scale=100),
        "in_use_bars": bars(in_use, "plan", "instances"),
        "savings": savings, "saving_bars": bars(
            [{"label": _("Cloud"), "value": _money(savings["cloud"])},
             {"label": _("On-premise equivalent"), "value": _money(savings["onprem"])}],
            "label", "value"),
        "alerts": selectors.alerts_for(request.user),
        "budget_form": forms.BudgetForm(initial={"year": year}),
        "can_set_budget": bool(agent and agent.role_set & {Role.FINANCE,
                                                           Role.ADMINISTRATION_ADMIN}),
    })


@login_required
@require_POST
def set_budget(request):
    form = forms.BudgetForm(request.POST)
    agent = directory.agent_of(request.user)
    if agent is None:
        raise Http404

    def record(data: dict) -> str:
        services.set_budget(actor=request.user, administration=agent.administration,
                            year=data["year"], amount=data["amount"],
                            thresholds=data["thresholds"])
        return _("Budget recorded.")

    run_form_action(request, form, record)
    year = form.cleaned_data.get("year") if hasattr(form, "cleaned_data") else None
    return redirect(reverse("cloud:dashboard") + (f"?year={year}" if year else ""))


@login_required
def focus_export(request) -> HttpResponse:
    year = _year(request)
    response = StreamingHttpResponse(
        focus.csv_lines(selectors.usage_visible_to(request.user, year=year)),
        content_type="text/csv; charset=utf-8")
    attach(response, f"sahab-focus-{year}.csv")
    return response


@login_required
def osb_dashboard(request, instance_id: str):
    """Where the reference broker's dashboard_url points: back to the order's page, for
    those who may see the order (anybody else learns nothing, not even its number)."""
    number = selectors.orders_visible_to(request.user).filter(
        instance__instance_id=instance_id).values_list("number", flat=True).first()
    if number is None:
        raise Http404
    return redirect("cloud:order", number=number)


@login_required
def attestation_document(request, attestation_id: int) -> HttpResponse:
    """The certificate's file, for reviewers and for the provider that submitted it."""
    attestation = get_object_or_404(Attestation.objects.select_related("provider__company"),
                                    pk=attestation_id)
    allowed = directory.is_platform_admin(request.user) or \
        directory.company_of(request.user) == attestation.provider.company
    if not allowed or attestation.document is None:
        raise Http404
    response = HttpResponse(bytes(attestation.document), content_type=attestation.document_type)
    attach(response, attestation.document_name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
