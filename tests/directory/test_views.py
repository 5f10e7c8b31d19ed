import json
import re

import pyotp
import pytest
from django.urls import reverse

from sahab.directory import services
from sahab.directory.models import Administration, Company, Role
from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, username, password=PASSWORD):
    return client.post(reverse("directory:login"), {"username": username, "password": password})


def test_portal_home_is_public_and_shows_figures(client):
    factories.administration()
    response = client.get("/")
    assert response.status_code == 200
    assert b"Administrations by kind" in response.content


def test_an_agent_signs_in_and_out(client):
    agent = factories.agent()
    response = login(client, agent.user.username)
    assert response.status_code == 302 and response["Location"] == reverse("directory:home")
    assert client.get(reverse("directory:home")).status_code == 200
    client.post(reverse("directory:logout"))
    assert client.get(reverse("directory:home")).status_code == 302


def test_wrong_password_is_a_form_error(client):
    agent = factories.agent()
    response = login(client, agent.user.username, "wrong")
    assert response.status_code == 400 and b"Wrong username or password" in response.content


def test_sign_in_is_throttled_after_five_failures(client):
    agent = factories.agent()
    for _ in range(5):
        login(client, agent.user.username, "wrong")
    response = login(client, agent.user.username)  # even the right password now
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_sign_in_asks_for_the_second_factor_when_it_is_on(client):
    agent = factories.agent()
    secret = services.new_totp_secret()
    totp = pyotp.TOTP(secret)
    # enable with the previous step's code so the current one is still unused
    import datetime as dt

    from django.utils import timezone
    services.enable_totp(agent=agent, secret=secret,
                         code=totp.at(timezone.now() - dt.timedelta(seconds=30)))
    response = login(client, agent.user.username)
    assert response["Location"] == reverse("directory:login_totp")
    assert "_auth_user_id" not in client.session
    bad = client.post(reverse("directory:login_totp"), {"code": "000000"})
    assert bad.status_code == 400
    ok = client.post(reverse("directory:login_totp"), {"code": totp.now()})
    assert ok.status_code == 302 and client.session["_auth_user_id"] == str(agent.user.pk)


def test_second_factor_setup_page_shows_a_qr_code_and_enables_it(client):
    agent = factories.agent()
    client.force_login(agent.user)
    page = client.get(reverse("directory:totp"))
    secret = re.search(rb'id="totp-secret">([A-Z2-7]+)<', page.content).group(1).decode()
    assert b"<svg" in page.content
    response = client.post(reverse("directory:totp"), {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.totp_enabled


def test_open_redirects_are_refused_after_sign_in(client):
    agent = factories.agent()
    response = client.post(reverse("directory:login"), {
        "username": agent.user.username, "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == reverse("directory:home")


def test_arabic_pages_are_right_to_left(client):
    client.post("/i18n/setlang/", {"language": "ar", "next": "/"})
    response = client.get("/")
    assert b'<html lang="ar" dir="rtl">' in response.content
    client.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    assert b'<html lang="fr" dir="ltr">' in client.get("/").content


def test_directory_search_and_htmx_fragment(client):
    factories.administration(code="MF", name_fr="Ministère des Finances")
    factories.administration(code="MS", name_fr="Ministère de la Santé")
    page = client.get(reverse("directory:administrations"), {"q": "Finances"})
    assert b"MF" in page.content and "Ministère de la Santé" not in page.content.decode()
    fragment = client.get(reverse("directory:administrations"), {"q": "Santé"},
                          HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content and "Santé".encode() in fragment.content


def test_company_registers_itself_and_bad_input_is_shown_on_the_form(client):
    data = {"name": "Oasis", "matricule_fiscal": "12", "email": "c@oasis.tn",
            "admin_username": "oasis", "admin_first_name": "O", "admin_last_name": "S",
            "admin_email": "o@oasis.tn", "admin_password": PASSWORD}
    response = client.post(reverse("directory:register_company"), data)
    assert response.status_code == 400 and b"matricule fiscal such as" in response.content
    assert not Company.objects.exists()
    response = client.post(reverse("directory:register_company"),
                           data | {"matricule_fiscal": "1234567B/A/M/000"})
    assert response.status_code == 302
    assert Company.objects.get().members.get().user.username == "oasis"


def test_administration_admin_manages_their_administration_only(client):
    mf = factories.administration(code="MF")
    ms = factories.administration(code="MS")
    admin = factories.agent(administration=mf, roles=[Role.ADMINISTRATION_ADMIN])
    client.force_login(admin.user)
    assert client.get(reverse("directory:manage", args=["MF"])).status_code == 200
    assert client.get(reverse("directory:manage", args=["MS"])).status_code == 403
    response = client.post(reverse("directory:create_agent", args=["MF"]), {
        "agent-username": "new.one", "agent-email": "new@finances.gov.tn",
        "agent-administration": "MF", "agent-roles": ["evaluator"]})
    assert response.status_code == 200 and b"Initial password" in response.content
    response = client.post(reverse("directory:create_administration", args=["MF"]), {
        "adm-code": "MF-DSI", "adm-kind": "unit", "adm-name_fr": "DSI", "adm-name_ar": "إعلامية"})
    assert response.status_code == 302
    assert Administration.objects.get(code="MF-DSI").parent == mf
    bad = client.post(reverse("directory:create_administration", args=["MF"]), {
        "adm-code": "COM-X", "adm-kind": "municipality", "adm-name_fr": "x", "adm-name_ar": "س"})
    assert bad.status_code == 400 and not Administration.objects.filter(code="COM-X").exists()
    assert ms.children.count() == 0
    outside = client.post(reverse("directory:create_administration", args=["MS"]), {
        "adm-code": "MS-X", "adm-kind": "unit", "adm-name_fr": "x", "adm-name_ar": "س"})
    assert outside.status_code == 403 and ms.children.count() == 0


def test_plain_agents_cannot_reach_the_management_screens(client):
    agent = factories.agent()
    client.force_login(agent.user)
    assert client.get(reverse("directory:manage",
                              args=[agent.administration.code])).status_code == 404


def test_account_page_creates_a_token_shown_once(client):
    agent = factories.agent()
    client.force_login(agent.user)
    client.post(reverse("directory:token_create"), {"name": "laptop"})
    page = client.get(reverse("directory:home")).content.decode()
    token = re.search(r'<code class="token">(sahab_[\w-]+)</code>', page).group(1)
    assert services.authenticate_token(token) == agent.user
    assert token not in client.get(reverse("directory:home")).content.decode()


def test_unknown_pages_are_404_html_and_unknown_api_paths_are_404_problems(client):
    assert client.get("/nothing-here/").status_code == 404
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_directory_tables_download_as_csv_and_json(client):
    factories.administration(code="MF", name_fr="Ministère des Finances")
    factories.company(name="Oasis")
    # every administration and company of the state: streamed, never held whole
    listed = client.get(reverse("directory:administrations"), {"format": "json"})
    assert listed.streaming
    rows = json.loads(b"".join(listed.streaming_content))
    assert rows[0]["code"] == "MF"
    csv = client.get(reverse("directory:companies"), {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv") and csv.streaming
    assert b"Oasis" in b"".join(csv.streaming_content)


def test_admin_screens_show_agents_and_administrations(admin_client):
    agent = factories.agent(roles=[Role.EVALUATOR])
    page = admin_client.get(f"/admin/directory/agent/{agent.pk}/change/")
    assert page.status_code == 200 and b"Evaluator" in page.content
    assert admin_client.get("/admin/directory/administration/").status_code == 200
    assert admin_client.get("/admin/ledger/entry/").status_code == 200
