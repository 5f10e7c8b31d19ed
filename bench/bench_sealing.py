"""The cost of a sealed bid: sealing and signing it in the browser, checking and
accepting its envelope on the server, and opening it.

* Browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright loads the
  tender page's own script (procurement/seal.js, served from 127.0.0.1) and times its
  ``seal`` function with ``performance.now()`` over 50 seals (after 5 warm-up ones), for a
  bid of one price and for one with a 1 MB document sealed whole; one envelope of each is
  then checked and opened here with the committee's keys. Anchor: the same seals by
  ``sealing.seal`` (Python, ``cryptography``) in this process.
* Server (PostgreSQL when one answers on 127.0.0.1:5432, else SQLite; in a child
  process): ``check_envelope`` (parse, committee, registered key, Ed25519) against the
  signature check alone; ``submit_bid`` (the whole accepting transaction, ledger entry
  included) against ``ask_question`` (one row and its ledger entry); the opening, per
  bid, against ``submit_bid``.

    python -m bench sealing         # SAHAB_BENCH_SEALS=50 SAHAB_BENCH_SEAL_BIDS=200
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import free_port, percentile, report

CHROMIUM = "/usr/bin/chromium"
SEAL_JS = Path(__file__).parent.parent / "src/sahab/procurement/static/procurement/seal.js"
DOCUMENT_BYTES = 1024 * 1024

_PAGE = """<!doctype html><meta charset="utf-8"><title>seal</title>
<script src="seal.js"></script>"""

# Runs in the page: a company key made there, then ``n`` timed seals of each bid.
_TIMED_SEALS = """async ({committee, n, documentBytes}) => {
  const b64 = (view) => {
    let text = "";
    for (let i = 0; i < view.length; i += 0x8000)
      text += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const key = { privateKey: pair.privateKey,
                fingerprint: [...digest].map((b) => b.toString(16).padStart(2, "0")).join("") };
  const document = new Uint8Array(documentBytes);
  for (let i = 0; i < documentBytes; i += 65536)
    crypto.getRandomValues(document.subarray(i, i + 65536));
  const documentHash = new Uint8Array(await crypto.subtle.digest("SHA-256", document));
  const bids = {
    price: { prices: { "1": "171000.500" }, technical_offer: "Offre technique", documents: [] },
    document: { prices: { "1": "171000.500" }, technical_offer: "Offre technique",
                documents: [{ name: "offre.pdf", media_type: "application/pdf",
                              sha256: [...documentHash].map((b) => b.toString(16)
                                .padStart(2, "0")).join(""), content: b64(document) }] },
  };
  const out = { publicKey: b64(raw) };
  for (const [name, bid] of Object.entries(bids)) {
    const args = { tender: "BENCH-2026-0001", company: 7, committee, threshold: 2, key,
                   content: { tender: "BENCH-2026-0001", company: 7, ...bid } };
    for (let i = 0; i < 5; i++) await window.sahabSeal.seal(args);
    const times = [];
    let envelope = "";
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      envelope = await window.sahabSeal.seal(args);
      times.push(performance.now() - start);
    }
    out[name] = { times, envelope };
  }
  return out;
}"""


def _serve(directory: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    port = free_port()
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def browser_seals(n: int) -> dict:
    """Time the page's ``seal`` in headless Chromium; check one envelope of each kind."""
    from playwright.sync_api import sync_playwright

    from sahab.procurement import sealing

    members = [sealing.X25519PrivateKey.generate() for _ in range(3)]
    committee = [sealing.b64(sealing.raw_public(m)) for m in members]
    directory = tempfile.mkdtemp(prefix="sahab-bench-seal-")
    server = None
    try:
        shutil.copy(SEAL_JS, Path(directory) / "seal.js")
        (Path(directory) / "index.html").write_text(_PAGE)
        server, port = _serve(directory)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/index.html")
                page.wait_for_function("() => window.sahabSeal !== undefined")
                version = browser.version
                result = page.evaluate(_TIMED_SEALS, {"committee": committee, "n": n,
                                                      "documentBytes": DOCUMENT_BYTES})
            finally:
                browser.close()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(directory, ignore_errors=True)
    public = base64.b64decode(result["publicKey"])
    released = {1: sealing.raw_private(members[0]), 3: sealing.raw_private(members[2])}
    for kind in ("price", "document"):
        envelope = sealing.parse(result[kind]["envelope"].encode())
        envelope.verify(public)
        content = sealing.open_envelope(envelope, released)
        if content["prices"] != {"1": "171000.500"}:
            raise RuntimeError("the browser's envelope does not open to its price")
    return {"version": version, "committee": members, **{
        kind: [t / 1000 for t in result[kind]["times"]] for kind in ("price", "document")}}


