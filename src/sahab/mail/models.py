"""Mail of the administrations: domains (with their DKIM keys), mailboxes, aliases and
distribution lists, delegations of shared mailboxes, the outbound queue, and registered
official letters with their signed receipts.

Message contents live in Maildirs under ``SAHAB_HOME/mail``, never in the database.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration, Agent


def mail_root() -> Path:
    return settings.SAHAB_HOME / "mail"


class MailDomain(models.Model):
    """A mail domain of an administration, with the keys its mail is signed with."""

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="mail_domains")
    name = models.CharField(_("domain"), max_length=253, unique=True)
    active = models.BooleanField(_("active"), default=True)
    dkim_selector = models.CharField(max_length=40)
    dkim_rsa_private = models.BinaryField(editable=False)  # sealed PKCS#8 PEM
    dkim_rsa_public = models.TextField(editable=False)  # base64 SubjectPublicKeyInfo
    dkim_ed25519_private = models.BinaryField(editable=False)  # sealed raw 32-byte seed
    dkim_ed25519_public = models.TextField(editable=False)  # base64 raw 32-byte key
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("mail domain")
        verbose_name_plural = _("mail domains")

    def __str__(self) -> str:
        return self.name

    @property
    def rsa_selector(self) -> str:
        return f"{self.dkim_selector}r"

    @property
    def ed25519_selector(self) -> str:
        return f"{self.dkim_selector}e"


class Mailbox(models.Model):
    """An address with a Maildir: an agent's own, a shared one, or a registry office's."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", _("Personal")
        SHARED = "shared", _("Shared")
        REGISTRY = "registry", _("Registry office (bureau d'ordre)")

    domain = models.ForeignKey(MailDomain, on_delete=models.PROTECT, related_name="mailboxes")
    local_part = models.CharField(_("local part"), max_length=64)
    address = models.CharField(_("address"), max_length=320, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices,
                            default=Kind.PERSONAL)
    agent = models.OneToOneField(Agent, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="mailbox")
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    quota_bytes = models.BigIntegerField(_("quota (bytes)"))
    used_bytes = models.BigIntegerField(default=0, editable=False)
    # Dovecot and the submission server check the same digest: {ARGON2ID}$argon2id$...
    password_digest = models.CharField(max_length=200, blank=True, editable=False)
    password_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["address"]
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")

    def __str__(self) -> str:
        return self.address

    @property
    def home(self) -> Path:
        return mail_root() / self.domain.name / self.local_part

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


class Alias(models.Model):
    """An address that delivers to others: an alias (one target) or a distribution list."""

    domain = models.ForeignKey(MailDomain, on_delete=models.PROTECT, related_name="aliases")
    address = models.CharField(_("address"), max_length=320, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    is_list = models.BooleanField(_("distribution list"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["address"]
        verbose_name = _("alias")
        verbose_name_plural = _("aliases")

    def __str__(self) -> str:
        return self.address


class AliasMember(models.Model):
    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, related_name="members")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alias", "mailbox"],
                                               name="unique_alias_member")]

    def __str__(self) -> str:
        return f"{self.alias_id} → {self.mailbox_id}"


class Delegation(models.Model):
    """An agent's rights on a shared or registry mailbox: read it, and send as it."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="delegations")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="mail_delegations")
    can_send = models.BooleanField(_("may send as"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "agent"],
                                               name="one_delegation_per_agent")]

    def __str__(self) -> str:
        return f"{self.mailbox} → {self.agent}"


class RoutingVersion(models.Model):
    """One row bumped by every change of domains, mailboxes, aliases, passwords and
    delegations: the SMTP server reloads its routing table when it moves."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.version)


