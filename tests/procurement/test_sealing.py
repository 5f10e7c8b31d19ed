"""The sealed-bid envelope on its own (no database): who can open it, what binds it to its
tender and company, and which bytes are an envelope at all (docs/procurement.md)."""

from __future__ import annotations

import hashlib
import itertools
import math
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sahab.procurement import sealing

# HKDF-SHA256(salt=32 zero bytes, secrets 0..31 then 32..63,
#             info=b"sahab-bid/2 wrap\nocds-x-MF-2026-0001\n1,3"), checked against RFC 5869
WRAP_KEY_ANSWER = "a7b5eb16e7578d444164be0d43edad4790ae7ed6897ec3adec6b1a3cdce2c6d2"


def refused(message: str):
    """The refusal with exactly this message (bidders and the committee read it)."""
    return pytest.raises(sealing.SealError, match=f"^{re.escape(message)}$")


BID = {"lots": {"1": "125000.000", "2": "9800.500"}, "technical": "offre technique"}


def committee(n: int) -> tuple[list[bytes], dict[int, bytes]]:
    """n members' public keys (in position order) and their private keys by position."""
    private = [X25519PrivateKey.generate() for _ in range(n)]
    return ([sealing.raw_public(k) for k in private],
            {p: sealing.raw_private(k) for p, k in enumerate(private, start=1)})


def sealed(n: int = 3, t: int = 2, *, tender: str = "ocds-x-MF-2026-0001", company: int = 7,
           content: dict = BID, signer: Ed25519PrivateKey | None = None):
    public, private = committee(n)
    signer = signer or Ed25519PrivateKey.generate()
    data = sealing.seal(tender=tender, company=company, committee=public, threshold=t,
                        content=content, signing_key=signer)
    return data, private, signer


def resigned(envelope: sealing.Envelope, signer: Ed25519PrivateKey) -> sealing.Envelope:
    envelope.key = sealing.fingerprint(sealing.raw_public(signer))
    envelope.signature = signer.sign(envelope.signed_bytes())
    return sealing.parse(envelope.to_bytes())


@pytest.mark.parametrize(("n", "t"), [(1, 1), (3, 2), (4, 3), (5, 5)])
def test_every_threshold_subset_opens_and_no_smaller_one_does(n, t):
    data, private, _ = sealed(n, t)
    envelope = sealing.parse(data)
    assert len(envelope.wraps) == math.comb(n, t)
    for members in itertools.combinations(range(1, n + 1), t):
        assert sealing.open_envelope(envelope, {p: private[p] for p in members}) == BID
    for members in itertools.combinations(range(1, n + 1), t - 1):
        with refused("fewer opening keys are released than the committee's threshold"):
            sealing.open_envelope(envelope, {p: private[p] for p in members})


def test_more_keys_than_the_threshold_open_too():
    data, private, _ = sealed(4, 2)
    assert sealing.open_envelope(sealing.parse(data), private) == BID


def test_keys_of_another_committee_do_not_open_it():
    data, _, _ = sealed(3, 2)
    _, others = committee(3)
    with refused("the envelope does not open with the committee's keys"):
        sealing.open_envelope(sealing.parse(data), others)


def test_one_wrong_key_among_the_released_ones_does_not_open_its_wraps():
    data, private, _ = sealed(2, 2)
    _, others = committee(2)
    with refused("the envelope does not open with the committee's keys"):
        sealing.open_envelope(sealing.parse(data), {1: private[1], 2: others[2]})


def test_a_bid_copied_by_a_competitor_under_its_own_name_does_not_open():
    """A company that copies another's envelope, puts its own number and key in it and
    signs it gets a valid signature, but the content is bound to the first company."""
    data, private, _ = sealed(company=7)
    envelope = sealing.parse(data)
    envelope.company = 8
    thief = Ed25519PrivateKey.generate()
    copy = resigned(envelope, thief)
    copy.verify(sealing.raw_public(thief))
    with refused("the envelope does not open with the committee's keys"):
        sealing.open_envelope(copy, private)


def test_an_envelope_moved_to_another_tender_does_not_open():
    data, private, signer = sealed(tender="ocds-x-MF-2026-0001")
    envelope = sealing.parse(data)
    envelope.tender = "ocds-x-MF-2026-0002"
    with refused("the envelope does not open with the committee's keys"):
        sealing.open_envelope(resigned(envelope, signer), private)


def test_wraps_are_bound_to_their_members():
    """Relabelling a wrap as belonging to other members does not let those members in."""
    data, private, signer = sealed(3, 2)
    envelope = sealing.parse(data)
    (_, nonce, wrapped), *_ = envelope.wraps  # the wrap of members 1 and 2
    envelope.wraps = [((2, 3), nonce, wrapped)]
    with refused("the envelope does not open with the committee's keys"):
        sealing.open_envelope(resigned(envelope, signer), {2: private[2], 3: private[3]})


