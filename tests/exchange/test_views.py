"""The registry page: register systems and services, ask, decide, revoke, get a token."""

from django.test import Client

from sahab.exchange.models import Grant, Service, Subsystem


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_registry_page_runs_the_whole_grant_cycle(intranet, provider_url):
    finances, interior = signed_in(intranet.it_finances), signed_in(intranet.it_interior)
    page = finances.get("/exchange/registry/").content.decode()
    assert "TN/GOV/MF/IMPOTS" in page and "TN/GOV/MI/ETAT-CIVIL/personnes" in page
    interior.post("/exchange/registry/service", {
        "subsystem": intranet.service.subsystem.pk, "code": "adresses", "name": "Adresses",
        "base_url": provider_url, "owner": "DSI", "classification": "internal"})
    service = Service.objects.get(code="adresses")
    bad = interior.post("/exchange/registry/service", {
        "subsystem": intranet.service.subsystem.pk, "code": "x y", "name": "x",
        "base_url": provider_url, "owner": "DSI", "classification": "internal"}, follow=True)
    assert "Letters, digits" in bad.content.decode()
    finances.post("/exchange/registry/ask", {"client": intranet.client.pk,
                                             "service": service.pk,
                                             "legal_basis": "Loi", "purpose": "Adresses"})
    grant = Grant.objects.get(service=service)
    refused = finances.post("/exchange/registry/approve", {"grant": grant.pk}, follow=True)
    assert "Only an IT officer or administrator of" in refused.content.decode()
    interior.post("/exchange/registry/approve", {"grant": grant.pk})
    grant.refresh_from_db()
    assert grant.status == Grant.Status.APPROVED
    interior.post("/exchange/registry/revoke", {"grant": grant.pk, "note": "Fin du projet"})
    grant.refresh_from_db()
    assert grant.status == Grant.Status.REVOKED
    token = finances.post("/exchange/registry/token", {"subsystem": intranet.client.pk,
                                                       "name": "batch"})
    assert token["Cache-Control"] == "no-store" and "xrd_" in token.content.decode()
    finances.post("/exchange/registry/subsystem", {"administration": "MF", "code": "PAIE",
                                                   "name": "Paie"})
    assert Subsystem.objects.filter(code="PAIE").exists()
    outside = finances.post("/exchange/registry/subsystem", {"administration": "MI",
                                                             "code": "X", "name": "x"},
                            follow=True)
    assert "Select a valid choice" in outside.content.decode()
    assert not Subsystem.objects.filter(code="X").exists()
    for bad in ({"subsystem": "abc"}, {"subsystem": intranet.client.pk, "max_concurrency": "x"},
                {}):
        page = interior.post("/exchange/registry/service", bad, follow=True)
        assert page.status_code == 200 and 'class="error"' in page.content.decode()
    assert finances.post("/exchange/registry/explode", {}).status_code == 404


def test_the_registry_page_shows_hosts_and_endpoints_and_platform_admins_add_hosts(intranet):
    from tests import factories

    finances = signed_in(intranet.it_finances)
    finances.post("/exchange/registry/ask", {
        "client": intranet.other.pk, "service": intranet.service.pk, "legal_basis": "Loi",
        "purpose": "Contrôle", "endpoints": "GET /persons/*\nPOST /search"})
    grant = Grant.objects.get(client=intranet.other)
    assert grant.endpoints == [{"method": "GET", "path": "/persons/*"},
                               {"method": "POST", "path": "/search"}]
    interior = signed_in(intranet.it_interior)
    interior.post("/exchange/registry/approve", {"grant": grant.pk,
                                                 "endpoints": "GET /persons/*"})
    grant.refresh_from_db()
    assert grant.status == Grant.Status.APPROVED
    assert grant.endpoints == [{"method": "GET", "path": "/persons/*"}]
    page = interior.get("/exchange/registry/").content.decode()
    assert "GET /persons/*" in page and "/registry" in page
    refused = interior.post("/exchange/registry/host", {"administration": "MI",
                                                        "host": "api.mi.gov.tn"}, follow=True)
    assert "Only platform administrators" in refused.content.decode()
    admin = signed_in(factories.platform_admin().user)
    admin.post("/exchange/registry/host", {"administration": "MF", "host": "impots.mf.gov.tn",
                                           "port": "443", "path_prefix": "/"})
    assert "impots.mf.gov.tn" in admin.get("/exchange/registry/").content.decode()
