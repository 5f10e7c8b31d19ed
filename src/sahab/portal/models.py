"""Alerts: anyone may follow a CPV code, a buyer, a company or a search, by e-mail."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Company


class Subscription(models.Model):
    """One follow, confirmed by a link sent to its address (nobody is subscribed by
    someone else); ``last_index`` is the ledger index up to which it was notified."""

    class Kind(models.TextChoices):
        CPV = "cpv", _("CPV code")
        BUYER = "buyer", _("Buyer")
        COMPANY = "company", _("Company")
        SEARCH = "search", _("Search")
        SECTORS = "sectors", _("A company's sectors")

    email = models.EmailField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=200, blank=True)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="alert_subscriptions")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    last_index = models.BigIntegerField(default=-1)

    class Meta:
        indexes = [models.Index(fields=["email", "kind", "value"])]

    def __str__(self) -> str:
        return f"{self.email}: {self.kind} {self.value}"
