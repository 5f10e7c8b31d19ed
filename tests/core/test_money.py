"""Amounts read the same way everywhere on a page: "2462.103 TND" and "2462,103 TND" on
one page, and "TND", "دينار" and "د.ت" mixed in Arabic, were what the walk found. Now
every amount goes through one filter, and each language names the currency once."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import engines
from django.utils import translation

from sahab.core.templatetags.money import tnd

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "sahab"


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "2\u00a0462,103\u00a0TND"),
    ("en", "2,462.103\u00a0TND"),
])
def test_an_amount_has_three_decimals_grouped_thousands_and_the_currency(language, expected):
    with translation.override(language):
        assert tnd(Decimal("2462.103")) == expected


def test_an_arabic_amount_names_the_dinar_the_tunisian_way():
    with translation.override("ar"):
        shown = tnd(Decimal("2462.103"))
    assert shown.endswith("\u00a0د.ت") and "TND" not in shown
    assert re.sub(r"\D", "", shown) == "2462103"  # every digit, grouped


def test_nothing_is_shown_for_no_amount():
    assert tnd(None) == "" and tnd("") == ""


def test_the_filter_needs_no_load_in_templates():
    template = engines["django"].from_string("{{ amount|tnd }}")
    with translation.override("fr"):
        assert template.render({"amount": Decimal("5")}) == "5,000\u00a0TND"


def test_no_template_writes_the_currency_beside_a_number_by_hand():
    """Outside translated sentences (whose catalogues name the currency per language),
    a number followed by "TND" in a template would bypass the filter."""
    offenders = []
    for path in TEMPLATES.rglob("templates/**/*.html"):
        text = re.sub(r"{% blocktranslate.*?{% endblocktranslate %}", "", path.read_text(),
                      flags=re.S)
        if re.search(r"}}\s*TND", text):
            offenders.append(str(path.relative_to(TEMPLATES)))
    assert offenders == []


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_each_language_names_the_currency_one_way_in_its_catalogue(language):
    from django.utils.translation import trans_real

    catalog = trans_real.translation(language)._catalog
    names = {"fr": {"TND"}, "ar": {"د.ت"}}[language]
    others = {"fr": ["DT", "دينار"], "ar": ["TND", "دينار", "DT"]}[language]
    for msgid, msgstr in catalog.items():
        if isinstance(msgid, str) and "TND" in msgid:
            assert any(name in msgstr for name in names), (msgid, msgstr)
            assert not any(re.search(rf"(?<!\w){other}", msgstr) for other in others), \
                (msgid, msgstr)
