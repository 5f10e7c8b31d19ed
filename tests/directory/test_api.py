import pytest
from django.test import Client

from sahab.directory import services
from sahab.directory.models import AdministrationKind, Agent, Role
from sahab.directory.selectors import SYSTEM
from tests import factories

pytestmark = pytest.mark.django_db


def bearer(user) -> dict:
    _, token = services.issue_api_token(actor=SYSTEM, user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_problem(response, status: int):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def test_without_a_token_the_api_answers_401_with_a_problem(client: Client):
    body = assert_problem(client.get("/api/me"), 401)
    assert "Bearer" in body["detail"]
    assert_problem(client.get("/api/me", HTTP_AUTHORIZATION="Bearer sahab_wrong"), 401)
    assert_problem(client.post("/api/agents", {}, content_type="application/json"), 401)


def test_me_describes_the_token_owner(client):
    agent = factories.agent(roles=[Role.IT_OFFICER])
    body = client.get("/api/me", **bearer(agent.user)).json()
    assert body == {"username": agent.user.username, "kind": "agent",
                    "administration": agent.administration.code, "company": None,
                    "roles": ["it_officer"]}


def test_administrations_are_public_and_paged(client):
    for _ in range(3):
        factories.administration()
    body = client.get("/api/administrations?limit=2").json()
    assert body["count"] == 3 and len(body["items"]) == 2
    code = body["items"][0]["code"]
    assert client.get(f"/api/administrations/{code}").json()["code"] == code
    assert_problem(client.get("/api/administrations/NOPE"), 404)


def test_an_administration_admin_creates_agents_in_their_subtree_through_the_api(client):
    mf = factories.administration(code="MF")
    ms = factories.administration(code="MS")
    admin = factories.agent(administration=mf, roles=[Role.ADMINISTRATION_ADMIN])
    payload = {"username": "new.agent", "email": "new@finances.gov.tn", "administration": "MF",
               "roles": ["evaluator"]}
    response = client.post("/api/agents", payload, content_type="application/json",
                           **bearer(admin.user))
    assert response.status_code == 201, response.content
    assert response.json()["roles"] == ["evaluator"] and response.json()["initial_password"]
    payload |= {"username": "other", "administration": "MS"}
    assert_problem(client.post("/api/agents", payload, content_type="application/json",
                               **bearer(admin.user)), 403)
    assert not Agent.objects.filter(administration=ms).exists()


def test_invalid_payloads_get_422_problems_and_change_nothing(client):
    admin = factories.platform_admin()
    before = Agent.objects.count()
    for payload in [{"username": "x"}, {"username": "a b", "email": "nope", "administration": "X"},
                    {"username": "ok", "email": "ok@example.tn", "administration": "MF",
                     "roles": ["king"]}]:
        assert_problem(client.post("/api/agents", payload, content_type="application/json",
                                   **bearer(admin.user)), 422)
    assert_problem(client.post("/api/agents", "{not json", content_type="application/json",
                               **bearer(admin.user)), 400)
    assert Agent.objects.count() == before


def test_companies_register_through_the_api_only_by_platform_admins(client):
    admin = factories.platform_admin()
    agent = factories.agent()
    payload = {"name": "Oasis Cloud", "matricule_fiscal": "1234567b/a/m/000",
               "admin_username": "oasis", "admin_email": "it@oasis.tn"}
    assert_problem(client.post("/api/companies", payload, content_type="application/json",
                               **bearer(agent.user)), 403)
    response = client.post("/api/companies", payload, content_type="application/json",
                           **bearer(admin.user))
    assert response.status_code == 201
    assert response.json()["matricule_fiscal"] == "1234567B/A/M/000"
    again = assert_problem(client.post("/api/companies", payload | {"admin_username": "oasis2"},
                                       content_type="application/json", **bearer(admin.user)),
                           409)
    assert again["code"] == "company_exists" and "matricule_fiscal" in again["errors"]
    bad = payload | {"matricule_fiscal": "0000", "admin_username": "x3"}
    body = assert_problem(client.post("/api/companies", bad, content_type="application/json",
                                      **bearer(admin.user)), 422)
    assert "matricule_fiscal" in body["errors"]


def test_tokens_created_through_the_api_work_and_can_be_revoked(client):
    agent = factories.agent()
    response = client.post("/api/tokens", {"name": "ci"}, content_type="application/json",
                           **bearer(agent.user))
    assert response.status_code == 201
    token = response.json()["token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/api/me", **headers).status_code == 200
    token_id = response.json()["id"]
    assert client.delete(f"/api/tokens/{token_id}", **headers).json()["revoked_at"]
    assert_problem(client.get("/api/me", **headers), 401)


def test_session_writes_need_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    agent = factories.agent()
    client.force_login(agent.user)
    assert client.get("/api/me").status_code == 200
    assert_problem(client.post("/api/tokens", {"name": "x"}, content_type="application/json"),
                   403)


def test_openapi_document_is_served(client):
    doc = client.get("/api/openapi.json").json()
    assert doc["info"]["title"] == "sahab API"
    assert "/api/administrations" in doc["paths"]


@pytest.mark.parametrize(("method", "url", "body"), [
    ("get", "/api/administrations?q=a%00b", None),
    ("get", "/api/administrations/A%00B", None),
    ("post", "/api/administrations", '{"code": "AB", "kind": "ministry", "name_fr": "x\\u0000",'
                                     ' "name_ar": "y"}'),
])
def test_nul_characters_are_refused_with_400_on_every_database(client, method, url, body):
    admin = factories.platform_admin()
    kwargs = {"content_type": "application/json", "data": body} if body else {}
    response = getattr(client, method)(url, **kwargs, **bearer(admin.user))
    assert_problem(response, 400)


def test_the_address_book_shows_roles_status_and_second_factor_only_within_reach(
        client, django_assert_max_num_queries):
    """The finding: any agent could read, through GET /api/agents, every other agent's
    roles, whether their account is active and whether they sign in without a second
    factor, across every ministry: a list of targets for an intruder. The address book now
    gives those to the agent themself and to whoever manages the agent's administration,
    null to the rest; names, title, administration and address stay readable by all."""
    mf = factories.administration(code="MF")
    daf = factories.administration(code="MF-DAF", kind=AdministrationKind.DIRECTORATE,
                                   parent=mf)
    ms = factories.administration(code="MS")
    reader = factories.agent(administration=ms, roles=[Role.PROCUREMENT_OFFICER])
    target = factories.agent(administration=daf, roles=[Role.EVALUATOR])
    mf_admin = factories.agent(administration=mf, roles=[Role.ADMINISTRATION_ADMIN])
    platform = factories.platform_admin()
    hidden = {"roles": None, "active": None, "totp_enabled": None}
    name = target.user.username

    def seen_by(user, path=f"/api/agents/{name}") -> dict:
        response = client.get(path, **bearer(user))
        assert response.status_code == 200, response.content
        return response.json()

    by_outsider = seen_by(reader.user)
    assert {k: by_outsider[k] for k in hidden} == hidden
    assert by_outsider["administration"] == "MF-DAF" and by_outsider["email"]
    listed = {a["username"]: a for a in seen_by(reader.user, "/api/agents?limit=100")["items"]}
    assert {k: listed[name][k] for k in hidden} == hidden
    assert listed[reader.user.username]["roles"] == ["procurement_officer"]  # their own
    shown = {"roles": ["evaluator"], "active": True, "totp_enabled": False}
    for manager in (mf_admin.user, platform.user, target.user):
        assert {k: seen_by(manager)[k] for k in hidden} == shown
    # the rule is decided once a request, not once an agent
    for _ in range(20):
        factories.agent(administration=ms)
    headers = bearer(mf_admin.user)
    with django_assert_max_num_queries(8):
        assert client.get("/api/agents?limit=100", **headers).status_code == 200
