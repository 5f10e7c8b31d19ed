"""End to end: the platform as ``make run`` starts it, driven over HTTP and in a browser."""

import httpx
import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.slow


def test_served_platform_answers_with_demo_data_and_tokens(platform):
    base = platform["url"]
    assert httpx.get(f"{base}/").status_code == 200
    ministries = httpx.get(f"{base}/api/administrations", params={"kind": "ministry"}).json()
    assert ministries["count"] >= 20
    token = platform["demo"]["api_tokens"][0]
    me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert me.json()["username"] == token["username"]
    assert httpx.get(f"{base}/static/sahab/sahab.css").status_code == 200


def test_browser_signs_in_switches_to_arabic_and_reads_right_to_left(platform, browser,
                                                                     output_dir):
    page = sign_in(browser, platform, "achats.finances")
    assert "Sonia" in page.inner_text("header")
    page.select_option("#lang-select", "ar")
    page.wait_for_selector("html[dir=rtl]")
    assert page.get_attribute("html", "lang") == "ar"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    page.screenshot(path=str(output_dir / "account-ar.png"), full_page=True)
    page.goto(platform["url"] + "/")
    assert page.get_attribute("html", "dir") == "rtl"
    page.screenshot(path=str(output_dir / "portal-ar.png"), full_page=True)
    page.context.close()
    assert (output_dir / "portal-ar.png").stat().st_size > 10_000


def test_the_auditor_verifies_the_served_ledger_and_a_new_action_gets_checkpointed(
        platform, tmp_path):
    import subprocess
    import sys
    import time

    base, ledger = platform["url"], platform["demo"]["ledger"]
    token = platform["demo"]["api_tokens"][0]["token"]
    created = httpx.post(f"{base}/api/tokens", json={"name": "e2e"},
                         headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201
    size_after_action = int(httpx.get(f"{base}/ledger/entries").json()["count"])
    deadline = time.monotonic() + 30  # the worker signs within about a second
    while int(httpx.get(f"{base}/ledger/checkpoint").text.split("\n")[1]) < size_after_action:
        assert time.monotonic() < deadline, "no checkpoint covers the new entry"
        time.sleep(0.2)
    verify = [sys.executable, "-m", "sahab.cli", "ledger", "verify", f"{base}/ledger",
              "--key", ledger["key"], "--state", str(tmp_path / "audit.json"), "--quiet"]
    result = subprocess.run(verify, capture_output=True, text=True, timeout=120,
                            env={**platform["env"], "SAHAB_HOME": str(tmp_path / "auditor")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    wrong_key = ledger["key"][:-6] + ("AAAAA=" if not ledger["key"].endswith("AAAAA=")
                                      else "BBBBB=")
    result = subprocess.run([*verify[:6], "--key", wrong_key, "--state",
                             str(tmp_path / "other.json"), "--quiet"],
                            capture_output=True, text=True, timeout=120, env=platform["env"])
    assert result.returncode != 0 and "Traceback" not in result.stderr
