"""PAdES signatures of the platform's official documents (pyHanko), and their certificates.

Each document is signed by the certificate of the person who took the decision it
records (or by the platform's seal for what the platform does by itself, such as the
automatic opening of bids), so that anyone can check it with pyHanko or a PDF reader.

* **Demo** (no setting): the platform's document CA (``SAHAB_HOME/keys/document-ca.pem``,
  ECDSA P-256 — accepted by PDF readers, unlike Ed25519 — key and certificate in one file
  readable by its owner only) issues each signing agent a certificate with their name and
  administration on first use; the agent's key is kept beside it under
  ``SAHAB_HOME/keys/document-signers/`` (0600). ``trust_roots_pem()`` is the public
  certificate verifiers trust.
* **Production**: the national CA (e.g. TunTrust) issues the certificates.
  ``SAHAB_DOCUMENT_SIGNING_PKCS12_DIR`` names a directory holding, for each signing agent,
  ``<username>.p12`` with its passphrase in ``<username>.pass`` (and ``platform.p12`` for
  the platform's seal); ``SAHAB_DOCUMENT_SIGNING_TRUST_ROOTS`` is a PEM file of the
  national CA's root and issuing certificates, published to verifiers instead of the demo
  CA's. Keys in a smart card or an HSM (PKCS#11) are documented in docs/procurement.md but
  not wired in: set ``SAHAB_DOCUMENT_SIGNING_PKCS11_MODULE`` and the platform refuses to
  sign rather than fall back to files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from sahab.core import certs
from sahab.core.errors import Conflict, CoreError, NotFound
from sahab.core.keys import keys_dir, write_private_once

CA_FILE = "document-ca.pem"
SIGNERS_DIR = "document-signers"
PLATFORM = "platform"  # the key name of the platform's own seal
_KEY_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,150}")


@dataclass(frozen=True)
class Signatory:
    """Who signs: ``key`` names their key (``user-<id>`` or ``platform`` in the demo, the
    username or ``platform`` in the PKCS#12 directory); the rest goes into the demo
    certificate and the signature's name."""

    key: str
    name: str
    organization: str
    username: str = ""


@dataclass(frozen=True)
class Validation:
    """What pyHanko found when validating a document's signatures: the last one's
    findings, and the earlier ones (a contract signed by the buyer, then countersigned by
    the supplier in an incremental update) each checked the same way."""

    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str
    signed_at: dt.datetime | None
    earlier: tuple[Validation, ...] = ()
    unchanged_after: bool = True  # only signatures were added after this one

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and self.covers_whole_file and \
            all(e.intact and e.valid and e.trusted and e.unchanged_after
                for e in self.earlier)

    @property
    def signers(self) -> list[str]:
        """Every signer, in the order they signed."""
        return [e.signer for e in self.earlier] + [self.signer]


# A document is signed once (its author), or twice (a contract: the buyer, then the
# supplier's countersignature); anything else was not made by the platform.
MAX_SIGNATURES = 2


def _ca_path() -> Path:
    return keys_dir() / CA_FILE


def demo_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The demo document CA, created on first use."""
    path = _ca_path()
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certs.self_signed_ca(key, certs.name("sahab demo document CA"))
        write_private_once(path, certs.key_pem(key) + certs.pem(cert))
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate(data)


def trust_roots_pem() -> bytes:
    """The certificates a verifier trusts: the national CA's when configured, else the demo
    CA's (created if missing)."""
    roots = getattr(settings, "DOCUMENT_SIGNING_TRUST_ROOTS", "")
    if roots:
        return Path(roots).read_bytes()
    return certs.pem(demo_ca()[1])


def _subject(signatory: Signatory) -> x509.Name:
    return certs.name(signatory.name[:64] or signatory.key,
                      signatory.organization[:64] or "sahab")


def _demo_credentials(signatory: Signatory) -> tuple[bytes, bytes]:
    """The signatory's key and certificate (PEM), issued by the demo CA; issued again when
    their name or administration changed since."""
    if not _KEY_NAME.fullmatch(signatory.key):
        raise NotFound(CoreError.SIGNING_KEY_NAME_REFUSED, name=repr(signatory.key))
    path = keys_dir() / SIGNERS_DIR / f"{signatory.key}.pem"
    subject = _subject(signatory)
    if path.exists():
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificate(data)
        now = dt.datetime.now(dt.UTC)
        if cert.subject == subject and now < cert.not_valid_after_utc - dt.timedelta(days=1):
            return data, certs.pem(cert)
        path.unlink()
    ca_key, ca_cert = demo_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certs.issue(ca_key, ca_cert, subject=subject, public_key=key.public_key(),
                       days=730, extensions=[(certs.key_usage(signer=True), True)])
    write_private_once(path, certs.key_pem(key) + certs.pem(cert))
    data = path.read_bytes()
    return data, certs.pem(x509.load_pem_x509_certificate(data))


def _pyhanko_signer(signatory: Signatory):
    """The pyHanko signer of ``signatory``: PKCS#12 from the national CA in production,
    the demo CA's certificate otherwise."""
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    if getattr(settings, "DOCUMENT_SIGNING_PKCS11_MODULE", ""):
        raise Conflict(CoreError.SIGNING_PKCS11_UNAVAILABLE)
    directory = getattr(settings, "DOCUMENT_SIGNING_PKCS12_DIR", "")
    if directory:
        name = PLATFORM if signatory.key == PLATFORM else signatory.username
        if not _KEY_NAME.fullmatch(name or ""):
            raise NotFound(CoreError.SIGNER_WITHOUT_CERTIFICATE)
        p12 = Path(directory) / f"{name}.p12"
        if not p12.exists():
            raise NotFound(CoreError.SIGNING_CERTIFICATE_MISSING, name=name, file=p12.name)
        passphrase = Path(directory) / f"{name}.pass"
        secret = passphrase.read_bytes().strip() if passphrase.exists() else None
        signer = signers.SimpleSigner.load_pkcs12(str(p12), passphrase=secret)
        if signer is None:
            raise Conflict(CoreError.SIGNING_CERTIFICATE_UNREADABLE, file=p12.name)
        return signer
    key_pem, cert_pem = _demo_credentials(signatory)
    ca = _asn1(demo_ca()[1])
    return signers.SimpleSigner(
        signing_cert=_asn1(x509.load_pem_x509_certificate(cert_pem)),
        signing_key=load_private_key_from_pemder_data(key_pem, None),
        cert_registry=SimpleCertificateStore.from_certs([ca]))


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The same certificate as pyHanko's library (asn1crypto) holds it."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(pdf: bytes, signatory: Signatory, *, reason: str, location: str = "Tunis",
             field_name: str = "Signature") -> tuple[bytes, str]:
    """``pdf`` signed (PAdES B-B, SHA-256) by ``signatory`` in the signature field
    ``field_name`` (an already signed ``pdf`` gets a further signature in an incremental
    update, the earlier ones intact); returns the signed file and the PEM of the
    certificate it was signed with."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _pyhanko_signer(signatory)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason, location=location, name=signatory.name or None)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    signed = signers.PdfSigner(meta, signer=signer).sign_pdf(writer).getvalue()
    cert = x509.load_der_x509_certificate(signer.signing_cert.dump())
    return signed, certs.pem(cert).decode()


def validate(pdf: bytes, trust_roots: bytes | None = None) -> Validation:
    """Validate the signatures of ``pdf`` against ``trust_roots`` (PEM; the platform's
    verifiers' roots by default), as ``pyhanko sign validate --trust`` does: the last must
    cover the whole file; an earlier one must cover its revision, with nothing but
    signatures added after it."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    roots = [_asn1(c) for c in x509.load_pem_x509_certificates(trust_roots or trust_roots_pem())]
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    signatures = reader.embedded_signatures
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise Conflict(CoreError.SIGNATURE_COUNT, count=len(signatures))
    found = []
    for signature in signatures:
        status = validate_pdf_signature(signature, ValidationContext(trust_roots=roots))
        found.append(Validation(
            intact=bool(status.intact), valid=bool(status.valid),
            trusted=bool(status.trusted),
            covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
            signer=status.signing_cert.subject.human_friendly,
            signed_at=status.signer_reported_dt,
            unchanged_after=bool(status.docmdp_ok)))
    last = found[-1]
    return Validation(last.intact, last.valid, last.trusted, last.covers_whole_file,
                      last.signer, last.signed_at, earlier=tuple(found[:-1]))


def fingerprint(certificate_pem: str) -> str:
    """SHA-256 of a certificate's DER form, as PDF readers and pyHanko show it."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

