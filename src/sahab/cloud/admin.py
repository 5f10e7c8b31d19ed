"""Read-only admin screens of the cloud marketplace. Sealed secrets (broker passwords,
binding credentials, reference-broker passwords) are never shown."""

from django.contrib import admin
from django.db import models

from sahab.cloud.models import (
    Alert,
    Attestation,
    Binding,
    Broker,
    BrokerRequest,
    Budget,
    DbaasBinding,
    DbaasInstance,
    Instance,
    Order,
    Provider,
    ServicePlan,
    UsageRecord,
)
from sahab.core.admin import ReadOnlyAdmin, ReadOnlyInline

HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


class AttestationInline(ReadOnlyInline):
    model = Attestation


@admin.register(Provider)
class ProviderAdmin(ReadOnlyAdmin):
    list_display = ["company", "status", "locations", "applied_at"]
    list_filter = ["status"]
    inlines = [AttestationInline]


@admin.register(Broker)
class BrokerAdmin(ReadOnlyAdmin):
    list_display = ["provider", "url", "catalog_read_at", "catalog_error"]
    exclude = ["password_sealed"]
    formfield_overrides = HTTPS_URLS


@admin.register(ServicePlan)
class ServicePlanAdmin(ReadOnlyAdmin):
    list_display = ["name", "offering", "plan_id", "available", "active"]
    list_filter = ["available", "active"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["number", "administration", "plan", "unit_price", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["number", "purpose"]


class BindingInline(ReadOnlyInline):
    model = Binding
    exclude = ["credentials_sealed"]


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = ["instance_id", "order", "state", "operation", "attempts", "next_attempt_at",
                    "last_error"]
    list_filter = ["state", "operation"]
    search_fields = ["instance_id", "order__number"]
    inlines = [BindingInline]
    formfield_overrides = HTTPS_URLS


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ["instance", "period_start", "hours", "cost", "size_bytes", "connections"]
    date_hierarchy = "period_start"


@admin.register(Budget)
class BudgetAdmin(ReadOnlyAdmin):
    list_display = ["administration", "year", "amount", "thresholds", "alerted"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["administration", "kind", "created_at", "message"]
    list_filter = ["kind"]


class DbaasBindingInline(ReadOnlyInline):
    model = DbaasBinding
    exclude = ["password_sealed"]


@admin.register(DbaasInstance)
class DbaasInstanceAdmin(ReadOnlyAdmin):
    list_display = ["instance_id", "database", "plan_id", "last_operation", "state", "created"]
    list_filter = ["state", "last_operation"]
    inlines = [DbaasBindingInline]


@admin.register(BrokerRequest)
class BrokerRequestAdmin(ReadOnlyAdmin):
    list_display = ["at", "method", "path", "status", "api_version", "originating_platform",
                    "request_identity"]
    list_filter = ["method", "status"]
