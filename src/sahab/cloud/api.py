"""JSON API of the cloud marketplace: the public catalogue and providers; providers'
applications, attestations, brokers and usage reports; administrations' orders,
approvals, credentials, plan changes and deletions; budgets, costs and the FOCUS export.
Rights are checked in the services and selectors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Sum
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.pagination import paginate

from sahab.cloud import focus, metering, selectors, services
from sahab.cloud.errors import CloudError
from sahab.cloud.models import (
    Attestation,
    Binding,
    Category,
    Instance,
    Label,
    Order,
    Provider,
    ServicePlan,
)
from sahab.core.downloads import attach
from sahab.core.errors import CoreError, NotFound
from sahab.core.inputs import base64_content
from sahab.core.pagination import Paging
from sahab.directory.models import Administration
from sahab.ledger.views import promise_url

router = Router(tags=["cloud"])
Id = Path(..., ge=1, le=2**63 - 1)


# --- schemas ------------------------------------------------------------------------------

class AttestationOut(Schema):
    id: int
    label: Label
    issuer: str
    scope: str
    reference: str
    valid_from: dt.date
    expires_on: dt.date
    status: str
    document_sha256: str


class ProviderOut(Schema):
    id: int
    company: str
    matricule_fiscal: str
    status: str
    locations: list[str]
    valid_labels: list[str]
    can_take_orders: bool

    @staticmethod
    def resolve_company(obj: Provider) -> str:
        return obj.company.name

    @staticmethod
    def resolve_matricule_fiscal(obj: Provider) -> str:
        return obj.company.matricule_fiscal

    @staticmethod
    def resolve_locations(obj: Provider) -> list[str]:
        return obj.location_list

    @staticmethod
    def resolve_valid_labels(obj: Provider) -> list[str]:
        return sorted(selectors.valid_labels(obj))

    @staticmethod
    def resolve_can_take_orders(obj: Provider) -> bool:
        return selectors.provider_can_take_orders(obj)


class ProviderDetail(ProviderOut):
    attestations: list[AttestationOut]

    @staticmethod
    def resolve_attestations(obj: Provider) -> list:
        return list(obj.attestations.all())


class CatalogueEntry(Schema):
    plan: int
    plan_id: str
    plan_name: str
    service: str
    category: Category
    provider: str
    locations: list[str]
    labels: list[str]
    contract_ocid: str | None
    hourly_price: Decimal | None = Field(None, description="TND per hour, from the contract")
    monthly_estimate: Decimal | None = Field(None, description="730 hours")
    orderable: bool
    reason: str = Field("", description="Why the plan cannot be ordered, if it cannot")
    parameters_schema: dict | None


class CatalogueFilter(Schema):
    q: str = Field("", max_length=100)
    category: Category | None = None
    location: str = Field("", max_length=100)
    label: Label | None = None
    max_price: Decimal | None = Field(None, ge=0, lt=10**9)
    orderable: bool = False


class ApplicationIn(Schema):
    description: str = Field("", max_length=5000)
    locations: str = Field(..., min_length=1, max_length=300)


class AttestationIn(Schema):
    label: Label
    issuer: str = Field(..., min_length=1, max_length=200)
    scope: str = Field(..., min_length=1, max_length=500)
    reference: str = Field(..., min_length=1, max_length=100)
    valid_from: dt.date
    expires_on: dt.date
    document_name: str = Field("", max_length=200)
    document_base64: str | None = Field(None, max_length=14_000_000)


class ReviewIn(Schema):
    accept: bool
    note: str = Field("", max_length=2000)


class CloudReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class BrokerIn(Schema):
    url: str = Field(..., min_length=1, max_length=500)
    username: str = Field(..., min_length=1, max_length=200)
    password: str = Field(..., min_length=1, max_length=500)


class BrokerOut(Schema):
    url: str
    username: str
    catalog_read_at: dt.datetime | None
    catalog_error: str


class OrderIn(Schema):
    plan: int = Field(..., ge=1, le=2**63 - 1)
    purpose: str = Field(..., min_length=1, max_length=500)
    parameters: dict = Field(default_factory=dict)
    administration: str | None = Field(None, max_length=32, description="Default: yours")


class OrderDecisionIn(Schema):
    approve: bool
    note: str = Field("", max_length=2000)


class BindingOut(Schema):
    id: int
    binding_id: str
    name: str
    state: str
    last_error: str
    credentials_shown: bool
    created_at: dt.datetime

    @staticmethod
    def resolve_credentials_shown(obj: Binding) -> bool:
        return obj.credentials_revealed_at is not None


class InstanceOut(Schema):
    id: int
    instance_id: str
    state: str
    operation: str
    plan: str
    hourly_price: Decimal
    attempts: int
    last_error: str
    failure: str
    dashboard_url: str
    activated_at: dt.datetime | None
    ended_at: dt.datetime | None
    bindings: list[BindingOut]

    @staticmethod
    def resolve_plan(obj: Instance) -> str:
        return obj.plan.name

    @staticmethod
    def resolve_hourly_price(obj: Instance) -> Decimal:
        return obj.unit_price

    @staticmethod
    def resolve_bindings(obj: Instance) -> list:
        return list(selectors.bindings_of(obj))


class OrderOut(Schema):
    number: str
    administration: str
    provider: str
    service: str
    plan: str
    hourly_price: Decimal
    monthly_estimate: Decimal
    purpose: str
    status: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    ledger_index: int | None = Field(..., description="The order's entry in the log: empty "
                                     "for about a second after the order, until the "
                                     "sequencer integrates it (promise_url gives it then).")
    promise: str | None = Field(None, description="When the order is placed: the log's "
                                "signed promise (a signed note) to integrate its entry "
                                "within a minute.")
    promise_url: str | None = Field(None, description="What became of the promise: the "
                                    "index it was given, and the receipt's address.")
    instance: InstanceOut | None

    @staticmethod
    def resolve_administration(obj: Order) -> str:
        return obj.administration.code

    @staticmethod
    def resolve_provider(obj: Order) -> str:
        return obj.plan.offering.broker.provider.company.name

    @staticmethod
    def resolve_service(obj: Order) -> str:
        return obj.plan.offering.display_name

    @staticmethod
    def resolve_plan(obj: Order) -> str:
        return obj.plan.name

    @staticmethod
    def resolve_hourly_price(obj: Order) -> Decimal:
        return obj.unit_price

    @staticmethod
    def resolve_promise(obj: Order) -> str | None:
        promise = getattr(obj, "promise", None)  # set on the order just placed
        return promise.signed() if promise else None

    @staticmethod
    def resolve_promise_url(obj: Order, context) -> str | None:
        if obj.ledger_pending is None:
            return None
        return promise_url(context["request"], obj.ledger_pending)

    @staticmethod
    def resolve_instance(obj: Order):
        return Instance.objects.filter(order=obj).first()


class NameIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)


class PlanChangeIn(Schema):
    plan: int = Field(..., ge=1, le=2**63 - 1)


class UsageReportIn(Schema):
    instance_id: str = Field(..., min_length=1, max_length=64)
    period_start: dt.datetime = Field(..., description="The start of the hour, with its zone")
    size_bytes: int | None = Field(None, ge=0, lt=2**62)
    connections: int | None = Field(None, ge=0, lt=2**31)


class UsageOut(Schema):
    instance_id: str
    period_start: dt.datetime
    hours: Decimal
    unit_price: Decimal
    cost: Decimal
    size_bytes: int | None
    connections: int | None

    @staticmethod
    def resolve_instance_id(obj) -> str:
        return obj.instance.instance_id


class BudgetIn(Schema):
    administration: str = Field(..., max_length=32)
    year: int = Field(..., ge=2000, le=2100)
    amount: Decimal = Field(..., gt=0, lt=10**12)
    thresholds: list[int] = Field([50, 80, 100], min_length=1, max_length=10)


class BudgetOut(Schema):
    administration: str
    year: int
    budget: Decimal
    spent: Decimal
    percent: int

    @staticmethod
    def resolve_administration(obj: dict) -> str:
        return obj["administration"].code


class CostLine(Schema):
    key: str
    cost: Decimal


class CostsOut(Schema):
    year: int
    total: Decimal
    by_month: list[CostLine]
    by_provider: list[CostLine]
    by_administration: list[CostLine]
    by_service: list[CostLine]


class SavingsOut(Schema):
    year: int
    cloud: Decimal
    onprem: Decimal
    saved: Decimal
    percent: int


class CostFilter(Schema):
    year: int | None = Field(None, ge=2000, le=2100, description="Default: this year")

    @property
    def the_year(self) -> int:
        return self.year or timezone.localdate().year


# --- public reads -------------------------------------------------------------------------

def _entry(row) -> dict:
    plan = row.plan
    schema = plan.parameters_schema
    return {"plan": plan.pk, "plan_id": plan.plan_id, "plan_name": plan.display_name,
            "service": plan.offering.display_name, "category": plan.offering.category,
            "provider": row.provider.company.name, "locations": row.locations,
            "labels": sorted(row.labels),
            "contract_ocid": row.contract.tender.ocid if row.contract else None,
            "hourly_price": row.price, "monthly_estimate": row.monthly,
            "orderable": row.orderable, "reason": row.reason, "parameters_schema": schema}


@router.get("/cloud/catalogue", response=list[CatalogueEntry], auth=None,
            summary="Every plan of the qualified providers, priced by the framework contracts")
def catalogue(request, filters: Query[CatalogueFilter]):
    rows = selectors.catalogue(q=filters.q, category=filters.category or "",
                               location=filters.location, label=filters.label or "",
                               max_price=filters.max_price, orderable_only=filters.orderable)
    return [_entry(row) for row in rows]


@router.get("/cloud/providers", response=list[ProviderOut], auth=None,
            summary="Cloud providers and their valid labels (public)")
@paginate(Paging)
def providers(request):
    return selectors.providers()


@router.get("/cloud/providers/{provider_id}", response=ProviderDetail, auth=None,
            summary="A provider with its attestations (public)")
def provider(request, provider_id: int = Id):
    return get_object_or_404(selectors.providers(), pk=provider_id)


# --- providers ----------------------------------------------------------------------------

@router.post("/cloud/provider/application", response={201: ProviderOut},
             summary="Apply as a cloud provider (company members)")
def apply(request, payload: ApplicationIn):
    return Status(201, services.apply_as_provider(actor=request.user,
                                                  description=payload.description,
                                                  locations=payload.locations))


def _decode(text: str | None) -> bytes | None:
    return None if text is None else base64_content(text, "document_base64")


@router.post("/cloud/provider/attestations", response={201: AttestationOut},
             summary="Submit a label or certificate (providers)")
def submit_attestation(request, payload: AttestationIn):
    return Status(201, services.submit_attestation(
        actor=request.user, label=payload.label, issuer=payload.issuer, scope=payload.scope,
        reference=payload.reference, valid_from=payload.valid_from,
        expires_on=payload.expires_on, document=_decode(payload.document_base64),
        document_name=payload.document_name))


@router.put("/cloud/provider/broker", response=BrokerOut,
            summary="Register the provider's service broker and read its catalogue")
def register_broker(request, payload: BrokerIn):
    broker = services.register_broker(actor=request.user, url=payload.url,
                                      username=payload.username, password=payload.password)
    return services.refresh_catalog(broker)


@router.post("/cloud/provider/usage", response={201: UsageOut},
             summary="Report what an instance used during one hour (providers)")
def report_usage(request, payload: UsageReportIn):
    return Status(201, metering.report_usage(
        actor=request.user, instance_id=payload.instance_id, period_start=payload.period_start,
        size_bytes=payload.size_bytes, connections=payload.connections))


@router.post("/cloud/attestations/{attestation_id}/review", response=AttestationOut,
             summary="Accept or refuse an attestation (platform administrators)")
def review(request, payload: ReviewIn, attestation_id: int = Id):
    return services.review_attestation(actor=request.user, accept=payload.accept,
                                       note=payload.note,
                                       attestation=get_object_or_404(Attestation,
                                                                     pk=attestation_id))


@router.post("/cloud/attestations/{attestation_id}/revoke", response=AttestationOut,
             summary="Revoke an accepted attestation (platform administrators)")
def revoke(request, payload: CloudReasonIn, attestation_id: int = Id):
    return services.revoke_attestation(actor=request.user, reason=payload.reason,
                                       attestation=get_object_or_404(Attestation,
                                                                     pk=attestation_id))


@router.post("/cloud/providers/{provider_id}/decision", response=ProviderOut,
             summary="Qualify or refuse a provider (platform administrators)")
def decide_provider(request, payload: ReviewIn, provider_id: int = Id):
    return services.decide_provider(actor=request.user, qualify=payload.accept,
                                    note=payload.note,
                                    provider=get_object_or_404(Provider, pk=provider_id))


# --- orders -------------------------------------------------------------------------------

def _order(request, number: str) -> Order:
    order = selectors.orders_visible_to(request.user).filter(number=number).first()
    if order is None:
        raise NotFound(CloudError.NO_ORDER, number=number)
    return order


def _instance(request, number: str) -> Instance:
    order = _order(request, number)
    instance = Instance.objects.filter(order=order).first()
    if instance is None:
        raise NotFound(CloudError.ORDER_WITHOUT_INSTANCE)
    return instance


@router.get("/cloud/orders", response=list[OrderOut], summary="The orders you may see")
@paginate(Paging)
def orders(request):
    return selectors.orders_visible_to(request.user)


@router.post("/cloud/orders", response={201: OrderOut},
             summary="Order a plan (IT officers); approved at once below the threshold")
def place_order(request, payload: OrderIn):
    plan = get_object_or_404(ServicePlan, pk=payload.plan)
    administration = None
    if payload.administration:
        administration = Administration.objects.filter(
            code=payload.administration.upper()).first()
        if administration is None:
            raise NotFound(CoreError.NO_ADMINISTRATION, code=payload.administration)
    return Status(201, services.place_order(actor=request.user, plan=plan,
                                            purpose=payload.purpose,
                                            parameters=payload.parameters,
                                            administration=administration))


@router.get("/cloud/orders/{number}", response=OrderOut, summary="An order and its instance")
def order(request, number: str = Path(..., max_length=30)):
    return _order(request, number)


@router.post("/cloud/orders/{number}/decision", response=OrderOut,
             summary="Approve or refuse an order (the administration's finance role)")
def decide(request, payload: OrderDecisionIn, number: str = Path(..., max_length=30)):
    return services.decide_order(actor=request.user, order=_order(request, number),
                                 approve=payload.approve, note=payload.note)


@router.post("/cloud/orders/{number}/bindings", response={201: BindingOut},
             summary="Ask for credentials for an application")
def bind(request, payload: NameIn, number: str = Path(..., max_length=30)):
    return Status(201, services.request_binding(actor=request.user, name=payload.name,
                                                instance=_instance(request, number)))


def _binding(request, number: str, binding_id: str) -> Binding:
    binding = Binding.objects.filter(instance=_instance(request, number),
                                     binding_id=binding_id).first()
    if binding is None:
        raise NotFound(CloudError.NO_SUCH_CREDENTIALS)
    return binding


@router.post("/cloud/orders/{number}/bindings/{binding_id}/reveal", response=dict,
             summary="The credentials, shown once to the agent who asked for them")
def reveal(request, number: str = Path(..., max_length=30),
           binding_id: str = Path(..., max_length=64)):
    return services.reveal_credentials(actor=request.user,
                                       binding=_binding(request, number, binding_id))


@router.delete("/cloud/orders/{number}/bindings/{binding_id}", response=BindingOut,
               summary="Revoke credentials (the broker deletes the login)")
def unbind(request, number: str = Path(..., max_length=30),
           binding_id: str = Path(..., max_length=64)):
    return services.request_unbind(actor=request.user,
                                   binding=_binding(request, number, binding_id))


@router.post("/cloud/orders/{number}/plan", response=InstanceOut,
             summary="Change to another plan of the same service")
def change_plan(request, payload: PlanChangeIn, number: str = Path(..., max_length=30)):
    return services.request_plan_change(actor=request.user, instance=_instance(request, number),
                                        plan=get_object_or_404(ServicePlan, pk=payload.plan))


@router.post("/cloud/orders/{number}/retry", response=InstanceOut,
             summary="Provision a failed instance again")
def retry(request, number: str = Path(..., max_length=30)):
    return services.retry_provisioning(actor=request.user, instance=_instance(request, number))


@router.delete("/cloud/orders/{number}/instance", response=InstanceOut,
               summary="Delete the instance (its credentials are revoked first)")
def deprovision(request, number: str = Path(..., max_length=30)):
    return services.request_deprovision(actor=request.user,
                                        instance=_instance(request, number))


@router.get("/cloud/orders/{number}/usage", response=list[UsageOut],
            summary="Hourly usage of an order's instance")
@paginate(Paging)
def usage(request, number: str = Path(..., max_length=30)):
    return _instance(request, number).usage.select_related("instance").order_by("-period_start")


# --- money --------------------------------------------------------------------------------

@router.put("/cloud/budgets", response=BudgetOut,
            summary="Set an administration's cloud budget for a year (finance)")
def set_budget(request, payload: BudgetIn):
    administration = Administration.objects.filter(code=payload.administration.upper()).first()
    if administration is None:
        raise NotFound(CoreError.NO_ADMINISTRATION, code=payload.administration)
    budget = services.set_budget(actor=request.user, administration=administration,
                                 year=payload.year, amount=payload.amount,
                                 thresholds=payload.thresholds)
    spent = selectors.spent(administration, budget.year)
    return {"administration": administration, "year": budget.year, "budget": budget.amount,
            "spent": spent, "percent": int(spent * 100 / budget.amount)}


@router.get("/cloud/budgets", response=list[BudgetOut],
            summary="Budgets and their use, for the administrations you may see")
def budgets(request, filters: Query[CostFilter]):
    return selectors.budget_use(filters.the_year, request.user)


def _lines(rows: list[dict], key: str, label=lambda v: str(v)) -> list[dict]:
    return [{"key": label(row[key]), "cost": row["cost"].quantize(Decimal("0.001"))}
            for row in rows]


@router.get("/cloud/costs", response=CostsOut,
            summary="Cloud spending by month, provider, administration and service")
def costs(request, filters: Query[CostFilter]):
    usage = selectors.usage_visible_to(request.user, year=filters.the_year)
    total = usage.aggregate(total=Sum("cost"))["total"] or Decimal(0)
    return {"year": filters.the_year, "total": total.quantize(Decimal("0.001")),
            "by_month": _lines(selectors.monthly_costs(usage), "month",
                               lambda m: f"{m:%Y-%m}"),
            "by_provider": _lines(selectors.cost_by(usage, "provider__company__name"),
                                  "provider__company__name"),
            "by_administration": _lines(selectors.cost_by(usage, "administration__code"),
                                        "administration__code"),
            "by_service": _lines(selectors.cost_by(usage, "instance__plan__offering__name"),
                                 "instance__plan__offering__name")}


@router.get("/cloud/savings", response=SavingsOut,
            summary="Cloud spending against equivalent on-premise hosting (docs/cloud.md)")
def savings(request, filters: Query[CostFilter]):
    result = selectors.savings(selectors.usage_visible_to(request.user, year=filters.the_year))
    return {"year": filters.the_year, **{k: result[k] for k in ("cloud", "onprem", "saved",
                                                            "percent")}}


@router.get("/cloud/focus.csv", summary="Cost and usage in FOCUS 1.2 (CSV, TND)",
            response={200: None})
def focus_export(request, filters: Query[CostFilter]):
    response = StreamingHttpResponse(
        focus.csv_lines(selectors.usage_visible_to(request.user, year=filters.the_year)),
        content_type="text/csv; charset=utf-8")
    attach(response, f"sahab-focus-{filters.the_year}.csv")
    return response
