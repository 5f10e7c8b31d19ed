"""Django admin screens, for platform administrators (staff) only."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from sahab.core.admin import ReadOnlyInline
from sahab.directory.models import (
    Administration,
    Agent,
    AgentRole,
    ApiToken,
    Company,
    CompanyMember,
)


class AdministrationAdminForm(forms.ModelForm):
    class Meta:
        model = Administration
        fields = ["code", "kind", "parent", "name_fr", "name_ar", "name_en", "acronym",
                  "mail_domain", "active"]

    def clean(self):
        """Refuse a kind/parent mismatch or a cycle on the form, before anything is saved."""
        from sahab.core.errors import DomainError
        from sahab.directory import services

        data = super().clean()
        parent, kind = data.get("parent"), data.get("kind") or getattr(self.instance, "kind", "")
        try:
            services.check_parent(kind, parent)
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from exc
        if parent and self.instance.pk and parent.is_within(self.instance):
            raise forms.ValidationError(_("An administration cannot be moved under itself."))
        return data


@admin.register(Administration)
class AdministrationAdmin(admin.ModelAdmin):
    form = AdministrationAdminForm
    list_display = ["code", "name_fr", "name_ar", "kind", "mail_domain", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name_fr", "name_ar", "name_en", "acronym", "mail_domain"]
    readonly_fields = ["path", "created_at"]
    autocomplete_fields = ["parent"]

    def get_readonly_fields(self, request, obj=None):
        # The code names the administration in paths, mail and ledger entries: fixed once made.
        return [*self.readonly_fields, "code"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Go through the services, so the tree's paths and the rules stay right."""
        from django.core.exceptions import ValidationError

        from sahab.core.errors import DomainError
        from sahab.directory import services

        fields = {f: form.cleaned_data[f] for f in
                  ("name_fr", "name_ar", "name_en", "acronym", "mail_domain")}
        try:
            if change:
                saved = services.update_administration(
                    actor=request.user, administration=obj, parent=form.cleaned_data["parent"],
                    active=form.cleaned_data["active"], **fields)
            else:
                saved = services.create_administration(
                    actor=request.user, code=obj.code, kind=obj.kind,
                    parent=form.cleaned_data["parent"], **fields)
        except DomainError as exc:
            raise ValidationError(exc.detail) from exc
        obj.pk, obj.path = saved.pk, saved.path


class AgentRoleInline(ReadOnlyInline):
    """Shown, not edited here: roles change through the directory screens (rights checked)."""

    model = AgentRole


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["user", "administration", "title", "totp_enabled"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    list_filter = ["roles__role", "totp_enabled"]
    autocomplete_fields = ["administration"]
    readonly_fields = ["user"]
    inlines = [AgentRoleInline]


class CompanyMemberInline(admin.TabularInline):
    model = CompanyMember
    extra = 0
    readonly_fields = ["user"]


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "matricule_fiscal", "city", "is_bidder", "is_cloud_provider", "active"]
    list_filter = ["is_bidder", "is_cloud_provider", "active"]
    search_fields = ["name", "matricule_fiscal"]
    inlines = [CompanyMemberInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at",
                    "revoked_at"]
    readonly_fields = ["user", "prefix", "digest", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "user__username", "prefix"]

    def has_add_permission(self, request):
        return False  # tokens are issued by the service, which shows the clear token once
