"""The cloud marketplace: qualified providers, their brokers' catalogues, orders of
administrations, the service instances and bindings made through the Open Service Broker
API, hourly usage, budgets and alerts — and the reference broker's own records.

States change only through ``services`` (platform side) and ``broker`` (reference broker
side); every change of the platform side is a ledger entry.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration, Company
from sahab.procurement.models import MONEY, Contract


class Label(models.TextChoices):
    """Attestations a provider can hold; ANCS labels first."""

    G_CLOUD = "g-cloud", _("ANCS G-cloud")
    N_CLOUD = "n-cloud", _("ANCS N-cloud")
    ISO_27001 = "iso-27001", _("ISO/IEC 27001")
    ISO_27017 = "iso-27017", _("ISO/IEC 27017")
    ISO_27018 = "iso-27018", _("ISO/IEC 27018")
    SLA = "sla", _("Service level agreement")


class Category(models.TextChoices):
    DATABASE = "database", _("Database")
    COMPUTE = "compute", _("Compute")
    STORAGE = "storage", _("Storage")
    BACKUP = "backup", _("Backup")
    NETWORK = "network", _("Network")
    OTHER = "other", _("Other")


class Provider(models.Model):
    """A company that applied to sell cloud services to the administrations."""

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        QUALIFIED = "qualified", _("Qualified")
        REFUSED = "refused", _("Refused")

    company = models.OneToOneField(Company, on_delete=models.PROTECT, related_name="cloud_provider")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.APPLIED)
    description = models.TextField(blank=True)
    locations = models.CharField(max_length=300, help_text=_("Data-centre cities, comma-separated"))
    applied_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("cloud provider")
        verbose_name_plural = _("cloud providers")

    def __str__(self) -> str:
        return self.company.name

    @property
    def location_list(self) -> list[str]:
        return [c.strip() for c in self.locations.split(",") if c.strip()]


class Attestation(models.Model):
    """A label or certificate of a provider, with its issuer, scope and validity."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending review")
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Refused")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="attestations")
    label = models.CharField(max_length=20, choices=Label.choices)
    issuer = models.CharField(max_length=200)
    scope = models.CharField(max_length=500)
    reference = models.CharField(max_length=100)
    valid_from = models.DateField()
    expires_on = models.DateField()
    document_name = models.CharField(max_length=200, blank=True)
    document_type = models.CharField(max_length=100, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    document = models.BinaryField(null=True, blank=True)  # the scan or PDF, for reviewers
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    submitted_at = models.DateTimeField(default=timezone.now)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    # the fewest days before expiry of the warnings already mailed (None: none yet), so
    # that each warning goes once however often the timer runs
    expiry_warned_days = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["label", "-expires_on"]

    def __str__(self) -> str:
        return f"{self.get_label_display()} {self.reference}"


class Broker(models.Model):
    """A provider's Open Service Broker endpoint and the credentials sahab uses on it."""

    provider = models.OneToOneField(Provider, on_delete=models.PROTECT, related_name="broker")
    url = models.URLField(max_length=500)
    username = models.CharField(max_length=200)
    password_sealed = models.BinaryField()
    registered_at = models.DateTimeField(default=timezone.now)
    catalog_read_at = models.DateTimeField(null=True, blank=True)
    catalog_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("service broker")
        verbose_name_plural = _("service brokers")

    def __str__(self) -> str:
        return f"broker of {self.provider}"


class Offering(models.Model):
    """A service offering of a broker's catalogue (OSB "service")."""

    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="offerings")
    service_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField()
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    tags = models.JSONField(default=list)
    bindable = models.BooleanField(default=False)
    plan_updateable = models.BooleanField(default=False)
    instances_retrievable = models.BooleanField(default=False)
    bindings_retrievable = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broker", "service_id"],
                                               name="one_offering_per_service_id")]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.metadata.get("displayName") or self.name


# The longest the platform polls one operation of a plan, whatever its catalogue's
# maximum_polling_duration says: the Open Service Broker API sets no bound, and a deletion
# a broker keeps "in progress" would stay billed for ever. A day covers any real
# provisioning, update or deletion.
MAX_POLLING_SECONDS = 24 * 3600


