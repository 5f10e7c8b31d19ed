"""Demo data of the exchange pillar: the ministry of the interior's civil registry and the
ministry of finance's tax-status service (the demo's provider systems, see
demo_providers, on hosts a platform administrator registered for each ministry), client
systems of other administrations with and without grants, and their gateway tokens and
certificates in demo.json."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from sahab.core import keys
from sahab.directory.models import Administration
from sahab.directory.selectors import SYSTEM
from sahab.exchange import services
from sahab.exchange.models import ClientToken, Grant, ProviderHost, Service, Subsystem

PROVIDERS = [  # (administration, subsystem, name, service, service name, path, example)
    ("MI", "ETAT-CIVIL", "Registre national de l'état civil", "personnes",
     "Recherche de personnes par CIN", "etat-civil/personnes", "08123456"),
    ("MF", "FISCALITE", "Système d'information fiscal", "attestations",
     "Attestation de situation fiscale", "fiscalite/attestations", "1402317K"),
]
CLIENTS = [("MS", "DOSSIER-PATIENT", "Dossier patient informatisé"),
           ("CNI", "PORTAIL-CITOYEN", "Portail des e-services"),
           ("MF", "DOUANE", "Système douanier")]
# (client, service, legal basis, purpose, approved?)
GRANTS = [  # (client, service, legal basis, purpose, approved?, endpoints)
    ("TN/GOV/MS/DOSSIER-PATIENT", "TN/GOV/MI/ETAT-CIVIL/personnes",
     "Loi n° 2004-63 portant sur la protection des données, art. 13",
     "Vérifier l'identité des patients", True, [{"method": "GET", "path": "/*"}]),
    ("TN/GOV/CNI/PORTAIL-CITOYEN", "TN/GOV/MF/FISCALITE/attestations",
     "Décret gouvernemental n° 2020-31 relatif à l'administration électronique",
     "Délivrer l'attestation fiscale en ligne", True, []),
    ("TN/GOV/MF/DOUANE", "TN/GOV/MI/ETAT-CIVIL/personnes",
     "Code des douanes, art. 50", "Contrôle des voyageurs", False, []),
]


def _openapi(title: str, parameter: str, description: str) -> str:
    import json

    return json.dumps({
        "openapi": "3.0.3", "info": {"title": title, "version": "1.0"},
        "paths": {f"/{{{parameter}}}": {"get": {
            "summary": description, "parameters": [
                {"name": parameter, "in": "path", "required": True,
                 "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The record"},
                          "404": {"description": "Unknown"}}}}}}, ensure_ascii=False)


OPENAPI = {"personnes": _openapi("Recherche de personnes", "cin",
                                 "Une personne par numéro de carte d'identité"),
           "attestations": _openapi("Attestation de situation fiscale", "matricule",
                                    "La situation fiscale d'un contribuable")}


def _subsystem(code: str, name: str, member: str) -> Subsystem:
    administration = Administration.objects.get(code=member)
    existing = Subsystem.objects.filter(administration=administration, code=code).first()
    return existing or services.register_subsystem(actor=SYSTEM, administration=administration,
                                                   code=code, name=name)


def _by_identifier(identifier: str):
    _, _, member, subsystem, *service = identifier.split("/")
    if service:
        return Service.objects.get(subsystem__administration__code=member,
                                   subsystem__code=subsystem, code=service[0])
    return Subsystem.objects.get(administration__code=member, code=subsystem)


def _client_certificate(subsystem: Subsystem) -> tuple[Path, Path]:
    """A key and a certificate of the platform CA for a demo client, as files."""
    folder = settings.SAHAB_HOME / "exchange" / "clients"
    cert_path = folder / f"{subsystem.administration.code}-{subsystem.code}.pem"
    key_path = cert_path.with_suffix(".key")
    if cert_path.exists() and key_path.exists() and services.subsystem_for_certificate(
            x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
                serialization.Encoding.DER)) == subsystem:
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, subsystem.identifier)]))
        .sign(key, hashes.SHA256()))
    record = services.issue_certificate(
        actor=SYSTEM, subsystem=subsystem,
        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())
    folder.mkdir(parents=True, exist_ok=True)
    key_path.unlink(missing_ok=True)
    keys._write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cert_path.write_text(record.pem)
    return cert_path, key_path


def load(previous: dict, data: dict) -> None:
    if Administration.objects.filter(code__in=["MI", "MF", "MS", "CNI"]).count() != 4:
        return
    base = settings.PUBLIC_URL.rstrip("/")
    providers = f"https://127.0.0.1:{settings.EXCHANGE_DEMO_PORT}"
    for member, code, name, service, service_name, folder, _ in PROVIDERS:
        administration = Administration.objects.get(code=member)
        prefix = "/" + folder.split("/")[0]
        if not ProviderHost.objects.filter(administration=administration, host="127.0.0.1",
                                           port=settings.EXCHANGE_DEMO_PORT,
                                           path_prefix=prefix, revoked_at__isnull=True):
            services.register_provider_host(
                actor=SYSTEM, administration=administration, host="127.0.0.1",
                port=settings.EXCHANGE_DEMO_PORT, path_prefix=prefix, allow_internal=True,
                note="The demo's provider systems (sahab exchange demo-providers)")
        subsystem = _subsystem(code, name, member)
        existing = subsystem.services.filter(code=service).first()
        if existing is None:
            services.register_service(
                actor=SYSTEM, subsystem=subsystem, code=service, name=service_name,
                base_url=f"{providers}/{folder}", owner=f"DSI {member}",
                classification="confidential", timeout_seconds=10, openapi=OPENAPI[service])
        elif existing.base_url != f"{providers}/{folder}" or not existing.openapi:
            services.update_service(actor=SYSTEM, service=existing,
                                    base_url=f"{providers}/{folder}", openapi=OPENAPI[service])
    clients = {s.identifier: s for s in (_subsystem(code, name, member)
                                         for member, code, name in CLIENTS)}
    for client, service, legal_basis, purpose, approved, endpoints in GRANTS:
        if Grant.objects.filter(client=clients[client], service=_by_identifier(service)).exists():
            continue
        grant = services.request_grant(actor=SYSTEM, client=clients[client],
                                       service=_by_identifier(service), legal_basis=legal_basis,
                                       purpose=purpose, endpoints=endpoints)
        if approved:
            services.decide_grant(actor=SYSTEM, grant=grant, approve=True, rate_per_minute=600)
    known = {c["subsystem"]: c["token"] for c in previous.get("exchange", {}).get("clients", [])}
    entries = []
    for identifier, subsystem in clients.items():
        token = known.get(identifier)
        if token is None or services.subsystem_for_token(token) != subsystem:
            ClientToken.objects.filter(subsystem=subsystem, name="demo").delete()
            token = services.issue_client_token(actor=SYSTEM, subsystem=subsystem,
                                                name="demo")[1]
        cert, key = _client_certificate(subsystem)
        entries.append({"subsystem": identifier, "token": token, "cert": str(cert),
                        "key": str(key)})
    calls = []
    gateway = settings.EXCHANGE_URL.rstrip("/")
    for client in clients.values():
        for member, code, _, service, _, _, example in PROVIDERS:
            identifier = f"TN/GOV/{member}/{code}/{service}"
            granted = Grant.objects.filter(client=client, service=_by_identifier(identifier),
                                           status=Grant.Status.APPROVED).exists()
            calls.append({"client": client.identifier, "granted": granted,
                          "url": f"{gateway}/r1/{identifier}/{example}"})
    data["exchange"] = {"clients": entries, "calls": calls}
    data.setdefault("urls", {})["exchange"] = f"{gateway}/r1/"
    data["urls"]["exchange_tls"] = f"https://127.0.0.1:{settings.EXCHANGE_TLS_PORT}/r1/"
    data["urls"]["exchange_registry"] = f"{base}/exchange/registry/"
