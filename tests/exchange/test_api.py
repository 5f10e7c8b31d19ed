"""The registry, grants, tokens and statistics through the JSON API."""

import httpx
from django.test import Client

from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM
from tests import factories


def caller(user):
    token = directory.issue_api_token(actor=SYSTEM, user=user, name="t")[1]
    client = Client()

    def call(method, path, json=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if json is not None or method != "get":  # the API reads JSON bodies only
            kwargs |= {"data": {} if json is None else json, "content_type": "application/json"}
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
    response = httpx.get(
        f"{intranet.gateway.url}/r1/{service.json()['identifier']}/lookup",
        headers={"Authorization": f"Bearer {token.json()['token']}",
                 "X-Road-Client": intranet.client.identifier})
    assert response.status_code == 200
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
        assert intranet.call().status_code == 200
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


def test_hosts_are_registered_by_platform_administrators_only(intranet):
    admin = caller(factories.platform_admin().user)
    interior = caller(intranet.it_interior)
    refused = interior("post", "/hosts", {"administration": "MI", "host": "api.mi.gov.tn"})
    assert refused.status_code == 403
    made = admin("post", "/hosts", {"administration": "MI", "host": "API.mi.gov.tn.",
                                    "port": 8443, "path_prefix": "/v1"})
    assert made.status_code == 201 and made.json()["host"] == "api.mi.gov.tn"
    overlapping = admin("post", "/hosts", {"administration": "MF", "host": "api.mi.gov.tn",
                                           "port": 8443, "path_prefix": "/v1/impots"})
    assert overlapping.status_code == 409
    seen = interior("get", "/hosts").json()["items"]
    assert {h["host"] for h in seen} == {"127.0.0.1", "api.mi.gov.tn"}
    assert admin("post", f"/hosts/{made.json()['id']}/revoke").json()["revoked_at"]


def test_services_are_changed_and_the_log_status_and_receipts_are_served(intranet):
    from sahab.exchange import messagelog

    interior = caller(intranet.it_interior)
    changed = interior("patch", f"/services/{intranet.service.pk}",
                       {"max_concurrency": 5, "timeout_seconds": 3})
    assert changed.status_code == 200
    outside = interior("patch", f"/services/{intranet.service.pk}",
                       {"base_url": "https://intranet.other.gov.tn/x"})
    assert outside.status_code == 422
    assert intranet.call(headers={"X-Road-Id": "dossier-77"}).status_code == 200
    status = interior("get", "/message-log").json()
    assert status["backlog"] == 1 and status["alert"] is False
    waiting = interior("get", "/receipts/dossier-77").json()
    assert waiting == {"receipts": [], "waiting": 1}
    messagelog.flush_to_ledger()
    assert interior("get", "/message-log").json()["backlog"] == 0
    found = interior("get", "/receipts/dossier-77").json()["receipts"]
    assert found[0]["receipt"].startswith("c2sp.org/tlog-proof@v1")
    stranger = caller(factories.agent(roles=[]).user)
    assert stranger("get", "/receipts/dossier-77").status_code == 404
