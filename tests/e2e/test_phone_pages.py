"""Every role's pages on a phone (390 px), in French and Arabic: nothing wider than the
screen, and no sentence left in English where the catalogue has its translation."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.utils import translation

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
# a citizen, then one account per role of the demo: each walks the pages its menu offers
ROLES = [None, "achats.finances", "finance.finances", "it.finances", "admin.finances",
         "auditeur.haicop", "admin", "carthage.cloud"]


def _translated_msgids(language: str) -> set[str]:
    """English sentences of the catalogue that have a different translation in
    ``language`` (words that read the same in both are not counted)."""
    catalog = translation.trans_real.translation(language)._catalog
    return {key for key, value in catalog.items()
            if isinstance(key, str) and key and value != key and len(key) > 3}


def _phone(browser, platform, language: str, username: str | None):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    host = urlparse(platform["url"]).hostname
    context.add_cookies([{"name": "sahab_language", "value": language, "domain": host,
                          "path": "/"}])
    page = context.new_page()
    if username is not None:
        password = next(u["password"] for u in platform["demo"]["users"]
                        if u["username"] == username)
        page.goto(platform["url"] + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/accounts/")
    return context, page


def _menu(page, base: str) -> list[str]:
    links = page.eval_on_selector_all("header nav a", "els => els.map(e => e.href)")
    return [link for link in dict.fromkeys(links) if link.startswith(base)]


def _problems(page, url: str, english: set[str]) -> list[str]:
    page.goto(url)
    problems = []
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"] + 1:
        problems.append(f"{url} is {width}px wide")
    lines = page.evaluate("(document.querySelector('main') || document.body).innerText")
    untranslated = sorted({line.strip() for line in lines.splitlines()} & english)
    if untranslated:
        problems.append(f"{url} shows in English: {untranslated[:5]}")
    return problems


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_every_role_reads_its_pages_on_a_phone_in_its_language(platform, browser, language,
                                                                output_dir):
    base = platform["url"]
    english = _translated_msgids(language)
    problems: list[str] = []
    seen = 0
    for username in ROLES:
        context, page = _phone(browser, platform, language, username)
        pages = _menu(page, base) + ([base + "/accounts/"] if username else [])
        if username is None:  # a citizen also opens a tender from the list
            page.goto(base + "/tenders/")
            first = page.locator("main table a").first.get_attribute("href")
            pages.append(base + first)
        for url in dict.fromkeys(pages):
            problems += _problems(page, url, english)
            seen += 1
        page.screenshot(path=str(output_dir / f"{username or 'citizen'}-{language}.png"),
                        full_page=True)
        context.close()
    assert seen >= 25
    (output_dir / "problems.txt").write_text("\n".join(problems))
    assert not problems, "\n".join(problems)
