"""Django admin screens, for platform administrators (staff) only.

Every change goes through the directory's services, exactly as on the directory's own
pages: rights are checked and the change is recorded in the ledger. What no service
changes is shown read-only; nothing is deleted here.
"""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from sahab.core.admin import ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from sahab.directory.models import (
    Administration,
    Agent,
    AgentRole,
    ApiToken,
    Company,
    CompanyMember,
    Role,
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
class AdministrationAdmin(ServiceAdmin):
    form = AdministrationAdminForm
    list_display = ["code", "name_fr", "name_ar", "kind", "mail_domain", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name_fr", "name_ar", "name_en", "acronym", "mail_domain"]
    readonly_fields = ["path", "created_at"]
    autocomplete_fields = ["parent"]

    def get_readonly_fields(self, request, obj=None):
        # The code names the administration in paths, mail and ledger entries: fixed once made.
        return [*self.readonly_fields, "code", "kind"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Go through the services, so the tree's paths and the rules stay right."""
        from sahab.directory import services

        fields = {f: form.cleaned_data[f] for f in
                  ("name_fr", "name_ar", "name_en", "acronym", "mail_domain")}
        if change:
            saved = services.update_administration(
                actor=request.user, administration=obj, parent=form.cleaned_data["parent"],
                active=form.cleaned_data["active"], **fields)
        else:
            saved = services.create_administration(
                actor=request.user, code=obj.code, kind=obj.kind,
                parent=form.cleaned_data["parent"], **fields)
        obj.pk, obj.path = saved.pk, saved.path


class AgentRoleInline(ReadOnlyInline):
    """Shown, not edited here: roles are set with the form's roles field (via the service)."""

    model = AgentRole


class AgentAdminForm(forms.ModelForm):
    """Where an agent works, what they may do, whether they may sign in: each changed
    through its own service."""

    roles = forms.MultipleChoiceField(label=_("roles"), choices=Role.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple)
    active = forms.BooleanField(label=_("may sign in"), required=False)

    class Meta:
        model = Agent
        fields = ["administration"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = sorted(self.instance.role_set)
            self.fields["active"].initial = self.instance.user.is_active


@admin.register(Agent)
class AgentAdmin(ServiceAdmin):
    form = AgentAdminForm
    list_display = ["user", "administration", "title", "totp_enabled"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    list_filter = ["roles__role", "totp_enabled"]
    autocomplete_fields = ["administration"]
    readonly_fields = ["user", "title", "phone", "totp_enabled"]
    inlines = [AgentRoleInline]

    def has_add_permission(self, request):
        return False  # agents are created in the directory, which shows their password once

    def save_model(self, request, obj, form, change):
        from sahab.directory import services

        agent = Agent.objects.select_related("user", "administration").get(pk=obj.pk)
        data = form.cleaned_data
        if data["administration"].pk != agent.administration_id:
            agent = services.move_agent(actor=request.user, agent=agent,
                                        administration=data["administration"])
        if set(data["roles"]) != agent.role_set:
            agent = services.set_agent_roles(actor=request.user, agent=agent,
                                             roles=data["roles"])
        if data["active"] != agent.user.is_active:
            services.set_agent_active(actor=request.user, agent=agent, active=data["active"])


class CompanyMemberInline(ReadOnlyInline):
    model = CompanyMember


@admin.register(Company)
class CompanyAdmin(ServiceAdmin):
    list_display = ["name", "matricule_fiscal", "city", "is_bidder", "is_cloud_provider", "active"]
    list_filter = ["is_bidder", "is_cloud_provider", "active"]
    search_fields = ["name", "matricule_fiscal"]
    fields = ["name", "legal_form", "matricule_fiscal", "address", "city", "postal_code",
              "email", "phone", "website", "is_bidder", "is_cloud_provider", "active"]
    inlines = [CompanyMemberInline]

    def has_add_permission(self, request):
        return False  # companies register themselves, with their first user

    def save_model(self, request, obj, form, change):
        from sahab.directory import services

        stored = Company.objects.get(pk=obj.pk)
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in self.fields}
        if changes:
            services.update_company(actor=request.user, company=stored, **changes)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at",
                    "revoked_at"]
    exclude = ["digest"]
    search_fields = ["name", "user__username", "prefix"]
    actions = ["revoke"]

    def has_revoke_permission(self, request):
        return request.user.is_superuser

    @admin.action(description=_("Revoke the selected tokens"), permissions=["revoke"])
    def revoke(self, request, queryset):
        from sahab.core.errors import DomainError
        from sahab.directory import services

        for token in queryset:
            try:
                services.revoke_api_token(actor=request.user, token_id=token.pk)
            except DomainError as exc:
                self.message_user(request, exc.detail, level="error")