def python_seals(members, n: int) -> dict:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.procurement import sealing

    key = Ed25519PrivateKey.generate()
    committee = [sealing.raw_public(m) for m in members]
    document = os.urandom(DOCUMENT_BYTES)
    bids = {"price": {"prices": {"1": "171000.500"}, "technical_offer": "Offre technique",
                      "documents": []}}
    bids["document"] = {**bids["price"], "documents": [
        {"name": "offre.pdf", "media_type": "application/pdf",
         "sha256": hashlib.sha256(document).hexdigest(),
         "content": sealing.b64(document)}]}
    out = {}
    for kind, bid in bids.items():
        times = []
        for i in range(n + 5):
            start = time.perf_counter()
            sealing.seal(tender="BENCH-2026-0001", company=7, committee=committee,
                         threshold=2, content={"tender": "BENCH-2026-0001", "company": 7,
                                               **bid}, signing_key=key)
            if i >= 5:
                times.append(time.perf_counter() - start)
        out[kind] = times
    return out


# --- the server's side, in a child process (one Django set-up per process) ---------------

def server_costs(database_url: str | None, n: int) -> dict:
    import datetime as dt

    from bench.common import setup_django

    os.environ["SAHAB_PROCUREMENT_MIN_DAYS"] = "0"
    setup_django(database_url)
    import time_machine
    from django.conf import settings
    from django.utils import timezone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from sahab.core import keys
    from sahab.directory import services as directory
    from sahab.directory.models import AdministrationKind
    from sahab.directory.selectors import SYSTEM
    from sahab.ledger import services as ledger
    from sahab.procurement import client, sealing, services

    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    buyer = directory.create_administration(actor=SYSTEM, code="BENCH",
                                            kind=AdministrationKind.MINISTRY,
                                            name_fr="Ministère du banc d'essai", name_ar="وزارة")
    now = timezone.now()
    tender = services.create_tender(
        actor=SYSTEM, buyer=buyer, title="Serveurs", procedure="open",
        enquiry_deadline=now + dt.timedelta(minutes=50),
        submission_deadline=now + dt.timedelta(minutes=60),
        lots=[{"title": "Serveurs", "cpv": "48820000-2", "estimated_value": "1000000"}])
    members = [directory.create_agent(actor=SYSTEM, administration=buyer,
                                      username=f"member{i}", email=f"m{i}@example.gov.tn",
                                      first_name="Membre", last_name=str(i), roles=[],
                                      password=None)[0].user for i in range(3)]
    services.name_committee(actor=SYSTEM, tender=tender, members=members, threshold=2)
    opening_keys = []
    for member in members:
        private, public = client.committee_keygen()
        services.register_committee_key(actor=member, tender=tender,
                                        public_key=base64.b64decode(public))
        opening_keys.append((member, base64.b64decode(private)))
    services.publish_tender(actor=SYSTEM, tender=tender)
    tender.refresh_from_db()
    detail = {"reference": tender.reference, "lots": [{"number": 1}],
              "committee": {"threshold": 2, "members": [
                  {"public_key": sealing.b64(bytes(m.public_key))}
                  for m in tender.committee.all()]}}
    bidders = []
    for i in range(n):
        company, member, _ = directory.register_company(
            actor=SYSTEM, name=f"Soumissionnaire {i}", matricule_fiscal=f"{2000000 + i:07d}B",
            admin_username=f"bidder{i}", admin_email=f"b{i}@example.tn", admin_password=None)
        key = client.new_signing_key()
        body = client.registration(company.pk, key)
        registered = services.register_signing_key(
            actor=member.user, public_key=base64.b64decode(body["public_key"]),
            proof=base64.b64decode(body["proof"]))
        envelope = client.seal_bid(detail, company_id=company.pk, key=key,
                                   prices={"1": str(900000 + i)}).encode()
        bidders.append((company, member.user, envelope, bytes(registered.public_key)))

    def each(fn) -> float:
        start = time.perf_counter()
        for bidder in bidders:
            fn(*bidder)
        return (time.perf_counter() - start) / n

    out = {"database": "PostgreSQL" if database_url else "SQLite", "bids": n}
    out["signature"] = each(lambda c, u, e, k: sealing.parse(e).verify(k))
    out["check"] = each(lambda c, u, e, k: services.check_envelope(tender, c, e))
    out["question"] = each(lambda c, u, e, k: services.ask_question(
        actor=u, tender=tender, text="Le lot 1 comprend-il la garantie ?"))
    out["submit"] = each(lambda c, u, e, k: services.submit_bid(actor=u, tender=tender,
                                                                envelope=e))
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1), tick=True):
        services.advance_tenders()
        for member, private in opening_keys[:2]:
            services.release_committee_key(actor=member, tender=tender, private_key=private)
        ledger.checkpoint_if_grown()
        start = time.perf_counter()
        done = services.advance_tenders()
        out["open"] = (time.perf_counter() - start) / n
    opened = tender.bids.filter(status="opened").count()
    if done != [f"{tender.reference}: opened"] or opened != n:
        raise RuntimeError(f"the opening went wrong: {done}, {opened} of {n} opened")
    return out


