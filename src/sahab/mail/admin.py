"""Read-only admin screens of the mail pillar (keys and password digests never shown);
changes go through the mail administration page, whose services record them."""

from django.contrib import admin

from sahab.core.admin import ReadOnlyAdmin
from sahab.mail.models import Alias, Letter, Mailbox, MailDomain, OutboundMessage, Receipt


@admin.register(MailDomain)
class MailDomainAdmin(ReadOnlyAdmin):
    list_display = ["name", "administration", "dkim_selector", "active"]
    search_fields = ["name", "administration__code"]
    exclude = ["dkim_rsa_private", "dkim_ed25519_private"]


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):
    list_display = ["address", "kind", "quota_bytes", "used_bytes", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["address", "display_name"]
    exclude = ["password_digest"]


@admin.register(Alias)
class AliasAdmin(ReadOnlyAdmin):
    list_display = ["address", "is_list", "description"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "sender", "recipient", "state", "attempts", "last_error"]
    list_filter = ["state"]


@admin.register(Letter)
class LetterAdmin(ReadOnlyAdmin):
    list_display = ["reference", "sender", "recipient", "state", "created_at"]
    list_filter = ["state", "classification"]
    exclude = ["subject"]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ["letter", "kind", "at", "ledger_index"]
