"""The exchange gateway of a running sahab, over mutual TLS with certificates of the
platform CA and with tokens: granted clients get the provider's answer; ungranted,
revoked and expired ones are refused; the exchanges reach the ledger."""

import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _manage(platform, code: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "shell", "-c", code],
                         env=platform["env"], capture_output=True, text=True, timeout=120,
                         check=True)
    return out.stdout.strip()


def _tls_client(platform, client: dict | None) -> httpx.Client:
    """Trusts the platform's server certificate; presents the client's, if any."""
    context = ssl.create_default_context(
        cafile=str(Path(platform["home"]) / "keys" / "tls-cert.pem"))
    if client:
        context.load_cert_chain(client["cert"], client["key"])
    return httpx.Client(verify=context, timeout=20)


def _wait_for_the_gateway(platform) -> None:
    """The gateway and the demo's providers are processes of their own."""
    deadline = time.monotonic() + 60
    health = f"http://127.0.0.1:{platform['env']['SAHAB_EXCHANGE_PORT']}/healthz"
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the exchange gateway did not start")


def test_mutual_tls_and_tokens_at_the_gateway(platform, tmp_path):
    _wait_for_the_gateway(platform)
    exchange = platform["demo"]["exchange"]
    clients = {c["subsystem"]: c for c in exchange["clients"]}
    tls_base = platform["demo"]["urls"]["exchange_tls"].replace(
        "127.0.0.1:8443", f"127.0.0.1:{platform['env']['SAHAB_EXCHANGE_TLS_PORT']}")
    for call in exchange["calls"]:
        url = tls_base + call["url"].split("/r1/", 1)[1]
        with _tls_client(platform, clients[call["client"]]) as http:
            response = http.get(url, headers={"X-Road-Client": call["client"]})
        assert (response.status_code == 200) == call["granted"], (call, response.text)
        if not call["granted"]:
            assert response.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
    granted = next(c for c in exchange["calls"] if c["granted"])
    url = tls_base + granted["url"].split("/r1/", 1)[1]
    with _tls_client(platform, None) as http:  # no certificate: the token still works
        token = clients[granted["client"]]["token"]
        assert http.get(url, headers={"X-Road-Client": granted["client"],
                                      "Authorization": f"Bearer {token}"}).status_code == 200
        assert http.get(url, headers={"X-Road-Client": granted["client"]}).status_code == 401
    with httpx.Client(timeout=20) as http:  # the plain HTTP listener: tokens
        assert http.get(granted["url"], headers={
            "X-Road-Client": granted["client"], "Authorization": f"Bearer {token}"}
        ).status_code == 200

    # a revoked certificate, then an expired one, are refused
    _manage(platform, f"""
from sahab.directory.selectors import SYSTEM
from sahab.exchange import services
from sahab.exchange.models import ClientCertificate
cert = ClientCertificate.objects.get(subsystem__code="{granted['client'].split('/')[3]}")
services.revoke_certificate(actor=SYSTEM, certificate=cert, reason="test")
""")
    with _tls_client(platform, clients[granted["client"]]) as http:
        revoked = http.get(url, headers={"X-Road-Client": granted["client"]})
    assert revoked.status_code == 401
    expired_dir = tmp_path / "expired"
    expired_dir.mkdir()
    _manage(platform, f"""
import datetime as dt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sahab.directory.selectors import SYSTEM
from sahab.exchange import services
from sahab.exchange.models import Subsystem
key = ec.generate_private_key(ec.SECP256R1())
csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
    [x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, hashes.SHA256())
subsystem = Subsystem.objects.get(code="{granted['client'].split('/')[3]}")
record = services.issue_certificate(
    actor=SYSTEM, subsystem=subsystem, days=1,
    csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
    not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
open("{expired_dir}/c.pem", "w").write(record.pem)
open("{expired_dir}/c.key", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
""")
    expired = {"cert": str(expired_dir / "c.pem"), "key": str(expired_dir / "c.key")}
    with _tls_client(platform, expired) as http:
        try:
            status = http.get(url, headers={"X-Road-Client": granted["client"]}).status_code
        except httpx.HTTPError:  # refused in the TLS handshake
            status = "handshake refused"
    assert status in (401, "handshake refused")

    deadline = time.monotonic() + 20  # the worker puts the message log into the ledger
    while time.monotonic() < deadline:
        logged = _manage(platform, "from sahab.exchange.models import Message; print("
                                   "Message.objects.filter(ledger_index__isnull=True).count(),"
                                   " Message.objects.count())")
        pending, total = map(int, logged.split()[-2:])
        if pending == 0 and total >= len(exchange["calls"]):
            break
        time.sleep(1)
    assert pending == 0 and total >= len(exchange["calls"])
