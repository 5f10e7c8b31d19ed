"""``sahab procurement verify-opening``: check a tender's opening from public data only.

It needs the platform's web address and the log's verifier key, nothing else (no
database, no installation of sahab's server side). Every ledger entry it relies on is
checked with its receipt (inclusion proof to a checkpoint signed by that key):

* the committee (threshold, public keys) is the one published with the tender, and the
  report's bid tag and salt hash to the commitment the publication records (the tag the
  bid entries are filed under); nothing drafts or publishes the tender again between its
  publication and its close;
* each bid entry a company names (``--my-bid``, the index its promise or receipt gave)
  is one of the tender's: filed under that tag between the publication and the close;
* at least t members released keys after the deadline, each matching its public key;
* the full opening report (a JSON document) has the SHA-256, size and counts that the
  opening's ledger entry records;
* every live bid commitment on the ledger (submitted before tendering closed, not
  withdrawn or replaced) is in the opening report, opened, rejected or unconfirmed, and
  nothing else. The bid entries are found by reading every entry of the log between the
  tender's publication and its close (entry bundles, each proven against the signed
  checkpoint), not by asking the platform to search for them;
* a bid sealed before an amendment that changed the conditions (documents or compliance
  criteria, in the amendment's entry, read from the same entries) and not confirmed after
  it (no ``bid.confirmed`` entry naming that amendment) is listed unopened as
  unconfirmed; an unconfirmed bid opened, or a confirmed one listed as unconfirmed, fails
  the check;
* every opened bid's envelope hashes to its commitment, names this tender, is signed by
  a key that the ledger registered for the company it names before the bid, and decrypts
  with the released keys to the prices the report publishes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import httpx

from sahab.ledger import merkle, note
from sahab.ledger.auditor import TILE, AuditFailure, split_bundle, tile_path, verify_proof_file
from sahab.procurement import sealing


class OpeningFailure(Exception):
    """The opening does not verify; the message says where."""


@dataclass
class Verified:
    reference: str
    opened: list[str] = field(default_factory=list)  # commitments
    rejected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    tag_committed: bool = True  # False: published before bid tags were committed


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

    def window(self, first: int, last: int) -> dict[int, dict]:
        """Every ledger entry from ``first`` to ``last``, read from the log's entry bundles
        (256 a request) and each bundle proven against the signed checkpoint: no search
        of the platform decides which entries the verifier sees."""
        r = self.client.get(f"{self.url}/ledger/checkpoint")
        try:
            tree, _ = note.open_checkpoint(r.content, note.parse_vkey(self.key))
        except (note.NoteError, ValueError) as exc:
            raise OpeningFailure(f"the log's checkpoint does not verify: {exc}") from None
        if tree.size <= last:
            raise OpeningFailure(f"the log's checkpoint does not cover entry {last} yet")
        entries = {}
        for tile in range(first // TILE, last // TILE + 1):
            start, width = tile * TILE, min(TILE, tree.size - tile * TILE)
            bundle = self.client.get(f"{self.url}/ledger/{tile_path('entries', tile, width)}")
            proof = self.json("/ledger/proof/inclusion", index=start, size=tree.size)
            try:
                bodies = split_bundle(bundle.content) if bundle.status_code == 200 else []
                if len(bodies) != width:
                    raise AuditFailure(f"the entry bundle {tile} is not served whole")
                _prove_bundle(start, [merkle.leaf_hash(b) for b in bodies], tree,
                              [base64.b64decode(h) for h in proof["proof"]])
            except (AuditFailure, merkle.ProofError, ValueError, KeyError) as exc:
                raise OpeningFailure(f"entries {start} to {start + width - 1}: {exc}") \
                    from None
            entries |= {start + i: json.loads(body) for i, body in enumerate(bodies)
                        if first <= start + i <= last}
        return entries


def _prove_bundle(start: int, leaves: list[bytes], tree: note.Checkpoint,
                  proof: list[bytes]) -> None:
    """Raise unless the bundle's leaves sit at ``start`` under the checkpoint's root. The
    path of its first leaf is recomputed from the bundle wherever it lies inside it, and
    taken from the served proof only outside it: so every leaf of the bundle is bound."""
    ranges = merkle.inclusion_ranges(start, tree.size)
    if len(proof) != len(ranges):
        raise merkle.ProofError("the inclusion proof has the wrong length")
    end = start + len(leaves)
    path = []
    for (lo, hi), served in zip(ranges, proof, strict=True):
        if start <= lo and hi <= end:
            path.append(merkle.root_of(leaves[lo - start:hi - start]))
        elif hi <= start or lo >= end:
            path.append(served)
        else:
            raise merkle.ProofError("the bundle is not a subtree of the log")
    merkle.verify_inclusion(start, tree.size, leaves[0], path, tree.root)


def _expect(entry: dict, type_: str, subject: str, index: int) -> dict:
    if entry["type"] != type_ or entry["subject"] != subject:
        raise OpeningFailure(f"ledger entry {index} is not {type_} of {subject}")
    return entry["data"]


REPUBLISHED = ("procurement.tender.drafted", "procurement.tender.published")


def _live(window: dict[int, dict], reference: str, tag: str,
          published: int) -> tuple[dict[str, int], dict[str, int]]:
    """The live commitments, and those of them still to confirm after an amendment, from
    ``window``: every entry the log holds between the tender's publication and its close
    of tendering (no bid or amendment entry can lie outside)."""
    subjects = (f"sealed-bids:{tag}", f"tender:{reference}")
    again = [i for i, e in window.items()
             if i != published and e["subject"] == subjects[1] and e["type"] in REPUBLISHED]
    if again:
        raise OpeningFailure(f"the tender was drafted or published again (entry {again[0]}) "
                             f"after the publication the platform names ({published}): "
                             "its reference was given to another tender")
    entries = [(index, entry) for index, entry in sorted(window.items())
               if entry["subject"] in subjects]
    live = sealing.live_commitments((index, entry) for index, entry in entries
                                    if entry["subject"] == subjects[0])
    return live, sealing.unconfirmed_commitments(live, entries, tender_subject=subjects[1],
                                                 bid_subject=subjects[0])


def _no_bid_entry_after(public: _Public, tag: str, closed: int) -> None:
    """No bid entry of the tender may follow its close of tendering: the platform refuses
    bids after the close, and the close integrates every bid committed before it (the
    ledger's sequencer). One there means a bid was held back past the close — its
    company's promise, dated before the deadline, shows by whom."""
    newest = public.json("/ledger/entries", subject=f"sealed-bids:{tag}", limit=1)["items"]
    if newest and newest[0]["index"] > closed:
        raise OpeningFailure(f"bid entry {newest[0]['index']} was integrated after the close "
                             f"of tendering ({closed}): the ledger broke the bids' order")


def _check_unconfirmed(report: dict, due: dict[str, int], opened: set[str]) -> set[str]:
    """The bids the report leaves unopened for want of a confirmation are exactly those
    the ledger says were not confirmed after the amendment it names."""
    listed = {u["commitment"]: u.get("amendment") for u in report.get("unconfirmed", [])}
    if set(due) & opened:
        raise OpeningFailure("bids opened although not confirmed after an amendment: "
                             f"{sorted(set(due) & opened)}")
    if set(listed) - set(due):
        raise OpeningFailure("bids left out as unconfirmed that the ledger shows confirmed "
                             f"or never asked to confirm: {sorted(set(listed) - set(due))}")
    if any(listed[c] != due[c] for c in listed):
        raise OpeningFailure("the report names another amendment than the ledger for an "
                             "unconfirmed bid")
    return set(listed)


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


def _report(public: _Public, reference: str, entry: dict) -> dict:
    """The full opening report, downloaded and checked against what its ledger entry
    records: SHA-256, size, counts, and the tag, close and releases it repeats."""
    path = f"/api/procurement/tenders/{reference}/opening/report"
    r = public.client.get(f"{public.url}{path}")
    if r.status_code != 200:
        raise OpeningFailure(f"GET {path}: HTTP {r.status_code}")
    recorded = entry["report"]
    if hashlib.sha256(r.content).hexdigest() != recorded["sha256"] or \
            len(r.content) != recorded["size"]:
        raise OpeningFailure("the opening report served is not the one the ledger recorded "
                             "(its SHA-256 differs)")
    try:
        report = json.loads(r.content)
        counts = {"commitments": len(report["commitments"]), "opened": len(report["bids"]),
                  "rejected": len(report["rejected"]), "missing": len(report["missing"])}
        if "unconfirmed" in report:  # reports from before confirmations have none
            counts["unconfirmed"] = len(report["unconfirmed"])
    except (ValueError, KeyError, TypeError):
        raise OpeningFailure("the opening report is not a sahab opening report") from None
    if report.get("format") != "sahab-opening-report/1" or report.get("tender") != reference:
        raise OpeningFailure(f"the opening report is not the one of {reference}")
    if counts != entry["counts"] or any(report.get(k) != entry.get(k) for k in
                                        ("bid_tag", "bid_tag_salt", "tendering_closed",
                                         "released")):
        raise OpeningFailure("the opening report and its ledger entry disagree")
    return report


def _check_bid_tag(published: dict, index: int, report: dict, committed_from: int) -> bool:
    """The report's bid tag must be the one the publication committed to: under another
    tag the opening would have read other bid entries, or none. Only a publication below
    ``committed_from`` (the log's index when its platform began committing tags) may
    carry no commitment; returns whether it carried one."""
    committed = published.get("bid_tag_commitment")
    if committed is None and index < committed_from:
        return False
    if committed is None:
        raise OpeningFailure("the tender's publication commits to no bid tag: the opening "
                             "could have read any bid entries")
    tag, salt = report.get("bid_tag"), report.get("bid_tag_salt")
    if not isinstance(tag, str) or not isinstance(salt, str) or \
            sealing.tag_commitment(tag, salt) != committed:
        raise OpeningFailure("the report's bid tag is not the one the tender's publication "
                             "committed to: the opening read other bid entries than the "
                             "tender's")
    return True


def _check_own_bids(public: _Public, window: dict[int, dict], indexes: list[int], tag: str,
                    published: int) -> None:
    """Each bid entry a company names (from its promise or receipt) is one of the
    tender's: a bid filed under another tag, even for a moment, is one the opening never
    read. ``window`` holds the proven entries from the publication to the close; an entry
    outside it is read and proven on its own, to say what it is."""
    for index in indexes:
        entry = window[index] if index in window else public.entry(index)
        if not (entry["type"].startswith("procurement.bid.") and
                entry["subject"] == f"sealed-bids:{tag}" and index in window and
                index != published):
            raise OpeningFailure(f"your bid entry {index} is not one the opening read: it is "
                                 f"{entry['type']} of {entry['subject']}, not a bid entry of "
                                 "the tender between its publication and its close")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _amounts(prices: dict) -> dict[str, Decimal]:
    try:
        return {str(k): Decimal(str(v)) for k, v in prices.items()}
    except InvalidOperation:
        raise OpeningFailure("a price is not a number") from None


def verify_opening(url: str, reference: str, key: str,
                   client: httpx.Client | None = None, *, my_bids: Iterable[int] = (),
                   tags_committed_from: int = 0) -> Verified:
    """Raise ``OpeningFailure`` unless the opening of ``reference`` checks out.

    ``my_bids``: ledger indexes of a company's own bid entries, each of which must be
    among those the opening read. ``tags_committed_from``: the log's index below which a
    publication may commit to no bid tag (0: every one must)."""
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
    report = _report(public, reference, _expect(public.entry(data["opened"]),
                                                "procurement.tender.opened", subject,
                                                data["opened"]))
    if report["tendering_closed"] != closed:
        raise OpeningFailure("the report and the tender disagree on the close of tendering")
    if not data["published"] < closed:
        raise OpeningFailure("the tender's publication does not precede its close")
    tag_committed = _check_bid_tag(published, data["published"], report, tags_committed_from)
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
    _no_bid_entry_after(public, report["bid_tag"], closed)
    window = public.window(data["published"], closed)
    live, due = _live(window, reference, report["bid_tag"], data["published"])
    _check_own_bids(public, window, list(my_bids), report["bid_tag"], data["published"])
    listed = {c["commitment"]: c["ledger_index"] for c in report["commitments"]}
    if len(listed) != len(report["commitments"]):
        raise OpeningFailure("the report lists a commitment twice")
    if listed != live:
        raise OpeningFailure("the report's commitments are not the ledger's live ones: "
                             f"{sorted(set(live) ^ set(listed))}")
    opened = {b["commitment"]: b for b in report["bids"]}
    accounted = set(opened) | {r["commitment"] for r in report["rejected"]} | \
        {m["commitment"] for m in report["missing"]} | \
        _check_unconfirmed(report, due, set(opened))
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
                    unconfirmed=[u["commitment"] for u in report.get("unconfirmed", [])],
                    released=sorted(released), tag_committed=tag_committed)
