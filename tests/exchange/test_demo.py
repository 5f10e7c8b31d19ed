"""The demo intranet: its provider systems answer through the gateway to granted
clients only, with the tokens written to demo.json; called directly, they refuse."""

import ssl

import httpx
import pytest

from sahab.core import keys
from sahab.core.demo import load_demo
from sahab.exchange import ca, demo_providers


@pytest.fixture
def demo_providers_port(gateway, settings):
    server, port = gateway.run(demo_providers.start("127.0.0.1", 0))
    settings.EXCHANGE_DEMO_PORT = port
    yield port

    async def close() -> None:  # on the server's own loop: asyncio is not thread-safe
        server.close()
        await server.wait_closed()

    gateway.run(close())


def test_the_demo_calls_work_as_demo_json_says(gateway, demo_providers_port, settings):
    keys.ensure_opening_key()
    settings.EXCHANGE_URL = gateway.url + "/"
    settings.EXCHANGE_ALLOW_HTTP_PROVIDERS = False  # the demo's providers are on https
    data = load_demo()
    tokens = {c["subsystem"]: c["token"] for c in data["exchange"]["clients"]}
    assert len(tokens) == 3 and {c["granted"] for c in data["exchange"]["calls"]} == {True, False}
    for call in data["exchange"]["calls"]:
        response = httpx.get(call["url"], headers={
            "X-Road-Client": call["client"], "Authorization": f"Bearer {tokens[call['client']]}"})
        assert (response.status_code == 200) == call["granted"], (call, response.text)
        if call["granted"]:
            record = response.json()
            assert record.get("cin") or record.get("matricule_fiscal")
    again = load_demo()
    assert again["exchange"]["clients"] == data["exchange"]["clients"]


def test_the_demo_providers_serve_only_the_gateway(gateway, demo_providers_port, sahab_home):
    """Finding: /exchange/demo/... answered anyone sending the two X-Road headers, with no
    grant and no log entry, in every deployment. Now the providers run only where the
    demo was loaded, and only the gateway's certificate gets an answer."""
    from django.test import Client

    relayed = {"HTTP_X_ROAD_CLIENT": "TN/GOV/MS/X", "HTTP_X_ROAD_ID": "1"}
    assert Client().get("/exchange/demo/etat-civil/personnes/08123456",
                        **relayed).status_code == 404  # not mounted on the web port
    url = f"https://127.0.0.1:{demo_providers_port}/etat-civil/personnes/08123456"
    headers = {"X-Road-Client": "TN/GOV/MS/X", "X-Road-Id": "1"}
    trust = ssl.create_default_context(cafile=str(keys.tls_cert_path()))
    with pytest.raises(httpx.HTTPError):  # no client certificate: no TLS session
        httpx.get(url, headers=headers, verify=trust)
    # A client subsystem's certificate is of the same CA, but is not the gateway's.
    client_cert = _client_certificate(sahab_home)
    trust.load_cert_chain(*client_cert)
    refused = httpx.get(url, headers=headers, verify=trust)
    assert refused.status_code == 403
    gateway_context = ssl.create_default_context(cafile=str(keys.tls_cert_path()))
    gateway_context.load_cert_chain(str(ca.gateway_cert_path()), str(ca.gateway_key_path()))
    person = httpx.get(url, verify=gateway_context).json()
    assert person == httpx.get(url, verify=gateway_context).json()  # stable records


def test_the_demo_providers_run_only_where_the_demo_was_loaded(sahab_home, settings):
    settings.EXCHANGE_DEMO_PROVIDERS = "auto"
    assert demo_providers.enabled() is False
    (sahab_home / "demo.json").write_text("{}")
    assert demo_providers.enabled() is True
    settings.EXCHANGE_DEMO_PROVIDERS = "off"
    assert demo_providers.enabled() is False


def _client_certificate(folder):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, _sha256())
    cert = ca.issue(csr, common_name="TN/GOV/MS/DOSSIER-PATIENT", organisation="MS", days=1,
                    not_before=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "c.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(folder / "c.pem"), str(folder / "c.key")


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()