class ServicePlan(models.Model):
    """A plan of an offering, as the broker's catalogue describes it."""

    offering = models.ForeignKey(Offering, on_delete=models.CASCADE, related_name="plans")
    plan_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField()
    bindable = models.BooleanField(default=False)
    free = models.BooleanField(default=False)
    plan_updateable = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict)
    schemas = models.JSONField(default=dict)
    maximum_polling_duration = models.PositiveIntegerField(null=True, blank=True)
    # Whether the broker says the plan can be provisioned now (metadata "available").
    available = models.BooleanField(default=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("service plan")
        verbose_name_plural = _("service plans")
        constraints = [models.UniqueConstraint(fields=["offering", "plan_id"],
                                               name="one_plan_per_plan_id")]

    def __str__(self) -> str:
        return f"{self.offering.name} / {self.name}"

    @property
    def display_name(self) -> str:
        return self.metadata.get("displayName") or self.name

    @property
    def parameters_schema(self) -> dict | None:
        """The JSON schema of an instance's creation parameters, or None when the
        catalogue gives none (or gave one of another type, before catalogues were checked)."""
        step: object = self.schemas
        for key in ("service_instance", "create", "parameters"):
            step = step.get(key) if isinstance(step, dict) else None
        return step if isinstance(step, dict) and step else None


class Budget(models.Model):
    """An administration's cloud budget for a calendar year, with its alert thresholds."""

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="cloud_budgets")
    year = models.PositiveIntegerField()
    amount = models.DecimalField(**MONEY)
    thresholds = models.JSONField(default=list)  # percentages, e.g. [50, 80, 100]
    alerted = models.JSONField(default=list)  # thresholds already alerted this year

    class Meta:
        verbose_name = _("cloud budget")
        verbose_name_plural = _("cloud budgets")
        constraints = [models.UniqueConstraint(fields=["administration", "year"],
                                               name="one_budget_per_year")]

    def __str__(self) -> str:
        return f"{self.administration.code} {self.year}: {self.amount}"


class Order(models.Model):
    """An administration's order of a plan, priced by the provider's framework contract."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")

    number = models.CharField(max_length=30, unique=True)
    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="cloud_orders")
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="cloud_orders")
    plan = models.ForeignKey(ServicePlan, on_delete=models.PROTECT, related_name="orders")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="cloud_orders")
    unit_price = models.DecimalField(**MONEY)  # TND per hour, from the contract
    monthly_estimate = models.DecimalField(**MONEY)
    purpose = models.CharField(max_length=500)
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # as a bid's: the order's entry is written pending (``ledger.enqueue``), and its index
    # comes from the sequencer within a second of the order's commit
    ledger_pending = models.BigIntegerField(null=True, blank=True, unique=True)
    ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("cloud order")
        verbose_name_plural = _("cloud orders")
        ordering = ["-created_at"]
        # the few orders waiting for their ledger index, found by every tick
        indexes = [models.Index(fields=["ledger_pending"], name="cloud_order_unsequenced",
                                condition=models.Q(ledger_index__isnull=True))]

    def __str__(self) -> str:
        return self.number


class Operation(models.TextChoices):
    """What the platform owes the broker next for an instance or a binding."""

    NONE = "", _("None")
    PROVISION = "provision", _("Provision")
    UPDATE = "update", _("Update")
    DEPROVISION = "deprovision", _("Deprovision")
    ORPHAN_MITIGATION = "orphan_mitigation", _("Orphan mitigation")
    BIND = "bind", _("Bind")
    UNBIND = "unbind", _("Unbind")


class InstanceState(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    PROVISIONING = "provisioning", _("Provisioning")
    ACTIVE = "active", _("Active")
    UPDATING = "updating", _("Updating")
    DEPROVISIONING = "deprovisioning", _("Deprovisioning")
    DELETED = "deleted", _("Deleted")
    FAILED = "failed", _("Failed")


class BindingState(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    BINDING = "binding", _("Binding")
    READY = "ready", _("Ready")
    UNBINDING = "unbinding", _("Unbinding")
    DELETED = "deleted", _("Deleted")
    FAILED = "failed", _("Failed")


class BrokerWork(models.Model):
    """Fields shared by instances and bindings: the pending broker call and its retries.

    ``operation`` is what must be sent (or polled, when ``broker_operation`` is set);
    ``next_attempt_at`` is when the worker tries next (back-off after failures);
    ``poll_deadline`` ends the polling of an asynchronous operation.
    """

    operation = models.CharField(max_length=20, choices=Operation.choices, blank=True)
    broker_operation = models.CharField(max_length=10000, blank=True)
    polling = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_deadline = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # After orphan mitigation: provision or bind again (transient failure) or stop.
    then_retry = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+")

    class Meta:
        abstract = True


class Instance(BrokerWork):
    """The service instance an approved order created at the provider's broker."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="instance")
    instance_id = models.CharField(max_length=64, unique=True)  # sahab's id, sent to the broker
    plan = models.ForeignKey(ServicePlan, on_delete=models.PROTECT, related_name="instances")
    target_plan = models.ForeignKey(ServicePlan, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    unit_price = models.DecimalField(**MONEY)
    target_unit_price = models.DecimalField(**MONEY, null=True, blank=True)
    state = models.CharField(max_length=20, choices=InstanceState.choices,
                             default=InstanceState.REQUESTED)
    failure = models.TextField(blank=True)
    dashboard_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    metered_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("service instance")
        verbose_name_plural = _("service instances")

    def __str__(self) -> str:
        return self.instance_id

    @property
    def administration(self) -> Administration:
        return self.order.administration


class Binding(BrokerWork):
    """Credentials of an instance for one application; shown once to the agent."""

    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="bindings")
    binding_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    state = models.CharField(max_length=20, choices=BindingState.choices,
                             default=BindingState.REQUESTED)
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    credentials_sealed = models.BinaryField(null=True, blank=True)
    credentials_revealed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.binding_id


