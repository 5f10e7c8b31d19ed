"""Validation of Tunisian identifiers and of names used across the platform."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Matricule fiscal: 7 digits, a key letter (never I, O or U), the VAT code
# (A, P, B, D, N), the category code (M, P, C, N, E) and a 3-digit secondary
# establishment number, e.g. 1234567A/A/M/000. Written with or without slashes.
_MF = re.compile(
    r"^(?P<id>\d{7})(?P<key>[A-HJ-NP-TV-Z])/?(?P<vat>[APBDN])/?(?P<cat>[MPCNE])/?(?P<est>\d{3})$")
# The short form (identifier and key letter only) appears on many documents.
_MF_SHORT = re.compile(r"^(?P<id>\d{7})(?P<key>[A-HJ-NP-TV-Z])$")


def normalize_matricule_fiscal(value: str) -> str:
    """Return the canonical ``1234567A/A/M/000`` form, or raise ``ValidationError``."""
    compact = re.sub(r"[\s.\-]", "", (value or "").upper())
    if m := _MF.match(compact):
        if m["cat"] == "E" and m["est"] == "000":
            raise ValidationError(
                _("A non-resident establishment (category E) has a secondary number other "
                  "than 000."), code="matricule_fiscal")
        return f"{m['id']}{m['key']}/{m['vat']}/{m['cat']}/{m['est']}"
    if m := _MF_SHORT.match(compact):
        return f"{m['id']}{m['key']}"
    raise ValidationError(
        _("Enter a matricule fiscal such as 1234567A/A/M/000: seven digits, a key letter "
          "(not I, O or U), the VAT code (A, P, B, D or N), the category (M, P, C, N or E) and "
          "a three-digit establishment number."), code="matricule_fiscal")


def validate_matricule_fiscal(value: str) -> None:
    normalize_matricule_fiscal(value)


_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def validate_mail_domain(value: str) -> None:
    if not _DOMAIN.match(value or ""):
        raise ValidationError(_("Enter a mail domain such as finances.gov.tn."),
                              code="mail_domain")


_CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,31}$")


def validate_administration_code(value: str) -> None:
    if not _CODE.match(value or ""):
        raise ValidationError(
            _("A code is 2 to 32 capital letters, digits or hyphens, starting with a letter."),
            code="code")
