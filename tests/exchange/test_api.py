"""The registry, grants, tokens and statistics through the JSON API."""

from django.test import Client

from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM
from tests import factories


def caller(user):
    token = directory.issue_api_token(actor=SYSTEM, user=user, name="t")[1]
    client = Client()

    def call(method, path, json=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if json is not None:
            kwargs |= {"data": json, "content_type": "application/json"}
        return getattr(client, method)(f"/api/exchange{path}", **kwargs)
    return call


def test_register_ask_approve_issue_a_token_and_call(intranet, provider_url):
    interior, finances = caller(intranet.it_interior), caller(intranet.it_finances)
    subsystem = interior("post", "/subsystems", {"administration": "MI", "code": "CNSS-LINK",
                                                 "name": "Liaison CNSS"})
    assert subsystem.status_code == 201 and subsystem.json()["identifier"] == \
        "TN/GOV/MI/CNSS-LINK"
    assert finances("post", "/subsystems", {"administration": "MI", "code": "X",
                                            "name": "x"}).status_code == 403
    bad = interior("post", "/subsystems", {"administration": "MI", "code": "bad code!",
                                           "name": "x"})
    assert bad.status_code == 422
    service = interior("post", "/services", {
        "subsystem": subsystem.json()["id"], "code": "adresses", "name": "Adresses",
        "base_url": provider_url, "owner": "DSI", "classification": "confidential"})
    assert service.status_code == 201, service.json()
    assert interior("post", "/services", {
        "subsystem": subsystem.json()["id"], "code": "x", "name": "x", "owner": "x",
        "base_url": "file:///etc/passwd"}).status_code == 422
    asked = finances("post", "/grants", {"client": intranet.client.pk,
                                         "service": service.json()["id"],
                                         "legal_basis": "Loi 2004-63", "purpose": "Adresses"})
    assert asked.status_code == 201 and asked.json()["status"] == "requested"
    grant_id = asked.json()["id"]
    assert finances("post", f"/grants/{grant_id}/decision",
                    {"approve": True}).status_code == 403
    approved = interior("post", f"/grants/{grant_id}/decision", {"approve": True,
                                                                 "rate_per_minute": 100})
    assert approved.json()["status"] == "approved"
    token = finances("post", f"/subsystems/{intranet.client.pk}/tokens", {"name": "ci"})
    assert token.status_code == 201 and token.json()["token"].startswith("xrd_")
    response = Client().get(f"/exchange/r1/{service.json()['identifier']}/lookup",
                            HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}",
                            HTTP_X_ROAD_CLIENT=intranet.client.identifier)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    grants = finances("get", "/grants").json()
    assert {g["service"] for g in grants["items"]} >= {"TN/GOV/MI/CNSS-LINK/adresses"}
    stats = finances("get", "/stats").json()
    assert any(row["calls"] >= 1 and row["client"] == "TN/GOV/MF/IMPOTS" for row in stats)
    outsider = caller(factories.agent(roles=[]).user)
    assert outsider("get", "/stats").json() == []
    company = caller(factories.company()[1].user)
    assert company("get", "/services").status_code == 403


def test_monitoring_page_shows_statistics_charts_and_health(intranet):
    from sahab.exchange import services
    from sahab.exchange.models import Service

    for _ in range(3):
        b"".join(intranet.call().streaming_content)
    intranet.call("hang")  # a timeout counts as an error
    assert services.check_services(timeout=2) == 1
    service = Service.objects.get()
    assert service.healthy is True and service.check_status == 200
    client = Client()
    client.force_login(intranet.it_finances)
    page = client.get("/exchange/monitoring/")
    text = page.content.decode()
    assert page.status_code == 200 and 'class="chart"' in text
    assert "TN/GOV/MF/IMPOTS" in text and "TN/GOV/MI/ETAT-CIVIL/personnes" in text
    rows = client.get("/exchange/monitoring/", {"format": "json"}).json()
    assert rows[0]["calls"] == 4 and rows[0]["errors"] == 1
    company = Client()
    company.force_login(factories.company()[1].user)
    assert company.get("/exchange/monitoring/").status_code == 404
    type(service).objects.update(base_url="http://127.0.0.1:9/none", openapi_url="")
    services.check_services(timeout=1)
    assert Service.objects.get().healthy is False