class UsageRecord(models.Model):
    """One hour of one instance: what it cost, and what the provider measured."""

    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="usage")
    administration = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField()
    hours = models.DecimalField(max_digits=8, decimal_places=4, default=1)
    unit_price = models.DecimalField(**MONEY)
    cost = models.DecimalField(max_digits=20, decimal_places=7)  # hours (4) × price (3)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    connections = models.PositiveIntegerField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        constraints = [models.UniqueConstraint(fields=["instance", "period_start"],
                                               name="one_usage_record_per_hour")]
        indexes = [models.Index(fields=["administration", "period_start"]),
                   models.Index(fields=["period_start"])]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.period_start:%Y-%m-%d %H}h"


class Alert(models.Model):
    """A message to an administration's cloud users: budget thresholds, suspended
    providers, plan limits exceeded."""

    class Kind(models.TextChoices):
        BUDGET = "budget", _("Budget")
        PROVIDER = "provider", _("Provider")
        LIMIT = "limit", _("Plan limit")
        OPERATION = "operation", _("Operation")

    administration = models.ForeignKey(Administration, on_delete=models.CASCADE,
                                       related_name="cloud_alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("budget alert")
        verbose_name_plural = _("budget alerts")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.message[:80]


# --- the reference broker (provider side) ------------------------------------------------

class DbaasInstance(models.Model):
    """A PostgreSQL database the reference broker made on the DBaaS cluster."""

    class State(models.TextChoices):
        IN_PROGRESS = "in progress", "in progress"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    instance_id = models.CharField(max_length=200, primary_key=True)
    service_id = models.CharField(max_length=200)
    plan_id = models.CharField(max_length=200)
    target_plan_id = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(default=dict)
    context = models.JSONField(default=dict)
    organization_guid = models.CharField(max_length=200, blank=True)
    space_guid = models.CharField(max_length=200, blank=True)
    database = models.CharField(max_length=63)
    owner_role = models.CharField(max_length=63)
    last_operation = models.CharField(max_length=20)  # provision, update, deprovision
    operation_id = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=State.choices)
    description = models.TextField(blank=True)
    created = models.BooleanField(default=False)  # the database exists on the cluster
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("managed database")
        verbose_name_plural = _("managed databases")

    def __str__(self) -> str:
        return self.database


class DbaasBinding(models.Model):
    """A login role of a reference-broker database, one per binding."""

    binding_id = models.CharField(max_length=200, primary_key=True)
    instance = models.ForeignKey(DbaasInstance, on_delete=models.CASCADE, related_name="bindings")
    service_id = models.CharField(max_length=200)
    plan_id = models.CharField(max_length=200)
    parameters = models.JSONField(default=dict)
    bind_resource = models.JSONField(default=dict)
    role = models.CharField(max_length=63)
    password_sealed = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.role


class BrokerRequest(models.Model):
    """The reference broker's audit trail: who asked what, with which identity headers."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    api_version = models.CharField(max_length=20, blank=True)
    originating_platform = models.CharField(max_length=100, blank=True)
    originating_identity = models.TextField(blank=True)
    request_identity = models.CharField(max_length=100, blank=True)
    instance_id = models.CharField(max_length=200, blank=True, db_index=True)
    binding_id = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("broker request")
        verbose_name_plural = _("broker requests")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"