class OutboundMessage(models.Model):
    """Mail for a domain hosted elsewhere, spooled durably until the smart host takes it."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        BOUNCED = "bounced", _("Returned to the sender")

    sender = models.CharField(max_length=320)
    recipient = models.CharField(max_length=320)
    spool_name = models.CharField(max_length=100)
    size = models.IntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.sender} → {self.recipient} ({self.state})"


class Classification(models.TextChoices):
    """Subject classification of official correspondence (the registry's filing plan)."""

    GENERAL = "general", _("General correspondence")
    BUDGET = "budget", _("Budget and finance")
    PROCUREMENT = "procurement", _("Public procurement")
    STAFF = "staff", _("Human resources")
    LEGAL = "legal", _("Legal affairs and litigation")
    IT = "it", _("Information systems")
    COOPERATION = "cooperation", _("International cooperation")


class Letter(models.Model):
    """A registered official letter from an agent to another administration's registry."""

    class State(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        NOT_DELIVERED = "not_delivered", _("Not delivered")

    reference = models.CharField(_("reference"), max_length=60)
    classification = models.CharField(_("classification"), max_length=20,
                                      choices=Classification.choices)
    subject = models.CharField(_("subject"), max_length=300)
    sender = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="letters_sent")
    sent_by = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="letters_sent")
    recipient = models.ForeignKey(Mailbox, on_delete=models.PROTECT,
                                  related_name="letters_received")
    message_id = models.CharField(max_length=300, unique=True)
    message_sha256 = models.CharField(max_length=64)
    spool_name = models.CharField(max_length=100, editable=False)
    delivered_file = models.CharField(max_length=200, blank=True, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACCEPTED)
    created_at = models.DateTimeField(default=timezone.now)
    deliver_by = models.DateTimeField()
    attempts = models.IntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("registered letter")
        verbose_name_plural = _("registered letters")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["sender", "reference"],
                                               name="one_reference_per_sender")]

    def __str__(self) -> str:
        return self.reference

    @property
    def subject_uri(self) -> str:
        return f"mail:letter:{self.pk}"


class Receipt(models.Model):
    """A signed, timestamped proof about a letter (acceptance, delivery, …)."""

    class Kind(models.TextChoices):
        ACCEPTANCE = "acceptance", _("Acceptance")
        DELIVERY = "delivery", _("Delivery")
        NON_DELIVERY = "non_delivery", _("Non-delivery")
        OPENING = "opening", _("Opening")

    letter = models.ForeignKey(Letter, on_delete=models.PROTECT, related_name="receipts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    document = models.TextField()  # the signed note, verifiable offline
    # as a bid's: the receipt's entry is written pending (``ledger.enqueue``), and its
    # index comes from the worker's sequencer within a second of the receipt's commit
    ledger_pending = models.BigIntegerField(null=True, blank=True, unique=True)
    ledger_index = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["letter", "kind"],
                                               name="one_receipt_of_each_kind")]
        # the few receipts waiting for their ledger index, found by every tick
        indexes = [models.Index(fields=["ledger_pending"], name="mail_receipt_unsequenced",
                                condition=models.Q(ledger_index__isnull=True))]

    def __str__(self) -> str:
        return f"{self.letter}: {self.kind}"


class AuthFailure(models.Model):
    """Wrong mail passwords in the current window, per client address and per login.

    Shared by every SMTP process, front end and Dovecot (through its auth policy), so an
    attacker gains nothing by opening more connections or spreading over the ports.
    """

    key = models.CharField(max_length=400, unique=True)  # "client:<ip>" or "login:<address>"
    count = models.IntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class NoticeKind(models.TextChoices):
    """What the platform mails people about; each person may turn any of them off. Mail
    that protects the account (password resets) and registered letters always go."""

    APPROVALS = "approvals", _("Orders to approve, and decisions on my orders")
    SERVICES = "services", _("My cloud services ready or failed")
    LABELS = "labels", _("Provider labels expiring or expired")
    COMPLAINTS = "complaints", _("Complaints to rule on, and rulings on complaints")
    TENDERS = "tenders", _("Changes to tenders I bid on or buy through")


class NoticePreference(models.Model):
    """The notices a person chose not to receive (none: every notice)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notice_preference")
    muted = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.user}: {', '.join(self.muted) or 'every notice'}"
