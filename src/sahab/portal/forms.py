"""Forms of the public portal: they read the input; ``alerts`` decides."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from sahab.portal.models import Subscription


def followable_kinds() -> list[tuple[str, str]]:
    """What a visitor may follow by mail (sectors are for registered companies)."""
    return [c for c in Subscription.Kind.choices if c[0] != Subscription.Kind.SECTORS]


class FollowForm(forms.Form):
    kind = forms.ChoiceField(label=_("Follow"), choices=followable_kinds)
    value = forms.CharField(label=_("CPV code, buyer code, matricule fiscal or words"),
                            max_length=200)
    # the address is checked by alerts.follow, with the reasons it gives
    email = forms.CharField(label=_("E-mail"), max_length=320)
