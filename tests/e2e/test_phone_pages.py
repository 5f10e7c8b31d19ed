"""Every role's pages on a phone (390 px), in French and Arabic: nothing wider than the
screen, and no sentence left in English where the catalogue has its translation."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import on_a_phone, phone_problems, translated_msgids

pytestmark = pytest.mark.slow

# a citizen, then one account per role of the demo: each walks the pages its menu offers
ROLES = [None, "achats.finances", "finance.finances", "it.finances", "admin.finances",
         "auditeur.haicop", "admin", "carthage.cloud"]


def _menu(page, base: str) -> list[str]:
    links = page.eval_on_selector_all("header nav a", "els => els.map(e => e.href)")
    return [link for link in dict.fromkeys(links) if link.startswith(base)]


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_every_role_reads_its_pages_on_a_phone_in_its_language(platform, browser, language,
                                                                output_dir):
    base = platform["url"]
    english = translated_msgids(language)
    problems: list[str] = []
    seen = 0
    for username in ROLES:
        context, page = on_a_phone(browser, platform, language, username)
        pages = _menu(page, base) + ([base + "/accounts/"] if username else [])
        if username is None:  # a citizen also opens a tender from the list
            page.goto(base + "/tenders/")
            first = page.locator("main table a").first.get_attribute("href")
            pages.append(base + first)
        for url in dict.fromkeys(pages):
            page.goto(url)
            problems += phone_problems(page, english)
            seen += 1
        page.screenshot(path=str(output_dir / f"{username or 'citizen'}-{language}.png"),
                        full_page=True)
        context.close()
    assert seen >= 25
    (output_dir / "problems.txt").write_text("\n".join(problems))
    assert not problems, "\n".join(problems)
