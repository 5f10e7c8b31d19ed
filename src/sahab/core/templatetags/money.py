"""Amounts of money on pages: ``{{ amount|tnd }}`` (a built-in filter, no ``load``)."""

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext

register = template.Library()


@register.filter
def tnd(value) -> str:
    """An amount in Tunisian dinars as people read it in the page's language: three
    decimals (millimes), the language's separators (thousands grouped), and one name of
    the currency per language (TND, د.ت), kept with its number on one line."""
    if value is None or value == "":
        return ""
    return f"{floatformat(value, '3g')}\u00a0{currency()}"


def currency() -> str:
    """The currency's short name in the active language."""
    return gettext("TND")
