"""Where each company, buyer and flag is shown: one place builds the portal's links."""

from __future__ import annotations

from django.urls import reverse


def company_url(matricule_fiscal: str) -> str:
    return reverse("portal:company", args=[matricule_fiscal.replace("/", "")])


def buyer_url(code: str) -> str:
    return reverse("portal:buyer", args=[code])


def flag_url(flag) -> str:
    """The page of what a flag concerns, when sahab knows it."""
    if flag.level == "tender":
        return reverse("procurement:tender", args=[flag.subject]) if flag.subject else ""
    if flag.level == "buyer":
        return buyer_url(flag.subject) if flag.key.startswith("TN-SAHAB-") else ""
    return company_url(flag.subject) if "/" in flag.subject or flag.subject != flag.key else ""
