"""Admin building blocks shared by the pillars, and the rule they keep: no write around
the services.

Every registered admin screen either only reads (``ReadOnlyAdmin``) or saves through the
same service functions as the web pages and the API (``ServiceAdmin``), so that every
change is checked and recorded in the ledger. Django's stock user and group screens are
not exposed (accounts change in the directory); the login-throttling records are shown,
not edited.
"""

from django.contrib import admin, messages
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from sahab.core.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never changed here: these rows change only through the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows related rows without letting anybody edit them."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceAdmin(admin.ModelAdmin):
    """An admin whose ``save_model`` calls the pillar's services (which check rights and
    append the ledger entry); a refusal shows as an error and nothing is saved.

    Rows are never deleted here: services end things (revoke, disable) instead.
    """

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as exc:
            # raised from save_model inside the admin's transaction: it was rolled back
            detail = getattr(exc, "detail", None) or " ".join(getattr(exc, "messages", [str(exc)]))
            self.message_user(request, detail, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


def _read_only_axes() -> None:
    """django-axes' screens, read-only: deleting a record would erase a security trail."""
    from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model, base in ((AccessAttempt, AccessAttemptAdmin), (AccessLog, AccessLogAdmin),
                        (AccessFailureLog, AccessFailureLogAdmin)):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
        admin.site.register(model, type(f"ReadOnly{base.__name__}", (ReadOnlyAdmin, base),
                                        {"actions": None}))


_read_only_axes()
