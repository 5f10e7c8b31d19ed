"""Read-only admin screens for procurement. Bids are deliberately absent: nobody reads a
bid through the admin, before or after the opening (the public pages show opened bids)."""

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP

from sahab.core.admin import ReadOnlyAdmin, ReadOnlyInline
from sahab.procurement.models import (
    Award,
    CallOff,
    Complaint,
    Contract,
    Lot,
    Plan,
    Question,
    Step,
    Tender,
)


class LotInline(ReadOnlyInline):
    model = Lot


@admin.register(Tender)
class TenderAdmin(ReadOnlyAdmin):
    list_display = ["reference", "title", "buyer", "procedure", "state", "suspended",
                    "submission_deadline"]
    list_filter = ["state", "procedure", "suspended"]
    search_fields = ["reference", "title"]
    exclude = SECRET_FIELDS = ["bid_tag", "bid_tag_salt"]
    inlines = [LotInline]

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        """No filter on the secret tag or its salt: ``?bid_tag__startswith=`` would read
        them out a character at a time (Django allows any lookup on a model's own
        fields)."""
        if lookup.split(LOOKUP_SEP)[0] in self.SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(Contract)
class ContractAdmin(ReadOnlyAdmin):
    list_display = ["pk", "tender", "supplier", "value", "status", "start_date", "end_date"]
    list_filter = ["status"]


@admin.register(Award)
class AwardAdmin(ReadOnlyAdmin):
    list_display = ["tender", "lot", "supplier", "value", "status"]
    exclude = ["bid_lot"]


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    list_display = ["tender", "company", "kind", "status", "remedy", "filed_at", "decided_at"]
    list_filter = ["status", "kind"]


@admin.register(Question)
class QuestionAdmin(ReadOnlyAdmin):
    list_display = ["tender", "asked_at", "answered_at"]


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = ["administration", "year", "title"]


@admin.register(CallOff)
class CallOffAdmin(ReadOnlyAdmin):
    list_display = ["contract", "buyer", "value", "ordered_at", "ledger_index"]


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ["tender", "type", "ledger_index", "at"]
    list_filter = ["type"]
