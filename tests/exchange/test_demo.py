"""The demo intranet: its provider systems answer through the gateway to granted
clients only, with the tokens written to demo.json."""

import json

from django.test import Client

from sahab.core import keys
from sahab.core.demo import load_demo
from sahab.exchange import demo_providers
from sahab.ledger import services as ledger


def test_the_demo_calls_work_as_demo_json_says(sahab_home, db, wsgi_http, monkeypatch):
    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    ledger._signer.cache_clear()
    data = load_demo()
    tokens = {c["subsystem"]: c["token"] for c in data["exchange"]["clients"]}
    assert len(tokens) == 3 and {c["granted"] for c in data["exchange"]["calls"]} == {True, False}
    # the gateway forwards to the demo providers over HTTP; here they answer in-process
    import sahab.exchange.gateway as gateway

    monkeypatch.setattr(gateway, "_http", wsgi_http)
    for call in data["exchange"]["calls"]:
        path = call["url"].split("://", 1)[1].split("/", 1)[1]
        response = Client().get("/" + path, HTTP_X_ROAD_CLIENT=call["client"],
                                HTTP_AUTHORIZATION=f"Bearer {tokens[call['client']]}")
        assert (response.status_code == 200) == call["granted"], (call, response.status_code)
        if call["granted"]:
            record = json.loads(b"".join(response.streaming_content))
            assert record.get("cin") or record.get("matricule_fiscal")
    again = load_demo()
    assert again["exchange"]["clients"] == data["exchange"]["clients"]


def test_the_demo_providers_serve_only_relayed_calls(client):
    assert client.get("/exchange/demo/etat-civil/personnes/08123456").status_code == 403
    relayed = {"HTTP_X_ROAD_CLIENT": "TN/GOV/MS/X", "HTTP_X_ROAD_ID": "1"}
    assert client.get("/exchange/demo/etat-civil/personnes/123", **relayed).status_code == 400
    person = client.get("/exchange/demo/etat-civil/personnes/08123456", **relayed).json()
    assert person == client.get("/exchange/demo/etat-civil/personnes/08123456",
                                **relayed).json()  # stable records
    assert demo_providers.FIRST_NAMES
