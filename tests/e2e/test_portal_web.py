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
    page.wait_for_selector("span[title='tender.published']")  # the step, by its title
    expect(page.locator("body")).to_contain_text("Tender published")  # an English browser
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


def test_a_journalist_follows_a_company_from_search_to_profile_to_a_contract(platform, browser,
                                                                           output_dir):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(platform["url"] + "/companies/")
    page.fill("#q", "Sahel")
    page.click("#company-search button[type=submit]")
    page.wait_for_url("**/companies/?q=Sahel*")
    page.click("table a:has-text('Sahel Informatique')")
    page.wait_for_url("**/companies/*/")
    expect(page.locator("h1")).to_have_text("Sahel Informatique")
    expect(page.locator("#contracts")).to_be_visible()
    page.screenshot(path=str(output_dir / "company-profile.png"), full_page=True)
    contract = page.locator("a.contract").first
    anchor = contract.get_attribute("href").split("#")[1]
    contract.click()
    page.wait_for_url(f"**#{anchor}")
    item = page.locator(f"#{anchor}")
    expect(item).to_contain_text("Sahel Informatique")
    expect(item).to_contain_text("TND")
    # and back to the company from the contract
    item.locator("a").first.click()
    page.wait_for_url("**/companies/*/")
    expect(page.locator("h1")).to_have_text("Sahel Informatique")
    page.context.close()
