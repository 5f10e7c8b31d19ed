"""The staff's main journeys walked end to end on a phone (390 px), in French and in
Arabic: the IT officer who orders a database, the provider who serves the catalogue and
the platform administrator who runs the mail domains. Every page reached is checked:
nothing wider than the screen, nothing left in English, and the journey finishes."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.utils import translation

from tests.e2e.conftest import on_a_phone, phone_problems, translated_msgids

# The first journey also waits for the platform to start; the IT officer's waits for the
# worker to make, bind, unbind and drop a real database, each within PROVISIONING_SECONDS.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# The reference broker makes a real database on the test PostgreSQL: this long at most.
# On a platform just started, the broker jobs queue behind the single worker's first
# batch jobs: more than a minute on a busy machine.
PROVISIONING_SECONDS = 240


def _said(language: str, text: str) -> str:
    with translation.override(language):
        return str(translation.gettext(text))


class Walk:
    """One person's walk: every page they reach is checked for what a phone shows wrong."""

    def __init__(self, page, language: str) -> None:
        self.page, self.language = page, language
        self.english = translated_msgids(language)
        self.problems: list[str] = []

    def check(self) -> None:
        self.problems += phone_problems(self.page, self.english)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.check()

    def main(self) -> str:
        return self.page.inner_text("main")

    def until_shown(self, selector: str, text: str,
                    seconds: float = PROVISIONING_SECONDS) -> None:
        """Reload the page until ``selector`` shows ``text`` (the worker moves things on)."""
        deadline = time.monotonic() + seconds

        def shown() -> str:
            found = self.page.locator(selector)
            return " | ".join(found.all_inner_texts()) if found.count() else ""

        while text not in shown():
            assert time.monotonic() < deadline, f"{selector} never showed {text!r} on " \
                f"{self.page.url}:\n{self.main()}"
            time.sleep(1)
            self.page.reload()
        self.check()


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_an_it_officer_orders_a_database_uses_it_and_deletes_it(
        platform, browser, language, output_dir):
    """The CNI's IT officer orders a small PostgreSQL database (below the approval
    threshold, so it is approved at once), watches it being provisioned, gets credentials
    shown once, finds the "ready" notice in his mailbox, then revokes the credentials and
    deletes the database, confirming each, and sees them deleted."""
    base = platform["url"]
    context, page = on_a_phone(browser, platform, language, "it.cni")
    walk = Walk(page, language)
    walk.goto(base + "/cloud/?category=database")
    order_link = page.evaluate("""() => [...document.querySelectorAll('a[href*="/cloud/plans/"]')]
        .find(a => a.closest('tr') && a.closest('tr').innerText.includes('Carthage Cloud')
                   && a.closest('tr').innerText.includes('PostgreSQL S')).href""")
    walk.goto(order_link)
    quote = page.locator("section.quote").inner_text()
    at_once = _said(language, "Up to %(threshold)s TND a month: approved at once, "
                              "provisioning starts.")
    assert at_once.split("%(threshold)s")[-1].strip() in quote  # no finance approval
    purpose = f"Annuaire — recette {language}"
    page.fill("#id_purpose", purpose)
    page.fill("#id_parameter_application", f"annuaire-{language}")
    page.select_option("#id_parameter_environment", "staging")
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/cloud/orders/CL-*/")
    walk.check()
    number = re.search(r"/cloud/orders/(CL-[\w-]+)/", page.url).group(1)
    assert _said(language, "Approved") in walk.main()
    assert purpose in walk.main()

    state = "#instance dl.facts dd strong"  # the instance's state, not its credentials'
    walk.until_shown(state, _said(language, "Active"))
    page.screenshot(path=str(output_dir / f"active-{language}.png"), full_page=True)
    page.fill("#name", "annuaire-web")
    page.locator("form[action$='/bind'] button[type=submit]").click()
    page.wait_for_url(f"**/cloud/orders/{number}/")
    walk.until_shown("#instance form[action$='/reveal'] button", _said(language, "Show once"))
    page.locator("form[action$='/reveal'] button[type=submit]").click()
    page.wait_for_url(f"**/cloud/orders/{number}/reveal")
    walk.check()
    assert page.locator("h1 bdi").inner_text() == "annuaire-web"  # whole, even right to left
    credentials = page.locator("table.credentials").inner_text()
    assert "postgresql://" in credentials and "password" in credentials
    page.screenshot(path=str(output_dir / f"credentials-{language}.png"), full_page=True)

    walk.goto(base + "/mail/")
    notice = page.locator("main table.messages-list tbody tr", has_text=number)
    assert notice.count() == 1
    assert notice.locator("time").count() == 1  # dated like any other mail
    notice.locator("a").click()
    page.wait_for_selector("#auth-mark")  # the message itself
    walk.check()
    assert f"/cloud/orders/{number}/" in walk.main()  # the notice links to the order
    assert page.locator("#auth-mark").inner_text() == "✔ " + _said(language, "verified sender")

    walk.goto(f"{base}/cloud/orders/{number}/")
    assert page.locator("form[action$='/reveal']").count() == 0  # shown once only
    asked: list[str] = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.locator("form[action$='/unbind'] button[type=submit]").click()
    page.wait_for_url(f"**/cloud/orders/{number}/")
    assert asked == [_said(language, "Revoke these credentials? The application that uses "
                                     "them loses its access to the database.")]
    walk.until_shown("#instance tbody tr", _said(language, "Deleted"))
    page.locator("form[action$='/deprovision'] button[type=submit]").click()
    page.wait_for_url(f"**/cloud/orders/{number}/")
    assert asked[1:] == [_said(language, "Delete the instance and its data?")]
    walk.until_shown(state, _said(language, "Deleted"))
    assert page.locator("form[action$='/deprovision']").count() == 0
    page.screenshot(path=str(output_dir / f"deleted-{language}.png"), full_page=True)
    context.close()
    assert not walk.problems, "\n".join(walk.problems)


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_provider_sees_its_labels_and_orders_and_submits_a_label_renewal(
        platform, browser, language, output_dir):
    """Carthage Cloud sees its qualification, its valid labels (none about to expire, so
    nothing waits on its account page), the plans it sells in the catalogue, its
    customers' orders, and submits its renewed G-cloud label for review."""
    base = platform["url"]
    context, page = on_a_phone(browser, platform, language, "carthage.cloud")
    walk = Walk(page, language)
    walk.check()
    assert _said(language, "Nothing waits for you.") in walk.main()

    walk.goto(base + "/cloud/?q=Carthage")
    catalogue = walk.main()
    for plan in ("PostgreSQL S", "PostgreSQL M", "PostgreSQL L"):
        assert plan in catalogue

    walk.goto(base + "/cloud/provider/")
    facts = page.locator("dl.facts").inner_text()
    assert _said(language, "Qualified") in facts
    assert "g-cloud" in facts.lower()
    orders = page.locator("section.card", has_text=_said(language, "Orders to this provider"))
    for customer in ("MF-DSI", "MS"):
        assert customer in orders.inner_text()
    order_number = orders.locator("a").first.inner_text()
    attestations = page.locator("section.card", has_text=_said(language, "Attestations"))
    reference = f"G-CLOUD-RENEW-{language.upper()}"
    assert _said(language, "Accepted") in attestations.inner_text()
    assert reference not in attestations.inner_text()

    today = dt.date.today()
    page.select_option("#id_label", "g-cloud")
    page.fill("#id_issuer", "ANCS")
    page.fill("#id_scope", "Hébergement IaaS/PaaS, centres de données en Tunisie")
    page.fill("#id_reference", reference)
    page.fill("#id_valid_from", today.isoformat())
    page.fill("#id_expires_on", (today + dt.timedelta(days=730)).isoformat())
    page.set_input_files("#id_document", {"name": "g-cloud.pdf", "mimeType": "application/pdf",
                                          "buffer": _one_page_pdf()})
    with page.expect_navigation():  # posted, then back on the same page
        page.locator("form[action$='/attestation'] button[type=submit]").click()
    walk.check()
    renewal = page.locator("section.card li", has_text=reference)
    assert _said(language, "Pending review") in renewal.inner_text()
    page.screenshot(path=str(output_dir / f"provider-{language}.png"), full_page=True)

    walk.goto(f"{base}/cloud/orders/{order_number}/")
    assert order_number in walk.main()
    context.close()
    assert not walk.problems, "\n".join(walk.problems)


