"""X.509 certificates issued by the platform's own authorities: the exchange's client CA,
the demo document-signing CA and the demo company CA (each replaced in production by the
national CA where the law asks for one). One builder, so that every certificate the
platform issues carries the same constraints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

# A certificate is valid from a few minutes back, so that a verifier whose clock is a
# little behind does not refuse it.
CLOCK_SKEW = dt.timedelta(minutes=5)
Extension = tuple[x509.ExtensionType, bool]  # the extension and whether it is critical


def name(common_name: str, organization: str = "sahab", *,
         unit: str = "", serial_number: str = "") -> x509.Name:
    """A subject in Tunisia: country, organisation, then the optional unit, common name
    and serial number (a company's matricule fiscal)."""
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "TN"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64])]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit[:64]))
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))
    if serial_number:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    return x509.Name(attributes)


def key_usage(*, signer: bool) -> x509.KeyUsage:
    """A signer's key signs and commits to content; a CA's signs certificates and CRLs."""
    return x509.KeyUsage(digital_signature=signer, content_commitment=signer,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=not signer, crl_sign=not signer,
                         encipher_only=False, decipher_only=False)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    # EdDSA signs the message itself; the other algorithms sign its SHA-256
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) \
        else hashes.SHA256()


def self_signed_ca(key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, *,
                   days: int = 3650) -> x509.Certificate:
    """A root that issues end certificates only (path length 0)."""
    public: CertificateIssuerPublicKeyTypes = key.public_key()
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(signer=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, _hash_for(key)))


def issue(ca_key: CertificateIssuerPrivateKeyTypes, ca_cert: x509.Certificate, *,
          subject: x509.Name, public_key: CertificatePublicKeyTypes, days: int,
          extensions: Iterable[Extension] = (),
          not_before: dt.datetime | None = None) -> x509.Certificate:
    """An end certificate for ``public_key`` signed by the CA, naming the CA's key."""
    start = not_before or dt.datetime.now(dt.UTC) - CLOCK_SKEW
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                              critical=True))
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # a CA created before its certificates carried one
        pass
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(ca_key, _hash_for(ca_key))


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    """A private key as unencrypted PKCS#8 PEM (the files holding it are 0600)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
