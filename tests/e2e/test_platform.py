"""End to end: the platform as ``make run`` starts it, driven over HTTP and in a browser."""

import os
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"


def user(platform, username):
    return next(u for u in platform["demo"]["users"] if u["username"] == username)


def test_served_platform_answers_with_demo_data_and_tokens(platform):
    base = platform["url"]
    assert httpx.get(f"{base}/").status_code == 200
    ministries = httpx.get(f"{base}/api/administrations", params={"kind": "ministry"}).json()
    assert ministries["count"] >= 20
    token = platform["demo"]["api_tokens"][0]
    me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert me.json()["username"] == token["username"]
    assert httpx.get(f"{base}/static/sahab/sahab.css").status_code == 200


def test_browser_signs_in_switches_to_arabic_and_reads_right_to_left(platform, output_dir):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: make test installs it")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    login = user(platform, "achats.finances")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(platform["url"] + "/accounts/login/")
            page.fill("#id_username", login["username"])
            page.fill("#id_password", login["password"])
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/accounts/")
            assert "Sonia" in page.inner_text("header")
            page.select_option("#lang-select", "ar")
            page.wait_for_selector("html[dir=rtl]")
            assert page.get_attribute("html", "lang") == "ar"
            assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
            page.screenshot(path=str(output_dir / "account-ar.png"), full_page=True)
            page.goto(platform["url"] + "/")
            assert page.get_attribute("html", "dir") == "rtl"
            page.screenshot(path=str(output_dir / "portal-ar.png"), full_page=True)
        finally:
            browser.close()
    assert (output_dir / "portal-ar.png").stat().st_size > 10_000
