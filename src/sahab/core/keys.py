"""The platform's own keys and certificate, kept under ``SAHAB_HOME``.

``sahab init`` creates them once; they are never overwritten, because the ledger's
signing key identifies the log for every verifier that already trusts it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from django.conf import settings


def keys_dir() -> Path:
    return settings.SAHAB_HOME / "keys"


def ledger_key_path() -> Path:
    return keys_dir() / "ledger-ed25519.pem"


def witness_key_path() -> Path:
    return keys_dir() / "witness-ed25519.pem"


def opening_key_path() -> Path:
    return keys_dir() / "bid-opening.key"


def ensure_opening_key() -> bool:
    """Create the AES-256 key that seals every tender's bid-opening key."""
    path = opening_key_path()
    if path.exists():
        return False
    _write_private(path, os.urandom(32))
    return True


def load_opening_key() -> bytes:
    key = opening_key_path().read_bytes()
    if len(key) != 32:
        raise ValueError(f"{opening_key_path()} is not a 32-byte key")
    return key


def secrets_key_path() -> Path:
    return keys_dir() / "secrets.key"


def ensure_secrets_key() -> bool:
    """Create the AES-256 key that seals stored credentials (brokers, bindings)."""
    path = secrets_key_path()
    if path.exists():
        return False
    _write_private(path, os.urandom(32))
    return True


def load_secrets_key() -> bytes:
    key = secrets_key_path().read_bytes()
    if len(key) != 32:
        raise ValueError(f"{secrets_key_path()} is not a 32-byte key")
    return key


def osb_password_path() -> Path:
    return keys_dir() / "osb-password"


def ensure_osb_password() -> bool:
    """Create the HTTP basic password of the reference service broker."""
    import secrets

    path = osb_password_path()
    if path.exists():
        return False
    _write_private(path, secrets.token_urlsafe(24).encode())
    return True


def load_osb_password() -> str:
    return osb_password_path().read_text().strip()


def tls_cert_path() -> Path:
    return keys_dir() / "tls-cert.pem"


def tls_key_path() -> Path:
    return keys_dir() / "tls-key.pem"


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, refusing to replace one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_private_once(path: Path, data: bytes) -> None:
    """Write a private file whole, then put it in place unless another process did first
    (its file wins): a reader never sees a half-written key and certificate."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_private(partial, data)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        partial.unlink()


def ensure_ledger_key() -> bool:
    """Create the Ed25519 ledger signing key if missing; True when it was created."""
    return _ensure_ed25519(ledger_key_path())


def ensure_witness_key() -> bool:
    """Create the key this installation cosigns other logs' checkpoints with."""
    return _ensure_ed25519(witness_key_path())


def _ensure_ed25519(path: Path) -> bool:
    if path.exists():
        return False
    key = ed25519.Ed25519PrivateKey.generate()
    _write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return True


def load_ledger_key() -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(ledger_key_path().read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def ensure_tls_certificate(hostnames: list[str] | None = None) -> bool:
    """Create a self-signed TLS certificate (ECDSA P-256) for the local listeners."""
    if tls_cert_path().exists() and tls_key_path().exists():
        return False
    names = hostnames or ["localhost"]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sahab"),
        x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
    ])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    tls_key_path().unlink(missing_ok=True)
    _write_private(tls_key_path(), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    tls_cert_path().write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True