def _one_page_pdf() -> bytes:
    from sahab.cloud.demo import _certificate_pdf

    return _certificate_pdf("Carthage Cloud", "g-cloud")


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_the_platform_administrator_finds_a_domain_checks_it_and_adds_a_mailbox(
        platform, browser, language, output_dir):
    """The platform administrator searches the mail domains, opens one, reads its mailbox
    counts and quotas, runs the DNS check (lookups are off on the test platform: nothing
    leaves the machine, each record shows as not checked), creates a shared mailbox for
    a service, gives an agent access to it and finds it in the domain's list."""
    base = platform["url"]
    context, page = on_a_phone(browser, platform, language, "admin")
    walk = Walk(page, language)
    walk.goto(base + "/mail/admin/")
    assert page.locator("main table tbody tr").count() > 1
    page.fill("#q", "finances")
    page.locator("form.search button[type=submit]").click()
    page.wait_for_url("**/mail/admin/?q=finances*")
    walk.check()
    rows = page.locator("main table tbody tr")
    assert rows.count() >= 1
    assert all("finances" in rows.nth(i).inner_text() for i in range(rows.count()))
    row = rows.filter(has=page.locator("a", has_text=re.compile(r"^finances\.gov\.tn$")))
    cells = row.locator("td")
    assert int(cells.nth(2).inner_text()) > 0  # mailboxes
    assert cells.nth(4).inner_text().strip() not in ("", "0")  # quotas
    row.locator("a").click()
    page.wait_for_url("**/mail/admin/finances.gov.tn/")
    walk.check()
    mailboxes = page.locator("section.card", has_text=_said(language, "Quota (MB)"))
    assert mailboxes.locator("tbody tr").count() > 1

    page.locator("form:has(input[name=check]) button[type=submit]").click()
    page.wait_for_url("**/mail/admin/finances.gov.tn/?check=1")
    walk.check()
    # not "every record is published": nothing was looked up
    assert page.locator("p[role=status]").inner_text() == _said(
        language, "Nothing could be checked: DNS lookups are off or the resolver did not answer.")
    statuses = page.locator("td.status-unchecked")
    assert statuses.count() > 0
    assert page.locator("td.status-published, td.status-missing, td.status-wrong").count() == 0

    local = f"cellule-{language}"
    page.select_option("#sa", "MF")
    page.fill("#sl", local)
    page.fill("#sd", f"Cellule de veille ({language})")
    with page.expect_navigation():
        page.locator("form[action$='/shared'] button[type=submit]").click()
    walk.check()
    page.select_option("#dm", label=f"{local}@finances.gov.tn")
    agent = page.locator("#da option").first.inner_text()
    page.select_option("#da", index=0)
    with page.expect_navigation():
        page.locator("form[action$='/delegate'] button[type=submit]").click()
    walk.check()
    delegations = page.locator("section.card", has_text=_said(language, "Delegations"))
    assert f"{local}@finances.gov.tn" in delegations.inner_text()
    assert agent in delegations.inner_text()

    page.fill("#q", local)
    page.locator("section.card form.search button[type=submit]").click()
    page.wait_for_url(f"**/mail/admin/finances.gov.tn/?q={local}*")
    walk.check()
    found = mailboxes.locator("tbody tr")
    assert found.count() == 1
    assert f"{local}@finances.gov.tn" in found.inner_text()
    page.screenshot(path=str(output_dir / f"mail-admin-{language}.png"), full_page=True)
    context.close()
    assert not walk.problems, "\n".join(walk.problems)
