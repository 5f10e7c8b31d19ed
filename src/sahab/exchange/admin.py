"""Read-only admin screens of the exchange pillar (token digests are never shown)."""

from django.contrib import admin

from sahab.core.admin import ReadOnlyAdmin
from sahab.exchange.models import ClientToken, Grant, Message, Service, Subsystem


@admin.register(Subsystem)
class SubsystemAdmin(ReadOnlyAdmin):
    list_display = ["identifier", "name", "created_at"]
    search_fields = ["code", "name", "administration__code"]


@admin.register(Service)
class ServiceAdmin(ReadOnlyAdmin):
    list_display = ["identifier", "name", "classification", "base_url", "active"]
    list_filter = ["classification", "active"]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ["client", "service", "status", "expires_at", "rate_per_minute"]
    list_filter = ["status"]


@admin.register(ClientToken)
class ClientTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "subsystem", "name", "created_at", "revoked_at"]
    exclude = ["digest"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "x_road_id", "client", "service", "method", "status",
                    "duration_ms", "ledger_index"]
    list_filter = ["status", "method"]
    search_fields = ["x_road_id", "client", "service"]
    date_hierarchy = "started_at"
