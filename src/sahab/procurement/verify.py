"""``sahab procurement verify-opening``: check a tender's opening from public data only.

It needs the platform's web address and the log's verifier key, nothing else (no
database, no installation of sahab's server side). Every ledger entry it relies on is
checked with its receipt (inclusion proof to a checkpoint signed by that key):

* the committee (threshold, public keys) is the one published with the tender;
* at least t members released keys after the deadline, each matching its public key;
* every live bid commitment on the ledger (submitted before tendering closed, not
  withdrawn or replaced) is in the opening report, opened or rejected, and nothing else;
* every opened bid's envelope hashes to its commitment, names this tender, is signed by
  a key that the ledger registered for the company it names before the bid, and decrypts
  with the released keys to the prices the report publishes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import httpx

from sahab.ledger.auditor import AuditFailure, verify_proof_file
from sahab.procurement import sealing


class OpeningFailure(Exception):
    """The opening does not verify; the message says where."""


@dataclass
class Verified:
    reference: str
    opened: list[str] = field(default_factory=list)  # commitments
    rejected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)


class _Public:
    """Reads of the platform's public endpoints, with every ledger entry proven."""

    def __init__(self, url: str, key: str, client: httpx.Client):
        self.url, self.key, self.client = url.rstrip("/"), key, client

    def json(self, path: str, **params):
        r = self.client.get(f"{self.url}{path}", params=params or None)
        if r.status_code != 200:
            raise OpeningFailure(f"GET {path}: HTTP {r.status_code}")
        return r.json()

    def entry(self, index: int) -> dict:
        body = self.client.get(f"{self.url}/ledger/entries/{index}/raw")
        proof = self.client.get(f"{self.url}/ledger/entries/{index}/receipt")
        if body.status_code != 200 or proof.status_code != 200:
            raise OpeningFailure(f"ledger entry {index} is not served")
        try:
            proven, _ = verify_proof_file(proof.content, body.content, self.key)
        except AuditFailure as exc:
            raise OpeningFailure(f"ledger entry {index}: {exc}") from None
        if proven != index:
            raise OpeningFailure(f"the receipt of entry {index} proves entry {proven}")
        return json.loads(body.content)

    def indexes(self, subject: str) -> list[int]:
        found, offset = [], 0
        while True:
            page = self.json("/ledger/entries", subject=subject, limit=500, offset=offset)
            found += [item["index"] for item in page["items"]]
            offset += 500
            if offset >= page["count"]:
                return sorted(found)


def _expect(entry: dict, type_: str, subject: str, index: int) -> dict:
    if entry["type"] != type_ or entry["subject"] != subject:
        raise OpeningFailure(f"ledger entry {index} is not {type_} of {subject}")
    return entry["data"]


def _live(public: _Public, tag: str, closed: int) -> dict[str, int]:
    return sealing.live_commitments((index, public.entry(index))
                                    for index in public.indexes(f"sealed-bids:{tag}")
                                    if index <= closed)


def _signing_key(public: _Public, keys: dict, envelope: sealing.Envelope,
                 bid_index: int) -> bytes:
    key = keys.get(envelope.key)
    if key is None:
        raise OpeningFailure(f"no registered key {envelope.key[:16]}… is published")
    data = _expect(public.entry(key["ledger_index"]), "procurement.signing_key.registered",
                   f"company:{envelope.company}", key["ledger_index"])
    if data["fingerprint"] != envelope.key or key["ledger_index"] > bid_index:
        raise OpeningFailure(f"key {envelope.key[:16]}… was not registered to company "
                             f"{envelope.company} before its bid")
    revoked = key.get("revoked_ledger_index")
    if revoked is not None and revoked < bid_index:
        raise OpeningFailure(f"key {envelope.key[:16]}… was revoked before its bid")
    return base64.b64decode(data["public_key"])


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _amounts(prices: dict) -> dict[str, Decimal]:
    try:
        return {str(k): Decimal(str(v)) for k, v in prices.items()}
    except InvalidOperation:
        raise OpeningFailure("a price is not a number") from None


