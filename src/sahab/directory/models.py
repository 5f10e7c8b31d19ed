"""Who is who: administrations (a tree), their agents and roles, companies, API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Substr
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from sahab.directory.validators import (
    validate_administration_code,
    validate_mail_domain,
    validate_matricule_fiscal,
)


class AdministrationKind(models.TextChoices):
    PRESIDENCY = "presidency", _("Presidency")
    MINISTRY = "ministry", _("Ministry")
    GENERAL_DIRECTORATE = "general_directorate", _("General directorate")
    DIRECTORATE = "directorate", _("Directorate")
    UNIT = "unit", _("Unit")
    AGENCY = "agency", _("Public agency")
    PUBLIC_ENTERPRISE = "public_enterprise", _("Public enterprise")
    MUNICIPALITY = "municipality", _("Municipality")
    INDEPENDENT_BODY = "independent_body", _("Independent body")


K = AdministrationKind
# Which kinds may sit under which: the tree follows the state's organisation chart.
# A public body (agency, enterprise) sits under its supervising ministry or stands alone.
ALLOWED_PARENT_KINDS: dict[str, set[str | None]] = {
    K.PRESIDENCY: {None},
    K.MINISTRY: {None, K.PRESIDENCY},
    K.GENERAL_DIRECTORATE: {K.MINISTRY, K.PRESIDENCY},
    K.DIRECTORATE: {K.MINISTRY, K.PRESIDENCY, K.GENERAL_DIRECTORATE, K.AGENCY,
                    K.PUBLIC_ENTERPRISE, K.MUNICIPALITY, K.INDEPENDENT_BODY},
    K.UNIT: {K.MINISTRY, K.GENERAL_DIRECTORATE, K.DIRECTORATE, K.AGENCY, K.PUBLIC_ENTERPRISE,
             K.MUNICIPALITY, K.INDEPENDENT_BODY, K.PRESIDENCY},
    K.AGENCY: {None, K.MINISTRY, K.PRESIDENCY},
    K.PUBLIC_ENTERPRISE: {None, K.MINISTRY},
    K.MUNICIPALITY: {None},
    K.INDEPENDENT_BODY: {None},
}


class Administration(models.Model):
    """A ministry, one of its directorates or units, or a public body."""

    code = models.CharField(_("code"), max_length=32, unique=True,
                            validators=[validate_administration_code])
    kind = models.CharField(_("kind"), max_length=32, choices=AdministrationKind.choices)
    parent = models.ForeignKey("self", verbose_name=_("parent"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="children")
    # Materialised path of codes ("/MEF/MEF-DGI/"): a subtree is one indexed prefix query.
    path = models.CharField(max_length=1100, db_index=True, editable=False)
    name_fr = models.CharField(_("name (French)"), max_length=300)
    name_ar = models.CharField(_("name (Arabic)"), max_length=300)
    name_en = models.CharField(_("name (English)"), max_length=300, blank=True)
    acronym = models.CharField(_("acronym"), max_length=32, blank=True)
    mail_domain = models.CharField(_("mail domain"), max_length=253, unique=True, null=True,
                                   blank=True, validators=[validate_mail_domain])
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["path"]
        verbose_name = _("administration")
        verbose_name_plural = _("administrations")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The official name in the active language (French when there is no English one)."""
        lang = translation.get_language() or "fr"
        if lang.startswith("ar"):
            return self.name_ar
        if lang.startswith("en") and self.name_en:
            return self.name_en
        return self.name_fr

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def is_within(self, other: Administration) -> bool:
        """True when this administration is ``other`` or one of its descendants."""
        return self.path.startswith(other.path)


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", _("Platform administrator")
    ADMINISTRATION_ADMIN = "administration_admin", _("Administration administrator")
    PROCUREMENT_OFFICER = "procurement_officer", _("Procurement officer")
    EVALUATOR = "evaluator", _("Evaluator")
    FINANCE = "finance", _("Finance")
    IT_OFFICER = "it_officer", _("IT officer")
    AUDITOR = "auditor", _("Auditor")
    MAIL_ADMIN = "mail_admin", _("Mail administrator")
    COMPLAINTS_BODY = "complaints_body", _("Complaints body")


class Agent(models.Model):
    """A civil servant: a user who belongs to exactly one administration."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="agent")
    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="agents", verbose_name=_("administration"))
    title = models.CharField(_("job title"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    # Sealed with the platform's secrets key (``sahab.core.secrets``), base64: a copy of
    # the database alone does not give anyone the second factor.
    totp_secret = models.CharField(max_length=255, blank=True, editable=False)
    totp_enabled = models.BooleanField(_("two-factor sign-in"), default=False)
    totp_last_step = models.BigIntegerField(default=0, editable=False)
    # Wrong codes count per account, not per sign-in: signing in again does not reset them.
    totp_failures = models.PositiveIntegerField(default=0, editable=False)
    totp_locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user__username"]
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.username

    @property
    def role_set(self) -> set[str]:
        return {r.role for r in self.roles.all()}

    def has_role(self, role: str) -> bool:
        return role in self.role_set


class AgentRole(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=32, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "role"], name="unique_agent_role")]

    def __str__(self) -> str:
        return f"{self.agent}: {self.get_role_display()}"


class Company(models.Model):
    """A private company: a bidder in tenders, a cloud provider, or both."""

    name = models.CharField(_("name"), max_length=300)
    legal_form = models.CharField(_("legal form"), max_length=50, blank=True)
    matricule_fiscal = models.CharField(_("matricule fiscal"), max_length=20, unique=True,
                                        validators=[validate_matricule_fiscal])
    address = models.CharField(_("address"), max_length=300, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    website = models.URLField(_("website"), blank=True)
    is_bidder = models.BooleanField(_("bidder"), default=True)
    is_cloud_provider = models.BooleanField(_("cloud provider"), default=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        constraints = [
            # One company per identifiant unique (the matricule's first eight characters):
            # the service refuses a second one, and this holds when two register at once.
            models.UniqueConstraint(
                Substr("matricule_fiscal", 1, 8),
                name="directory_company_identifier_once",
                violation_error_message=_("A company with this matricule fiscal is "
                                          "registered.")),
        ]

    def __str__(self) -> str:
        return self.name


class CompanyMember(models.Model):
    """A person who acts for a company; company admins manage the company's users."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="company_member")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="members")
    is_company_admin = models.BooleanField(_("company administrator"), default=False)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.company})"


class ApiToken(models.Model):
    """A bearer token for a machine client; only its SHA-256 digest is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class PasswordResetMail(models.Model):
    """A password-reset link sent by mail: the per-account limit, and a trace for the
    security officer (the link itself is never stored: it is derived from the account)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"reset link for user {self.user_id} at {self.sent_at:%Y-%m-%d %H:%M}"


class SignIn(models.Model):
    """One web session of a user, as its owner sees it on the account page (ASVS 3.3.4):
    when and from where it began. The session itself lives in the session store; a row
    whose session expired is ignored and pruned."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    session_key = models.CharField(max_length=64, unique=True)
    signed_in_at = models.DateTimeField(default=timezone.now)
    address = models.GenericIPAddressField(null=True, blank=True)
    browser = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-signed_in_at"]

    def __str__(self) -> str:
        return f"session of user {self.user_id} since {self.signed_in_at:%Y-%m-%d %H:%M}"
