"""The ledger's admin screens: entries, checkpoints and cosignatures are shown, never
changed (the database refuses it anyway); witnesses are registered and switched through
the ledger's services, which record it; the status page shows the signer's alarm."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from sahab.core.admin import ReadOnlyAdmin, ServiceAdmin
from sahab.ledger.models import Checkpoint, Cosignature, Entry, Witness, WitnessedLog


class AlarmMixin:
    """Every ledger screen says so when the signer refuses to sign."""

    def changelist_view(self, request, extra_context=None):
        from sahab.ledger import signing

        current = signing.alarm()
        if current and current.get("active"):
            messages.error(request, _("The ledger signer refuses to sign: %(reason)s. See "
                                      "%(url)s.") % {"reason": current["reason"],
                                                     "url": reverse("admin:ledger_status")})
        return super().changelist_view(request, extra_context)


@admin.register(Entry)
class EntryAdmin(AlarmMixin, ReadOnlyAdmin):
    list_display = ["index", "type", "subject", "actor", "at"]
    list_filter = ["type"]
    search_fields = ["subject", "type", "actor"]
    exclude = ["body"]
    readonly_fields = ["index", "type", "subject", "actor", "at", "canonical_body"]

    @admin.display(description="canonical body")
    def canonical_body(self, obj):
        return bytes(obj.body).decode()


@admin.register(Checkpoint)
class CheckpointAdmin(AlarmMixin, ReadOnlyAdmin):
    list_display = ["size", "created_at"]
    exclude = ["root"]

    def get_urls(self):
        return [path("status/", self.admin_site.admin_view(self.status_view),
                     name="ledger_status"), *super().get_urls()]

    def status_view(self, request):
        from sahab.ledger import services

        return TemplateResponse(request, "admin/ledger/status.html", {
            **self.admin_site.each_context(request), "title": _("Ledger status"),
            "status": services.status(), "opts": self.model._meta,
        })


class WitnessForm(forms.ModelForm):
    class Meta:
        model = Witness
        fields = ["name", "vkey", "url", "active"]


@admin.register(Witness)
class WitnessAdmin(AlarmMixin, ServiceAdmin):
    """Platform administrators register witnesses (their URL is one the platform posts
    to) and switch them on or off; each change is a ledger entry."""

    form = WitnessForm
    list_display = ["name", "url", "last_size", "active"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return ["name", "vkey"] if obj else []

    def save_model(self, request, obj, form, change):
        from sahab.ledger import services

        if change:
            services.set_witness(witness=Witness.objects.get(pk=obj.pk), actor=request.user,
                                 active=form.cleaned_data["active"],
                                 url=form.cleaned_data["url"])
        else:
            saved = services.register_witness(name=form.cleaned_data["name"],
                                              vkey=form.cleaned_data["vkey"],
                                              url=form.cleaned_data["url"], actor=request.user)
            if not form.cleaned_data["active"]:
                services.set_witness(witness=saved, actor=request.user, active=False)
            obj.pk = saved.pk


@admin.register(Cosignature)
class CosignatureAdmin(ReadOnlyAdmin):
    list_display = ["checkpoint", "witness", "timestamp"]


@admin.register(WitnessedLog)
class WitnessedLogAdmin(ReadOnlyAdmin):
    list_display = ["origin", "size", "updated_at"]
    exclude = ["root"]
