"""An IT officer orders a database in the catalogue of a running sahab; the worker
provisions it through the reference broker over HTTP; the officer makes credentials,
sees them once, and the application connects with them and writes a row."""

import re

import psycopg
import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.slow


def test_order_a_database_and_use_its_credentials(platform, browser, output_dir):
    page = sign_in(browser, platform, "it.finances")
    page.goto(platform["url"] + "/cloud/?category=database")
    page.screenshot(path=str(output_dir / "catalogue.png"), full_page=True)
    row = page.locator("tr", has_text="Medina Data Services").filter(has_text="PostgreSQL S")
    row.get_by_role("link", name="Commande").click()
    page.fill("#id_purpose", "Gestion des congés")
    page.get_by_role("button", name="Passer la commande").click()
    page.wait_for_url("**/cloud/orders/CL-*/")
    # provisioned by the worker through the broker, which creates a real database: a
    # minute was not always enough on two busy cores
    page.get_by_text("En vigueur").wait_for(timeout=120_000)

    page.fill("#name", "conges-app")
    page.get_by_role("button", name="Créer les identifiants").click()
    page.get_by_role("button", name="Afficher une fois").wait_for(timeout=120_000)
    page.get_by_role("button", name="Afficher une fois").click()
    uri = re.search(r"postgresql://\S+", page.locator("table.credentials").inner_text()).group(0)
    page.screenshot(path=str(output_dir / "credentials.png"))
    with psycopg.connect(uri, connect_timeout=10) as connection:
        connection.execute("CREATE TABLE conges (agent text, jours int)")
        connection.execute("INSERT INTO conges VALUES ('Walid', 3)")
        assert connection.execute("SELECT jours FROM conges").fetchone() == (3,)

    page.goto(platform["url"] + "/cloud/dashboard/")
    assert page.locator(".chart").count() >= 3
    page.screenshot(path=str(output_dir / "dashboard.png"), full_page=True)
    page.context.close()
