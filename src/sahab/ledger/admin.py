"""Read-only admin screens: the ledger is changed only by appends and its background jobs.

Witnesses are registered with ``sahab ledger witness add`` (which records it in the ledger).
"""

from django.contrib import admin

from sahab.core.admin import ReadOnlyAdmin
from sahab.ledger.models import Checkpoint, Cosignature, Entry, Witness, WitnessedLog


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["index", "type", "subject", "actor", "at"]
    list_filter = ["type"]
    search_fields = ["subject", "type", "actor"]
    exclude = ["body"]
    readonly_fields = ["index", "type", "subject", "actor", "at", "canonical_body"]

    @admin.display(description="canonical body")
    def canonical_body(self, obj):
        return bytes(obj.body).decode()


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["size", "created_at"]
    exclude = ["root"]


@admin.register(Witness)
class WitnessAdmin(ReadOnlyAdmin):
    list_display = ["name", "url", "last_size", "active"]


@admin.register(Cosignature)
class CosignatureAdmin(ReadOnlyAdmin):
    list_display = ["checkpoint", "witness", "timestamp"]


@admin.register(WitnessedLog)
class WitnessedLogAdmin(ReadOnlyAdmin):
    list_display = ["origin", "size", "updated_at"]
    exclude = ["root"]
