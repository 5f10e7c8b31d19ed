"""DKIM for the hosted domains: keys, DNS records, signing and verification (dkimpy).

Every domain signs twice, with Ed25519 (RFC 8463) and RSA-SHA256 (RFC 6376), so that
verifiers which know only RSA still find a signature they can check. Verification of
hosted domains' signatures uses the keys in the database — the same records the
operators publish in DNS — and other domains' through DNS when ``SAHAB_MAIL_DNS`` is on.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sahab.mail import resolver

# What the signature covers: the headers a reader relies on (RFC 6376 §5.4.1).
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to",
                  b"in-reply-to", b"references", b"mime-version", b"content-type",
                  b"content-transfer-encoding", b"sender", b"x-sahab-letter"]
# Signed once more than they appear (RFC 6376 §8.15, "oversigning"): a field of these
# added to the signed message on its way breaks the signature, instead of being shown
# above the signed one by readers that take the first.
OVERSIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to",
                      b"sender", b"x-sahab-letter"]
HEADER_LIST = SIGNED_HEADERS + OVERSIGNED_HEADERS


@dataclass(frozen=True)
class DomainKeys:
    """Everything needed to sign for one domain (private keys unsealed)."""

    domain: str
    selector: str
    rsa_pem: bytes
    ed25519_seed_b64: bytes
    rsa_public_b64: str
    ed25519_public_b64: str

    @property
    def rsa_selector(self) -> str:
        return f"{self.selector}r"

    @property
    def ed25519_selector(self) -> str:
        return f"{self.selector}e"


@functools.lru_cache(maxsize=256)
def _rsa_key(n: int, e: int, d: int, p: int, q: int) -> rsa.RSAPrivateKey:
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, n))
    return numbers.private_key()


def _rsa_sign_with_cryptography(hash_obj, private_key: dict) -> bytes:
    """RSASSA-PKCS1-v1_5 by OpenSSL (through cryptography) for dkimpy's signer.

    dkimpy computes the signature with Python's ``pow`` — 9 ms a message on these
    machines, under the GIL. dkimpy keeps doing all of DKIM (canonicalisation, header
    hashing, the header field); only this primitive is handed to OpenSSL. Signing
    with ``rsa-sha256`` only, as ``sign`` below does.
    """
    key = _rsa_key(private_key["modulus"], private_key["publicExponent"],
                   private_key["privateExponent"], private_key["prime1"],
                   private_key["prime2"])
    return key.sign(hash_obj.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign_with_cryptography
# dkimpy parses the PEM key (ASN.1, in Python) at every signature: keep the parsed keys.
dkim.parse_pem_private_key = functools.lru_cache(maxsize=256)(dkim.parse_pem_private_key)


def generate_keys() -> tuple[bytes, str, bytes, str]:
    """New keys: (RSA PKCS#8 PEM, RSA public b64, Ed25519 seed, Ed25519 public b64)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    rsa_public = base64.b64encode(rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    ed_public = base64.b64encode(ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    return rsa_pem, rsa_public, seed, ed_public


def rsa_record(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def ed25519_record(public_b64: str) -> str:
    return f"v=DKIM1; k=ed25519; p={public_b64}"


def sign(message: bytes, keys: DomainKeys) -> bytes:
    """The two DKIM-Signature header fields to put in front of ``message`` (the message
    is parsed once for both; neither signature covers the other)."""
    signer = dkim.DKIM(message, linesep=b"\r\n")
    ed = signer.sign(keys.ed25519_selector.encode(), keys.domain.encode(),
                     keys.ed25519_seed_b64, include_headers=HEADER_LIST,
                     signature_algorithm=b"ed25519-sha256")
    rsa_sig = signer.sign(keys.rsa_selector.encode(), keys.domain.encode(), keys.rsa_pem,
                          include_headers=HEADER_LIST, signature_algorithm=b"rsa-sha256")
    return ed + rsa_sig


@dataclass(frozen=True)
class Result:
    """One signature's verdict, as Authentication-Results reports it."""

    verdict: str  # pass, fail, neutral, temperror, permerror
    domain: str = ""
    selector: str = ""
    algorithm: str = ""

    def method(self) -> str:
        if not self.domain:
            return f"dkim={self.verdict}"
        return (f"dkim={self.verdict} header.d={self.domain} header.s={self.selector} "
                f"header.a={self.algorithm}")


def verify(message: bytes, records: dict[str, str]) -> list[Result]:
    """Check every DKIM signature of ``message``.

    ``records`` maps ``<selector>._domainkey.<domain>`` of hosted domains to their TXT
    record; other names are looked up in DNS only when ``SAHAB_MAIL_DNS`` is true.
    """
    missing: set[str] = set()

    def dnsfunc(name, timeout=5):
        key = (name.decode() if isinstance(name, bytes) else name).rstrip(".").lower()
        if key in records:
            return records[key].encode()
        if resolver.enabled():
            resolver.configure()
            return dkim.dnsplug.get_txt(name, timeout=timeout)
        missing.add(key)
        return None

    try:
        verifier = dkim.DKIM(message)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    except Exception:  # unparsable headers: nothing we can say about a signature
        return [Result("permerror")]
    if count == 0:
        return [Result("none")]
    results = []
    for idx in range(count):
        missing.clear()
        try:
            verdict = "pass" if verifier.verify(idx=idx, dnsfunc=dnsfunc) else "fail"
        except Exception:  # dkimpy raises several kinds of error on hostile input
            verdict = "permerror"
        if verdict != "pass" and missing:
            verdict = "neutral"  # a key we may not look up: not checked, not failed
        sig = verifier.signature_fields or {}
        results.append(Result(verdict, _field(sig, b"d"), _field(sig, b"s"), _field(sig, b"a")))
    return results


def _field(signature: dict, name: bytes) -> str:
    return (signature.get(name) or b"").decode(errors="replace")


def authentication_results(host: str, methods: list[str], auth_user: str = "") -> bytes:
    """An Authentication-Results header field (RFC 8601) for the results."""
    methods = list(methods)
    if auth_user:
        methods.insert(0, f"auth=pass smtp.auth={auth_user}")
    separator = ";\r\n\t"
    return f"Authentication-Results: {host};\r\n\t{separator.join(methods)}\r\n".encode()
