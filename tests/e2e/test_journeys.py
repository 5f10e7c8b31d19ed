"""Main journeys walked end to end on a phone (390 px), in French and in Arabic, by the
people who do them: nothing wider than the screen, nothing left in English, and the
journey finishes."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from tests.e2e.conftest import on_a_phone, phone_problems, translated_msgids

pytestmark = pytest.mark.slow


def _said(language: str, text: str) -> str:
    with translation.override(language):
        return str(translation.gettext(text))


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_an_order_of_a_unit_is_approved_by_its_ministry_finance_service(
        platform, browser, language, output_dir):
    """The IT officer of MF-DSI orders a database above the approval threshold; the
    finance officer of MF-DAF — another unit of the same ministry — finds it waiting for
    her, approves it, and the IT officer sees it approved."""
    base, english = platform["url"], translated_msgids(language)
    problems: list[str] = []
    it_context, it = on_a_phone(browser, platform, language, "it.finances")
    it.goto(base + "/cloud/?category=database")
    problems += phone_problems(it, english)
    order_link = it.evaluate("""() => [...document.querySelectorAll('a[href*="/cloud/plans/"]')]
        .find(a => a.closest('tr') && a.closest('tr').innerText.includes('Carthage Cloud')
                   && a.closest('tr').innerText.includes('PostgreSQL M')).href""")
    it.goto(order_link)
    problems += phone_problems(it, english)
    quote = it.locator("section.quote").inner_text()
    assert "438" in quote  # the month's cost is shown before ordering
    assert _said(language, "Left until 31 December") in quote
    it.fill("#id_purpose", f"Paie — parcours {language}")
    it.select_option("#id_parameter_environment", "production")
    it.click("form.card button[type=submit]")
    it.wait_for_url("**/cloud/orders/CL-*/")
    problems += phone_problems(it, english)
    number = re.search(r"/cloud/orders/(CL-[\w-]+)/", it.url).group(1)
    assert _said(language, "Waiting for approval") in it.inner_text("main")

    finance_context, finance = on_a_phone(browser, platform, language, "finance.finances")
    problems += phone_problems(finance, english)
    waiting = finance.locator("ul.waiting")
    assert number in waiting.inner_text()  # on her "waiting for you" list
    waiting.locator("a", has_text=number).click()
    finance.wait_for_url(f"**/cloud/orders/{number}/")
    problems += phone_problems(finance, english)
    finance.fill("#note", "Crédits disponibles sur le titre I.")
    finance.locator("form[action$='/approve'] button[type=submit]").first.click()
    finance.wait_for_url(f"**/cloud/orders/{number}/")
    problems += phone_problems(finance, english)
    finance.screenshot(path=str(output_dir / f"approved-{language}.png"), full_page=True)

    it.goto(f"{base}/cloud/orders/{number}/")
    assert _said(language, "Approved") in it.inner_text("main")
    problems += phone_problems(it, english)
    it.screenshot(path=str(output_dir / f"order-{language}.png"), full_page=True)
    it_context.close()
    finance_context.close()
    assert not problems, "\n".join(problems)