def test_the_signature_binds_every_line_and_the_key():
    data, _, signer = sealed()
    public = sealing.raw_public(signer)
    sealing.parse(data).verify(public)
    other = sealing.raw_public(Ed25519PrivateKey.generate())
    with refused('the envelope names another signing key'):
        sealing.parse(data).verify(other)
    for field in ("tender", "company", "ciphertext", "nonce", "wraps"):
        envelope = sealing.parse(data)
        if field == "tender":
            envelope.tender += "9"
        elif field == "company":
            envelope.company += 1
        elif field == "ciphertext":
            envelope.ciphertext = bytes([envelope.ciphertext[0] ^ 1]) + envelope.ciphertext[1:]
        elif field == "nonce":
            envelope.nonce = bytes(12)
        else:
            envelope.wraps = envelope.wraps[:-1]
        with refused("the company's signature does not verify"):
            envelope.verify(public)


def test_a_signature_over_other_bytes_is_refused():
    data, _, signer = sealed()
    envelope = sealing.parse(data)
    envelope.signature = signer.sign(b"something else")
    with refused("the company's signature does not verify"):
        envelope.verify(sealing.raw_public(signer))


def test_the_commitment_is_the_sha256_of_the_exact_bytes():
    data, _, _ = sealed()
    assert sealing.commitment(data) == hashlib.sha256(data).hexdigest()
    assert sealing.parse(data).to_bytes() == data


@pytest.mark.parametrize(("n", "t"), [(3, 0), (3, 4), (0, 0), (10, 2)])
def test_impossible_committees_are_refused_when_sealing(n, t):
    public, _ = committee(n)
    with refused('a committee has 1 to 9 members and a threshold within it'):
        sealing.seal(tender="t", company=1, committee=public, threshold=t, content=BID,
                     signing_key=Ed25519PrivateKey.generate())


def test_nine_members_are_allowed():
    data, private, _ = sealed(9, 9)
    assert sealing.open_envelope(sealing.parse(data), private) == BID


def test_subsets_are_every_combination_in_a_fixed_order():
    assert sealing.subsets(3, 2) == [(1, 2), (1, 3), (2, 3)]
    assert sealing.subsets(4, 4) == [(1, 2, 3, 4)]
    assert sealing.subsets(2, 1) == [(1,), (2,)]


def _lines(data: bytes) -> list[str]:
    return data.decode().split("\n")


def _join(lines: list[str]) -> bytes:
    return "\n".join(lines).encode()


def _edits(data: bytes):
    lines = _lines(data)
    signature = next(i for i, line in enumerate(lines) if line.startswith("signature "))
    not_format, lacking = "not a sahab-bid/2 envelope", \
        "the envelope lacks a line or has an unknown one"
    repeated, by_number = "the line 'tender' is repeated or empty", \
        "the company is named by its number"
    yield "no final newline", data[:-1], not_format
    yield "another format", data.replace(b"sahab-bid/2", b"sahab-bid/1", 1), not_format
    yield "a line repeated", _join([*lines[:2], lines[1], *lines[2:]]), repeated
    yield "a line missing", _join(lines[:1] + lines[2:]), lacking
    yield "an unknown line", _join([*lines[:2], "colour blue", *lines[2:]]), lacking
    yield "an empty value", _join([*lines[:1], "tender ", *lines[2:]]), repeated
    yield "lines reordered", _join([lines[0], lines[2], lines[1], *lines[3:]]), \
        "the envelope is not in its canonical form"
    yield "a company name", _join([lines[0], lines[1], "company ACME", *lines[3:]]), by_number
    yield "a huge company number", _join([lines[0], lines[1], "company " + "9" * 19,
                                          *lines[3:]]), by_number
    yield "a short signature", \
        _join([*lines[:signature], "signature AAAA", *lines[signature + 1:]]), \
        "the signature is not 64 bytes long"
    yield "bad base64", _join([*lines[:signature], "signature ***", *lines[signature + 1:]]), \
        "the signature is not base64"
    yield "a wrap without numbers", data.replace(b"\nwrap 1,2 ", b"\nwrap a,b ", 1), \
        "a wrap names its members by number"
    yield "not ASCII", data.replace(b"tender ", "tender \u00e9".encode(), 1), \
        "an envelope is ASCII text"

    def line(name: str, value: str) -> bytes:
        return _join([value if text.startswith(name + " ") else text for text in lines])

    wrap = next(text for text in lines if text.startswith("wrap "))
    members, nonce, wrapped = wrap.split(" ")[1:]
    short = sealing.b64(bytes(11))
    yield "a short ephemeral key", line("ephemeral", f"ephemeral {sealing.b64(bytes(31))}"), \
        "the ephemeral key is not 32 bytes long"
    yield "a short nonce", line("nonce", f"nonce {short}"), "the nonce is not 12 bytes long"
    yield "a ciphertext not base64", line("ciphertext", "ciphertext %%%"), \
        "the ciphertext is not base64"
    yield "a short wrap nonce", line("wrap", f"wrap {members} {short} {wrapped}"), \
        "a wrap nonce is not 12 bytes long"
    yield "a short wrapped key", line("wrap", f"wrap {members} {nonce} {short}"), \
        "a wrapped key is not 48 bytes long"
    yield "two spaces in a wrap", line("wrap", f"wrap {members}  {nonce} {wrapped}"), \
        "a wrap nonce is not 12 bytes long"


