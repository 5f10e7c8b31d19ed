"""The platform's certificate authority for client subsystems (mutual TLS at the gateway).

An ECDSA P-256 CA under ``SAHAB_HOME/keys``; client certificates are issued from a
certificate signing request, with a subject the platform sets (the subsystem identifier
as common name, the administration code as organisation), never the requester. The
revocation list is re-signed on every revocation.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from sahab.core import certs, keys
from sahab.core.errors import InvalidInput
from sahab.exchange.errors import ExchangeError

CA_NAME = certs.name("sahab exchange CA")
CLIENT_AUTH = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)


def ca_key_path():
    return keys.keys_dir() / "exchange-ca-key.pem"


def ca_cert_path():
    return keys.keys_dir() / "exchange-ca.pem"


def ensure_ca() -> bool:
    """Create the CA key and its self-signed certificate (ten years) once."""
    if ca_cert_path().exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certs.self_signed_ca(key, CA_NAME)
    keys._write_private(ca_key_path(), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ca_cert_path().write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key(ca_key_path().read_bytes(), password=None)
    return key, x509.load_pem_x509_certificate(ca_cert_path().read_bytes())


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """A well-formed, self-signed CSR with an acceptable key, or ``InvalidInput``."""
    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > 20_000:
        raise InvalidInput(ExchangeError.CSR_TOO_LARGE)
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise InvalidInput(ExchangeError.CSR_NOT_PEM) from None
    if not csr.is_signature_valid:
        raise InvalidInput(ExchangeError.CSR_SIGNATURE_INVALID)
    public = csr.public_key()
    acceptable = (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size >= 256
                  ) or (isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048) or \
        isinstance(public, ed25519.Ed25519PublicKey)
    if not acceptable:
        raise InvalidInput(ExchangeError.KEY_TOO_WEAK)
    return csr


def issue(csr: x509.CertificateSigningRequest, *, common_name: str, organisation: str,
          days: int = 365, not_before: dt.datetime | None = None) -> x509.Certificate:
    """A client-authentication certificate for the CSR's key, with the platform's subject."""
    key, ca = _ca()
    return certs.issue(key, ca, subject=certs.name(common_name, organisation),
                       public_key=csr.public_key(), days=days, not_before=not_before,
                       extensions=[CLIENT_AUTH])


def revocation_list(revoked: list[tuple[int, dt.datetime]]) -> bytes:
    """The CRL (DER) of the revoked serial numbers, valid for a day."""
    key, ca = _ca()
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now).next_update(now + dt.timedelta(days=1)))
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def fingerprint(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()


def verify_issued_by_ca(der: bytes) -> x509.Certificate:
    """The certificate, if this CA signed it (the TLS layer checks it too)."""
    _, ca = _ca()
    cert = x509.load_der_x509_certificate(der)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise InvalidInput(ExchangeError.CERTIFICATE_NOT_OURS) from None
    return cert


# --- the gateway's own client certificate ---------------------------------------------
# Providers trust the platform CA and accept only this subject: calls that did not come
# through the gateway (a client subsystem's certificate included) are refused.
GATEWAY_NAME = certs.name("sahab exchange gateway", unit="exchange")


def gateway_key_path():
    return keys.keys_dir() / "exchange-gateway-key.pem"


def gateway_cert_path():
    return keys.keys_dir() / "exchange-gateway.pem"


def ensure_gateway_certificate(days: int = 825) -> bool:
    """The gateway's client-authentication certificate, issued once by the platform CA."""
    if gateway_cert_path().exists() and gateway_key_path().exists():
        return False
    ensure_ca()
    key, ca = _ca()
    gateway_key = ec.generate_private_key(ec.SECP256R1())
    cert = certs.issue(key, ca, subject=GATEWAY_NAME, public_key=gateway_key.public_key(),
                       days=days, extensions=[CLIENT_AUTH])
    gateway_key_path().unlink(missing_ok=True)
    keys._write_private(gateway_key_path(), gateway_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    gateway_cert_path().write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def is_gateway_certificate(der: bytes | None) -> bool:
    """Whether a peer's certificate is the gateway's (issued by this CA, its subject)."""
    if not der:
        return False
    try:
        cert = verify_issued_by_ca(der)
    except (InvalidInput, ValueError):
        return False
    return cert.subject == GATEWAY_NAME
