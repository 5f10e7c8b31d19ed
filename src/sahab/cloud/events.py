"""The cloud marketplace's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class CloudEvent(LedgerEvent):
    """The cloud marketplace's entries: providers, labels, brokers, catalogues, orders,
    instances, bindings, usage and budgets."""

    ATTESTATION_ACCEPTED = (
        "cloud.attestation.accepted",
        "A platform administrator accepted a provider's label (e.g. ANCS G-cloud).",
        ("attestation", "label"),
        _("Provider label accepted"),
    )
    ATTESTATION_EXPIRED = (
        "cloud.attestation.expired",
        "A provider's label reached its expiry date.",
        ("attestation", "expired_on", "label"),
        _("Provider label expired"),
    )
    ATTESTATION_EXPIRY_WARNED = (
        "cloud.attestation.expiry_warned",
        "A provider was told that a label expires soon, and, when losing it would suspend "
        "the provider, so were its customers with live services.",
        ("attestation", "customers_told", "days_left", "expires_on", "label"),
        _("Provider warned of a label expiring"),
    )
    ATTESTATION_REFUSED = (
        "cloud.attestation.refused",
        "A platform administrator refused a provider's label.",
        ("attestation", "label"),
        _("Provider label refused"),
    )
    ATTESTATION_REVOKED = (
        "cloud.attestation.revoked",
        "A provider's label was revoked.",
        ("attestation", "label"),
        _("Provider label revoked"),
    )
    ATTESTATION_SUBMITTED = (
        "cloud.attestation.submitted",
        "A provider submitted a label with its document's hash and expiry.",
        ("attestation", "document_sha256", "expires_on", "issuer", "label", "reference"),
        _("Provider label submitted"),
    )
    BINDING_CREDENTIALS_SHOWN = (
        "cloud.binding.credentials_shown",
        "The credentials of a binding were shown to an agent.",
        ("binding",),
        _("Binding credentials shown"),
    )
    BINDING_DELETED = (
        "cloud.binding.deleted",
        "The broker deleted a binding.",
        ("binding",),
        _("Binding deleted"),
    )
    BINDING_FAILED = (
        "cloud.binding.failed",
        "The broker failed to create a binding, with the reason.",
        ("binding", "reason"),
        _("Binding failed"),
    )
    BINDING_ORPHAN_MITIGATION = (
        "cloud.binding.orphan_mitigation",
        "A binding whose creation failed is being removed at the broker (orphan mitigation).",
        ("binding", "reason"),
        _("Failed binding being removed"),
    )
    BINDING_ORPHAN_REMOVED = (
        "cloud.binding.orphan_removed",
        "A binding left by a failed creation was removed at the broker.",
        ("binding",),
        _("Failed binding removed"),
    )
    BINDING_READY = (
        "cloud.binding.ready",
        "The broker created a binding.",
        ("binding",),
        _("Binding created"),
    )
    BINDING_REQUESTED = (
        "cloud.binding.requested",
        "An agent asked for a binding (credentials) to an instance.",
        ("binding",),
        _("Binding requested"),
    )
    BINDING_UNBIND_REQUESTED = (
        "cloud.binding.unbind_requested",
        "An agent asked to delete a binding.",
        ("binding",),
        _("Binding deletion requested"),
    )
    BROKER_REGISTERED = (
        "cloud.broker.registered",
        "A qualified provider registered its service broker's URL.",
        ("url",),
        _("Service broker registered"),
    )
    BUDGET_SET = (
        "cloud.budget.set",
        "An administration's cloud budget for a year, with its alert thresholds.",
        ("administration", "amount", "thresholds", "year"),
        _("Cloud budget set"),
    )
    BUDGET_THRESHOLD = (
        "cloud.budget.threshold",
        "An administration's cloud spending crossed an alert threshold.",
        ("spent", "threshold"),
        _("Budget alert threshold crossed"),
    )
    CATALOG_READ = (
        "cloud.catalog.read",
        "The platform read a broker's catalogue (services and plans offered).",
        ("plans", "services"),
        _("Provider catalogue read"),
    )
    INSTANCE_ACTIVE = (
        "cloud.instance.active",
        "The broker provisioned an instance; it is active.",
        ("instance", "plan"),
        _("Instance provisioned"),
    )
    INSTANCE_DELETED = (
        "cloud.instance.deleted",
        "The broker deprovisioned an instance.",
        ("instance",),
        _("Instance deleted"),
    )
    INSTANCE_DEPROVISION_FAILED = (
        "cloud.instance.deprovision_failed",
        "Deprovisioning failed; the instance stays active, with the reason.",
        ("instance", "reason"),
        _("Instance deletion failed"),
    )
    INSTANCE_DEPROVISION_REQUESTED = (
        "cloud.instance.deprovision_requested",
        "An agent asked to delete an instance.",
        ("instance",),
        _("Instance deletion requested"),
    )
    INSTANCE_FAILED = (
        "cloud.instance.failed",
        "Provisioning failed, with the reason.",
        ("instance", "reason"),
        _("Provisioning failed"),
    )
    INSTANCE_ORPHAN_MITIGATION = (
        "cloud.instance.orphan_mitigation",
        "An instance whose provisioning failed is being removed at the broker (orphan mitigation).",
        ("instance", "reason"),
        _("Failed instance being removed"),
    )
    INSTANCE_ORPHAN_REMOVED = (
        "cloud.instance.orphan_removed",
        "An instance left by a failed provisioning was removed at the broker.",
        ("instance",),
        _("Failed instance removed"),
    )
    INSTANCE_REQUESTED = (
        "cloud.instance.requested",
        "The platform asked the broker to provision an approved order.",
        ("instance", "plan"),
        _("Provisioning requested"),
    )
    INSTANCE_RETRY_REQUESTED = (
        "cloud.instance.retry_requested",
        "An agent asked to retry a failed provisioning.",
        ("instance",),
        _("Provisioning retry requested"),
    )
    INSTANCE_UPDATE_FAILED = (
        "cloud.instance.update_failed",
        "A change of plan failed; the instance stays as it was, with the reason.",
        ("instance", "reason"),
        _("Plan change failed"),
    )
    INSTANCE_UPDATE_REQUESTED = (
        "cloud.instance.update_requested",
        "An agent asked to change an instance's plan, at the new unit price.",
        ("plan", "unit_price"),
        _("Plan change requested"),
    )
    INSTANCE_UPDATED = (
        "cloud.instance.updated",
        "The broker changed an instance's plan.",
        ("from_plan", "instance", "plan", "unit_price"),
        _("Plan changed"),
    )
    ORDER_APPROVED = (
        "cloud.order.approved",
        "A finance officer approved an order above the approval threshold (the hash of the note).",
        ("note_sha256",),
        _("Cloud order approved"),
    )
    ORDER_PLACED = (
        "cloud.order.placed",
        "An administration ordered a plan under a framework contract, with its price and estimate.",
        (
            "administration",
            "contract",
            "monthly_estimate",
            "needs_approval",
            "plan",
            "provider",
            "service",
            "unit_price",
        ),
        _("Cloud order placed"),
    )
    ORDER_REFUSED = (
        "cloud.order.refused",
        "A finance officer refused an order (the hash of the note).",
        ("note_sha256",),
        _("Cloud order refused"),
    )
    PROVIDER_APPLIED = (
        "cloud.provider.applied",
        "A company applied as a cloud provider, with its data locations.",
        ("company", "locations"),
        _("Provider application filed"),
    )
    PROVIDER_QUALIFIED = (
        "cloud.provider.qualified",
        "A platform administrator qualified a cloud provider.",
        ("company",),
        _("Cloud provider qualified"),
    )
    PROVIDER_REFUSED = (
        "cloud.provider.refused",
        "A platform administrator refused a cloud provider.",
        ("company",),
        _("Cloud provider refused"),
    )
    USAGE_METERED = (
        "cloud.usage.metered",
        "An hourly metering run: records written, instances and their cost, until when.",
        ("cost", "instances", "records", "until"),
        _("Usage metered"),
    )
    USAGE_REPORTED = (
        "cloud.usage.reported",
        "A broker reported an instance's usage (size, connections) for a period; with "
        "the hours and cost of the hour's record when the report made it (metering had not "
        "reached that hour).",
        ("connections", "cost", "hours", "instance", "period_start", "size_bytes"),
        _("Usage reported"),
    )