@pytest.mark.parametrize("edit", list(range(19)))
def test_only_the_canonical_encoding_is_an_envelope(edit):
    data, _, _ = sealed()
    _what, changed, message = list(_edits(data))[edit]
    with refused(message):
        sealing.parse(changed)


def test_every_edit_is_tried():
    data, _, _ = sealed()
    assert len(list(_edits(data))) == 19


def test_a_company_number_has_up_to_18_digits():
    data, _, _ = sealed(company=10**17 + 1)
    assert sealing.parse(data).company == 10**17 + 1


def test_envelopes_over_40_mb_are_refused_before_reading(monkeypatch):
    monkeypatch.setattr(sealing, "MAX_ENVELOPE_BYTES", 1000)
    with refused("the envelope is larger than 40 MB"):
        sealing.parse(b"x" * 1001)
    with refused("not a sahab-bid/2 envelope"):  # the limit itself is allowed
        sealing.parse(b"x" * 1000)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_are_an_envelope_or_a_seal_error(data):
    try:
        envelope = sealing.parse(data)
    except sealing.SealError:
        return
    assert envelope.to_bytes() == data


def test_a_sealed_bid_that_is_not_an_object_is_refused(monkeypatch):
    """The opening expects prices per lot: a sealed JSON list is an error, not a crash.
    seal() always seals an object, so its serialiser is made to write a list."""
    public, private = committee(1)
    dumps = sealing.json.dumps
    monkeypatch.setattr(sealing.json, "dumps", lambda content, **kw: dumps([1, 2], **kw))
    data = sealing.seal(tender="t", company=1, committee=public, threshold=1, content={},
                        signing_key=Ed25519PrivateKey.generate())
    monkeypatch.undo()
    with refused('the sealed bid is not a JSON object'):
        sealing.open_envelope(sealing.parse(data), private)


def test_released_keys_must_be_32_bytes():
    with refused('an opening key is 32 bytes'):
        sealing.member_public_key(b"short")
    public, private = committee(1)
    assert sealing.member_public_key(private[1]) == public[0]


def test_a_sealed_bid_that_is_not_json_is_refused(monkeypatch):
    public, private = committee(1)
    monkeypatch.setattr(sealing.json, "dumps", lambda content, **kw: "{prix: 1")
    data = sealing.seal(tender="t", company=1, committee=public, threshold=1, content={},
                        signing_key=Ed25519PrivateKey.generate())
    monkeypatch.undo()
    with refused("the sealed bid is not JSON"):
        sealing.open_envelope(sealing.parse(data), private)


def test_the_wrapping_key_is_the_documented_hkdf():
    """The browser seals with the same construction (static/procurement/seal.js): HKDF-SHA256
    of the members' secrets, salted with the ephemeral key, with the format, the tender and
    the members as info. A known answer pins it, so that neither side drifts alone."""
    secrets = [bytes(range(32)), bytes(range(32, 64))]
    key = sealing._wrap_key(secrets, bytes(32), "ocds-x-MF-2026-0001", (1, 3))
    assert key.hex() == WRAP_KEY_ANSWER
    assert sealing._wrap_key(secrets, bytes(32), "ocds-x-MF-2026-0001", (1, 2)) != key
    assert sealing._wrap_key(secrets, bytes([1]) * 32, "ocds-x-MF-2026-0001", (1, 3)) != key
    assert sealing._wrap_key(secrets[::-1], bytes(32), "ocds-x-MF-2026-0001", (1, 3)) != key


def test_the_sealed_content_is_canonical_json():
    """The bid is serialised with sorted keys, as the browser does, so that the same bid
    gives the same plaintext whatever its keys' order."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    content = {"technical": "offre", "lots": {"2": "9800.500", "1": "125000.000"}}
    data, private, _ = sealed(1, 1, content=content)
    envelope = sealing.parse(data)
    secret = X25519PrivateKey.from_private_bytes(private[1]).exchange(
        X25519PublicKey.from_public_bytes(envelope.ephemeral))
    (members, nonce, wrapped), = envelope.wraps
    key = sealing._wrap_key([secret], envelope.ephemeral, envelope.tender, members)
    bid_key = AESGCM(key).decrypt(nonce, wrapped, envelope.tender.encode())
    plaintext = AESGCM(bid_key).decrypt(envelope.nonce, envelope.ciphertext,
                                        sealing._content_aad(envelope.tender, 7))
    assert plaintext == b'{"lots": {"1": "125000.000", "2": "9800.500"}, "technical": "offre"}'
