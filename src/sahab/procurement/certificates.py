"""Certificates of companies' bid-signing keys.

In production the national CA (e.g. TunTrust) issues them: ``SAHAB_PROCUREMENT_CA_ROOTS``
names a PEM file of its root (or issuing) certificates, and a key registers only with a
certificate for that very key issued by one of them. Without that setting (the demo) the
platform's own demo CA (``SAHAB_HOME/keys/company-ca.pem``) issues one at registration.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings

from sahab.core import certs
from sahab.core.errors import InvalidInput
from sahab.core.keys import write_private_once
from sahab.procurement.errors import ProcurementError


def _ca_path() -> Path:
    return settings.SAHAB_HOME / "keys" / "company-ca.pem"


def _demo_ca() -> tuple[ed25519.Ed25519PrivateKey, x509.Certificate]:
    path = _ca_path()
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        cert = certs.self_signed_ca(key, certs.name("sahab demo company CA"))
        write_private_once(path, certs.key_pem(key) + certs.pem(cert))
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    return key, x509.load_pem_x509_certificate(data)  # type: ignore[return-value]


def _raw(key) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def national_roots() -> list[x509.Certificate]:
    path = getattr(settings, "PROCUREMENT_CA_ROOTS", "")
    return x509.load_pem_x509_certificates(Path(path).read_bytes()) if path else []


def certify(*, company_name: str, matricule_fiscal: str, public_key: bytes,
            certificate: str = "") -> str:
    """The PEM certificate of ``public_key``: checked against the national CA when one is
    configured, else issued by the demo CA."""
    roots = national_roots()
    if roots:
        if not certificate:
            raise InvalidInput(ProcurementError.CERTIFICATE_REQUIRED)
        try:
            cert = x509.load_pem_x509_certificate(certificate.encode())
        except ValueError:
            raise InvalidInput(ProcurementError.CERTIFICATE_NOT_PEM) from None
        if not isinstance(cert.public_key(), ed25519.Ed25519PublicKey) or \
                _raw(cert.public_key()) != public_key:
            raise InvalidInput(ProcurementError.CERTIFICATE_OTHER_KEY)
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise InvalidInput(ProcurementError.CERTIFICATE_NOT_CURRENT)
        if any(_issued_by(cert, root) for root in roots):
            return certificate
        raise InvalidInput(ProcurementError.CERTIFICATE_NOT_NATIONAL_CA)
    ca_key, ca_cert = _demo_ca()
    cert = certs.issue(ca_key, ca_cert, days=730,
                       subject=certs.name("", company_name, serial_number=matricule_fiscal),
                       public_key=ed25519.Ed25519PublicKey.from_public_bytes(public_key))
    return certs.pem(cert).decode()