def verify_opening(url: str, reference: str, key: str,
                   client: httpx.Client | None = None) -> Verified:
    """Raise ``OpeningFailure`` unless the opening of ``reference`` checks out."""
    public = _Public(url, key, client or httpx.Client(timeout=30))
    data = public.json(f"/api/procurement/tenders/{reference}/opening")
    subject = f"tender:{reference}"
    if data.get("opened") is None:
        raise OpeningFailure(f"{reference} is not opened yet")
    published = _expect(public.entry(data["published"]), "procurement.tender.published",
                        subject, data["published"])
    committee = published["committee"]
    keys = {m["position"]: base64.b64decode(m["public_key"]) for m in committee["members"]}
    closed = data["tendering_closed"]
    deadline = _time(published["submission_deadline"])
    _expect(public.entry(closed), "procurement.tender.tendering_closed", subject, closed)
    report = _expect(public.entry(data["opened"]), "procurement.tender.opened", subject,
                     data["opened"])
    if report["tendering_closed"] != closed:
        raise OpeningFailure("the report and the tender disagree on the close of tendering")
    released = {}
    for member in data["committee"]["members"]:
        index = member.get("release_ledger_index")
        if index is None:
            continue
        entry = public.entry(index)
        got = _expect(entry, "procurement.committee.key_released", subject, index)
        private = base64.b64decode(got["private_key"])
        if _time(entry["at"]) < deadline or \
                sealing.member_public_key(private) != keys.get(got["position"]):
            raise OpeningFailure(f"the release of member {got['position']} is not their key "
                                 "or came before the deadline")
        released[got["position"]] = private
    if len(released) < committee["threshold"]:
        raise OpeningFailure(f"{len(released)} keys released, {committee['threshold']} needed")
    live = _live(public, report["bid_tag"], closed)
    listed = {c["commitment"]: c["ledger_index"] for c in report["commitments"]}
    if listed != live:
        raise OpeningFailure("the report's commitments are not the ledger's live ones: "
                             f"{sorted(set(live) ^ set(listed))}")
    opened = {b["commitment"]: b for b in report["bids"]}
    accounted = set(opened) | {r["commitment"] for r in report["rejected"]} | \
        {m["commitment"] for m in report["missing"]}
    if set(live) - accounted:
        raise OpeningFailure(f"committed bids left out of the report: {set(live) - accounted}")
    if set(opened) - set(live):
        raise OpeningFailure(f"opened bids with no live commitment: {set(opened) - set(live)}")
    envelopes = {sealing.commitment(e["envelope"].encode()): e["envelope"].encode()
                 for e in data["envelopes"]}
    signing = {k["fingerprint"]: k for k in data["signing_keys"]}
    for commitment, bid in opened.items():
        raw = envelopes.get(commitment)
        if raw is None:
            raise OpeningFailure(f"the envelope of opened bid {commitment[:16]}… is not "
                                 "published")
        try:
            envelope = sealing.parse(raw)
            if envelope.tender != reference or envelope.company != bid["company_id"]:
                raise OpeningFailure(f"bid {commitment[:16]}… names another tender or company")
            envelope.verify(_signing_key(public, signing, envelope, live[commitment]))
            content = sealing.open_envelope(envelope, released)
        except sealing.SealError as exc:
            raise OpeningFailure(f"bid {commitment[:16]}…: {exc}") from None
        if _amounts(content["prices"]) != _amounts(bid["prices"]):
            raise OpeningFailure(f"bid {commitment[:16]}… opens to other prices than published")
    return Verified(reference, opened=sorted(opened),
                    rejected=[r["commitment"] for r in report["rejected"]],
                    missing=[m["commitment"] for m in report["missing"]],
                    released=sorted(released))