def _ms(samples: list[float]) -> str:
    return (f"mean {statistics.fmean(samples) * 1000:.2f} ms, median "
            f"{statistics.median(samples) * 1000:.2f} ms, p95 "
            f"{percentile(samples, 95) * 1000:.2f} ms")


def main() -> None:
    from bench.bench_ledger import _postgres_url

    n = int(os.environ.get("SAHAB_BENCH_SEALS", "50"))
    bids = int(os.environ.get("SAHAB_BENCH_SEAL_BIDS", "200"))
    if not os.path.exists(CHROMIUM):
        print(f"  browser: skipped, no {CHROMIUM}")
    else:
        browser = browser_seals(n)
        python = python_seals(browser["committee"], n)
        print(f"  browser: {browser['version']} headless, {n} seals each, committee of 3 "
              "(t = 2), envelopes checked and opened here")
        for kind, what, label in (
                ("price", "a bid of one price", "sealing a bid (browser, WebCrypto)"),
                ("document", "a bid with a 1 MB document sealed whole",
                 "sealing a bid + 1 MB document (browser)")):
            print(f"    {what}: browser {_ms(browser[kind])}; Python {_ms(python[kind])}")
            report(label,
                   statistics.median(browser[kind]) * 1000, "ms", "Python sealing.seal",
                   statistics.median(python[kind]) * 1000,
                   subject_did="Chromium: seal.js's seal() (AES-GCM, 3 X25519, 3 wraps, "
                               "Ed25519 signature), median",
                   anchor_did="this process: sealing.seal() on the same bid, median")
    pg = _postgres_url()
    url, drop = pg if pg else (None, lambda: None)
    try:
        code = ("import json; from bench.bench_sealing import server_costs; "
                f"print(json.dumps(server_costs({url!r}, {bids})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "DJANGO_SETTINGS_MODULE": "sahab.settings"})
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        server = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        drop()
    print(f"  server: {server['database']}, {server['bids']} bids, one at a time")
    report("checking an envelope (check_envelope)", server["check"] * 1000, "ms",
           "signature alone", server["signature"] * 1000,
           subject_did="parse, canonical form, committee's wraps, registered key looked up, "
                       "Ed25519",
           anchor_did="sealing.parse() and Ed25519 verify, no database")
    report("accepting a bid (submit_bid)", server["submit"] * 1000, "ms", "ask_question",
           server["question"] * 1000,
           subject_did="the whole transaction: checks, envelope stored, ledger entry",
           anchor_did="a question: checks, one row, ledger entry")
    report("opening, per bid (open_tender)", server["open"] * 1000, "ms", "submit_bid",
           server["submit"] * 1000,
           subject_did="ledger entries proven, key from the ledger, Ed25519, decrypt, "
                       "rows and report written",
           anchor_did="accepting the same bid")


if __name__ == "__main__":
    main()
