"""The public portal in Chromium: search, a tender's history, a ledger proof, Arabic,
and screenshots of the dashboards."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def test_a_citizen_searches_follows_a_tender_and_checks_a_proof(platform, browser, output_dir):
    base = platform["url"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(base + "/tenders/")
    page.select_option("#procedure", "simplified")
    page.click("#tender-search button[type=submit]")
    page.wait_for_url("**procedure=simplified**")
    # htmx may still be swapping the results in: wait for the text, don't read mid-way
    expect(page.locator("body")).to_contain_text("Fournitures de bureau")
    page.click("tr:has-text('trimestre 2') a")
    page.wait_for_selector("text=tender.published")
    expect(page.locator("body")).to_contain_text("S01")  # the split purchase is flagged
    page.locator("td.num a").first.click()  # the first step's ledger entry
    page.wait_for_url("**/ledger/view/**")
    expect(page.locator("body")).to_contain_text("tender")
    with page.expect_download() as download:
        page.click("a[href$='/receipt']")
    receipt = download.value.path().read_text()
    assert receipt.startswith("c2sp.org/tlog-proof@v1\nindex ")

    page.goto(base + "/tenders/dashboard/")
    page.screenshot(path=str(output_dir / "dashboard-fr.png"), full_page=True)
    page.select_option("#lang-select", "ar")
    page.wait_for_selector("html[dir=rtl]")
    page.screenshot(path=str(output_dir / "dashboard-ar.png"), full_page=True)
    page.goto(base + "/tenders/red-flags/")
    page.screenshot(path=str(output_dir / "red-flags-ar.png"), full_page=True)
    small = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = small.new_page()
    phone.goto(base + "/tenders/")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the tender list is {width}px wide on a phone"
    phone.screenshot(path=str(output_dir / "tenders-phone.png"), full_page=True)
    context.close()
    small.close()
