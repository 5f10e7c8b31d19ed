"""A gateway token that leaked is revoked by its administration, through the API or the
registry page, and the very next call with it is refused; nobody else revokes it."""

from __future__ import annotations

from django.test import Client

from sahab.exchange.models import ClientToken
from tests.exchange.test_api import caller


def test_a_leaked_token_is_revoked_through_the_api_and_stops_at_the_next_call(intranet):
    """Finding: `POST /api/exchange/tokens/{id}/revoke` did not exist (404), nor any
    other way than the database: a gateway token that leaked worked for ever."""
    assert intranet.call("persons/1").status_code == 200
    record = ClientToken.objects.get(subsystem=intranet.client)
    finances, interior = caller(intranet.it_finances), caller(intranet.it_interior)
    listed = finances("get", f"/subsystems/{intranet.client.pk}/tokens")
    assert listed.status_code == 200
    assert [t["prefix"] for t in listed.json()] == [record.prefix]
    assert intranet.token not in listed.content.decode()
    # another administration neither sees nor revokes it
    assert interior("get", f"/subsystems/{intranet.client.pk}/tokens").status_code == 403
    foreign = interior("post", f"/tokens/{record.pk}/revoke")
    assert foreign.status_code == 403 and foreign["Content-Type"].startswith(
        "application/problem+json")
    assert intranet.call("persons/1").status_code == 200
    revoked = finances("post", f"/tokens/{record.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    response = intranet.call("persons/1")
    assert response.status_code == 401 and response.headers["X-Road-Error"] == \
        "Client.Unauthorized"
    assert finances("post", "/tokens/999999/revoke").status_code == 404


def test_the_registry_page_lists_tokens_and_revokes_one(intranet):
    page = Client()
    page.force_login(intranet.it_finances)
    record = ClientToken.objects.get(subsystem=intranet.client)
    text = page.get("/exchange/registry/").content.decode()
    assert record.prefix in text and intranet.token not in text
    page.post("/exchange/registry/token-revoke", {"token": record.pk})
    record.refresh_from_db()
    assert record.revoked_at is not None
    assert intranet.call("persons/1").status_code == 401
