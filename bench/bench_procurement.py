"""Procurement on PostgreSQL: 500 bids in one second, 500 spread over a minute.

500 bidders at the same second, 500 bidders spread over the last minute before a
deadline, the opening of the burst's 500 bids, and the public tender list with 100,000
tenders.

All go through the real stack: `sahab serve` (gunicorn + worker) on a free port of
127.0.0.1, HTTP clients in this process. The burst has two anchors, each the same load
in the same run against the same server: as many clients at once each doing GET
/healthz (the stack's floor: middleware and one ``SELECT 1``), and as many companies at
once each asking a question on another tender (an authenticated POST, one row and its
ledger entry, no envelope to check). The spread scenario sends every bid at its own
time, drawn uniformly over ``SAHAB_BENCH_SPREAD_SECONDS`` (default 60), on a second
tender, and its anchor is GET /healthz sent on the same schedule. The tender list's
anchor is GET /healthz through the same server, one request at a time.

Goals: no bid lost in either scenario; under the burst, bids accepted per second at
least half the /healthz rate of the same burst; spread over the minute, p95 under
300 ms. After the deadline two of the three committee members release their keys and
the burst's tender opens: every accepted bid must be opened and listed in the opening
report, and ``verify-opening`` must confirm it from the server's public data.

    python -m bench procurement      # needs PostgreSQL on 127.0.0.1:5432
    SAHAB_BENCH_BIDDERS=500 SAHAB_BENCH_TENDERS=100000 SAHAB_BENCH_SPREAD_SECONDS=60
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from bench.common import free_port


def _percentile(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1] * 1000


def prepare(url: str, home: str, bidders: int, tenders: int) -> dict:
    """In a child process: migrate, create companies with tokens, two open tenders (the
    burst's and the spread scenario's), and ``tenders`` published tenders for the list."""
    os.environ.update({"DATABASE_URL": url, "SAHAB_HOME": home,
                       "DJANGO_SETTINGS_MODULE": "sahab.settings",
                       "SAHAB_PROCUREMENT_MIN_DAYS": "0"})
    import datetime as dt

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    # hashing passwords is not what is measured here
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from sahab.core import keys
    from sahab.directory import services as directory
    from sahab.directory.models import AdministrationKind
    from sahab.directory.selectors import SYSTEM
    from sahab.procurement import client, sealing, services
    from sahab.procurement.models import Lot, Tender

    call_command("migrate", verbosity=0)
    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    buyer = directory.create_administration(actor=SYSTEM, code="BENCH",
                                            kind=AdministrationKind.MINISTRY,
                                            name_fr="Ministère du banc d'essai", name_ar="وزارة")
    tokens = []
    for i in range(bidders):
        company, member, _ = directory.register_company(
            actor=SYSTEM, name=f"Soumissionnaire {i}", matricule_fiscal=f"{2000000 + i:07d}B",
            admin_username=f"bidder{i}", admin_email=f"b{i}@example.tn", admin_password=None)
        key = client.new_signing_key()  # the bidder's own key, registered once
        body = client.registration(company.pk, key)
        services.register_signing_key(actor=member.user,
                                      public_key=base64.b64decode(body["public_key"]),
                                      proof=base64.b64decode(body["proof"]))
        tokens.append([directory.issue_api_token(actor=SYSTEM, user=member.user, name="b")[1],
                       company.pk, base64.b64encode(sealing.raw_private(key)).decode()])
    now = timezone.now()
    tender = services.create_tender(
        actor=SYSTEM, buyer=buyer, title="Serveurs", procedure="open",
        enquiry_deadline=now + dt.timedelta(seconds=30),
        submission_deadline=now + dt.timedelta(minutes=30),
        lots=[{"title": "Serveurs", "cpv": "48820000-2", "estimated_value": "1000000"}])
    members = [directory.create_agent(actor=SYSTEM, administration=buyer,
                                      username=f"member{i}", email=f"m{i}@example.gov.tn",
                                      first_name="Membre", last_name=str(i), roles=[],
                                      password=None)[0].user for i in range(3)]
    spread = services.create_tender(  # the spread scenario's: the same kind of tender
        actor=SYSTEM, buyer=buyer, title="Postes de travail", procedure="open",
        enquiry_deadline=now + dt.timedelta(seconds=30),
        submission_deadline=now + dt.timedelta(minutes=30),
        lots=[{"title": "Postes", "cpv": "30213000-5", "estimated_value": "1000000"}])
    asked = services.create_tender(  # the anchor's: its enquiry period lasts the whole run
        actor=SYSTEM, buyer=buyer, title="Questions", procedure="open",
        enquiry_deadline=now + dt.timedelta(minutes=30),
        submission_deadline=now + dt.timedelta(minutes=60),
        lots=[{"title": "Stockage", "cpv": "30233000-1", "estimated_value": "1000000"}])
    opening_keys = []  # the members' private halves for `tender`, as they would keep them
    for published in (tender, spread, asked):
        services.name_committee(actor=SYSTEM, tender=published, members=members, threshold=2)
        for member in members:
            private, public = client.committee_keygen()
            services.register_committee_key(actor=member, tender=published,
                                            public_key=base64.b64decode(public))
            if published is tender:
                opening_keys.append([member.username, private])
        services.publish_tender(actor=SYSTEM, tender=published)
    tender.refresh_from_db()
    spread.refresh_from_db()
    # none of the listed tenders waits for a timer: the worker's (and the opening's) would
    # otherwise walk tens of thousands of them, one transaction each, on every tick
    rows = [Tender(reference=f"LIST-{i:06d}", buyer=buyer, title=f"Achat numéro {i}",
                   procedure="open", state=["awarded", "complete", "evaluation"][i % 3],
                   estimated_value=1000 + i, enquiry_deadline=now, submission_deadline=now,
                   published_at=now - dt.timedelta(minutes=i))
            for i in range(tenders)]
    Tender.objects.bulk_create(rows, batch_size=5000)
    Lot.objects.bulk_create([Lot(tender=t, number=1, title="Lot", cpv="48820000-2",
                                 estimated_value=1000) for t in
                             Tender.objects.filter(reference__startswith="LIST-")],
                            batch_size=5000)
    return {"reference": tender.reference, "asked": asked.reference, "tokens": tokens,
            "bid_tag": tender.bid_tag, "opening_keys": opening_keys,
            "spread": spread.reference, "spread_bid_tag": spread.bid_tag}


def open_after_deadline(url: str, home: str, reference: str, opening_keys: list) -> dict:
    """In a child process, at the deadline (time travel: the server's own clock is left
    alone): the worker's timer closes tendering, two of the three members release their
    keys, the timer opens the bids. Returns what the opening counted and how long it took."""
    os.environ.update({"DATABASE_URL": url, "SAHAB_HOME": home,
                       "DJANGO_SETTINGS_MODULE": "sahab.settings"})
    import datetime as dt

    import django
    import time_machine

    django.setup()
    from django.contrib.auth import get_user_model

    from sahab.ledger import services as ledger
    from sahab.procurement import selectors, services
    from sahab.procurement.models import Tender

    tender = Tender.objects.get(reference=reference)
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1), tick=True):
        services.advance_tenders()
        for username, key in opening_keys[:2]:
            services.release_committee_key(
                actor=get_user_model().objects.get(username=username), tender=tender,
                private_key=base64.b64decode(key))
        ledger.checkpoint_if_grown()
        start = time.perf_counter()
        done = services.advance_tenders()
        elapsed = time.perf_counter() - start
        ledger.checkpoint_if_grown()
    tender.refresh_from_db()
    report = json.loads(bytes(selectors.opening_report(tender).content))
    return {"done": done, "seconds": elapsed, "key": ledger.verifier_key(),
            "opened": tender.bids.filter(status="opened").count(),
            "listed": len(report["bids"]), "commitments": len(report["commitments"]),
            "rejected": len(report["rejected"]), "missing": len(report["missing"])}


def _seal_all(base: str, reference: str, bidders: list) -> tuple[list[tuple[str, str]], float]:
    """Every bidder seals and signs its bid on its side (as ``sahab bid seal`` does);
    returns (token, envelope) pairs and the mean seconds per sealed bid."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.procurement import client

    detail = httpx.get(f"{base}/api/procurement/tenders/{reference}", timeout=30).json()
    start = time.perf_counter()
    sealed = [(token, client.seal_bid(
        detail, company_id=company, prices={"1": str(900000 + i)},
        key=Ed25519PrivateKey.from_private_bytes(base64.b64decode(key))))
        for i, (token, company, key) in enumerate(bidders)]
    return sealed, (time.perf_counter() - start) / max(1, len(bidders))


def _check_cost(reference: str, n: int = 200) -> float:
    """Seconds the server spends on one envelope's own checks (parse and signature)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.procurement import sealing

    key = Ed25519PrivateKey.generate()
    data = sealing.seal(tender=reference, company=1, committee=[
        sealing.raw_public(sealing.X25519PrivateKey.generate()) for _ in range(3)],
        threshold=2, content={"prices": {"1": "1"}}, signing_key=key)
    public = sealing.raw_public(key)
    start = time.perf_counter()
    for _ in range(n):
        sealing.parse(data).verify(public)
    return (time.perf_counter() - start) / n


async def _storm(base: str, path: str, calls: list[tuple[str, dict]]
                 ) -> tuple[list[float], int]:
    """Every (token, body) POSTs to ``path`` at once: (latencies, how many got 201)."""
    limits = httpx.Limits(max_connections=len(calls))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def one(token: str, body: dict):
            start = time.perf_counter()
            r = await client.post(path, json=body,
                                  headers={"Authorization": f"Bearer {token}"})
            return time.perf_counter() - start, r.status_code
        results = await asyncio.gather(*(one(t, b) for t, b in calls))
    return [d for d, _ in results], sum(1 for _, s in results if s == 201)


async def _get_storm(base: str, path: str, n: int) -> tuple[list[float], int]:
    """``n`` clients GET ``path`` at once, no token: (latencies, how many got 200)."""
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def one():
            start = time.perf_counter()
            r = await client.get(path)
            return time.perf_counter() - start, r.status_code
        results = await asyncio.gather(*(one() for _ in range(n)))
    return [d for d, _ in results], sum(1 for _, s in results if s == 200)


def _schedule(n: int, seconds: float, seed: int = 2026) -> list[float]:
    """``n`` send times (seconds from the start), drawn uniformly over ``seconds``: the
    arrivals of independent bidders in the last stretch before a deadline. The same seed
    gives the anchor the same schedule as the bids."""
    rng = random.Random(seed)
    return sorted(rng.uniform(0, seconds) for _ in range(n))


async def _spread(base: str, method: str, path: str,
                  calls: list[tuple[str | None, dict | None]], at: list[float],
                  expect: int) -> tuple[list[float], int]:
    """Each call is sent at its own time ``at[i]`` (seconds from now), all concurrently:
    (latencies from each send, how many got ``expect``)."""
    limits = httpx.Limits(max_connections=len(calls))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        loop = asyncio.get_running_loop()
        origin = loop.time()

        async def one(token: str | None, body: dict | None, when: float):
            await asyncio.sleep(max(0.0, origin + when - loop.time()))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            start = time.perf_counter()
            r = await client.request(method, path, json=body, headers=headers)
            return time.perf_counter() - start, r.status_code
        results = await asyncio.gather(*(one(t, b, w)
                                         for (t, b), w in zip(calls, at, strict=True)))
    return [d for d, _ in results], sum(1 for _, s in results if s == expect)


async def _bid_storm(base: str, reference: str,
                     sealed: list[tuple[str, str]]) -> tuple[list[float], int]:
    return await _storm(base, f"/api/procurement/tenders/{reference}/bids",
                        [(token, {"envelope": envelope}) for token, envelope in sealed])


async def _question_storm(base: str, reference: str, tokens: list[str]
                          ) -> tuple[list[float], int]:
    return await _storm(base, f"/api/procurement/tenders/{reference}/questions",
                        [(token, {"text": f"Question n° {i} sur le lot 1"})
                         for i, token in enumerate(tokens)])


BIDS_DID = ("sahab: {n} companies at once, each POSTs a bid sealed and signed on its side: "
            "envelope and signature checked, stored, its ledger entry written pending, the "
            "log's signed promise returned (the worker's sequencer integrates the entries "
            "in batches; every one is counted in the ledger)")
QUESTIONS_DID = ("anchor: the same {n} companies at once on the same server, each POSTs a "
                 "question: checked, one row and its ledger entry")
HEALTHZ_BURST_DID = ("anchor: {n} clients at once on the same server, each GETs /healthz "
                     "(no token: middleware and one SELECT 1)")
SPREAD_DID = ("sahab: {n} companies, each POSTs a bid sealed and signed on its side at its "
              "own time, drawn uniformly over {s:g} s, on a second tender (same checks, "
              "pending ledger entry, signed promise)")
HEALTHZ_SPREAD_DID = ("anchor: {n} GETs of /healthz on the same server, on the same "
                      "schedule over {s:g} s, no token")


def _ledger_count(base: str, bid_tag: str, expected: int) -> tuple[int, float]:
    """How many bids the public ledger holds for a tender's sealed-bids subject, once the
    worker's sequencer integrated them (waiting at most the promise's 60 s), and the
    seconds that took."""
    start = time.perf_counter()
    while True:
        count = httpx.get(f"{base}/ledger/entries", timeout=60,
                          params={"subject": f"sealed-bids:{bid_tag}",
                                  "type": "procurement.bid.submitted"}).json()["count"]
        waited = time.perf_counter() - start
        if count >= expected or waited > 60:
            return count, waited
        time.sleep(0.1)


def _timed_gets(base: str, paths: list[str], n: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(n):
            start = time.perf_counter()
            r = client.get(paths[i % len(paths)])
            r.raise_for_status()
            samples.append(time.perf_counter() - start)
    return samples


def _child(env: dict, call: str):
    """``call`` (a function of this module) in a child process with the server's
    settings; returns what it printed as JSON."""
    code = f"import json; from bench.bench_procurement import *; print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.bench_ledger import _postgres_url
    from bench.common import report
    from sahab.procurement.verify import verify_opening

    pg = _postgres_url()
    if pg is None:
        print("  skipped: no PostgreSQL on 127.0.0.1:5432")
        return
    url, drop = pg
    home = tempfile.mkdtemp(prefix="sahab-bench-")
    bidders = int(os.environ.get("SAHAB_BENCH_BIDDERS", "500"))
    tenders = int(os.environ.get("SAHAB_BENCH_TENDERS", "100000"))
    spread_seconds = float(os.environ.get("SAHAB_BENCH_SPREAD_SECONDS", "60"))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SAHAB_HOME": home,
           "SAHAB_HTTP_PORT": str(port), "DJANGO_SETTINGS_MODULE": "sahab.settings"}
    server = None
    try:
        setup = _child(env, f"prepare({url!r}, {home!r}, {bidders}, {tenders})")
        server = subprocess.Popen([sys.executable, "-m", "sahab.cli", "serve", "--workers", "4"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        health = _timed_gets(base, ["/healthz"], 200)
        sealed, seal_cost = _seal_all(base, setup["reference"], setup["tokens"])
        report("sealing and signing one bid (bidder's side, Python)", seal_cost * 1000, "ms",
               "healthz p95", _percentile(health, 95))
        report("checking one envelope (server: parse + Ed25519)",
               _check_cost(setup["reference"]) * 1000, "ms", "healthz p95",
               _percentile(health, 95))
        start = time.perf_counter()
        asked, answered = asyncio.run(_question_storm(
            base, setup["asked"], [token for token, _, _ in setup["tokens"]]))
        asked_in = time.perf_counter() - start
        if answered != bidders:
            raise RuntimeError(f"the anchor failed: {answered} of {bidders} questions taken")
        start = time.perf_counter()
        checked, healthy = asyncio.run(_get_storm(base, "/healthz", bidders))
        checked_in = time.perf_counter() - start
        if healthy != bidders:
            raise RuntimeError(f"the anchor failed: {healthy} of {bidders} /healthz answered")
        start = time.perf_counter()
        latencies, accepted = asyncio.run(_bid_storm(base, setup["reference"], sealed))
        elapsed = time.perf_counter() - start
        in_ledger, integrated_in = _ledger_count(base, setup["bid_tag"], accepted)
        print(f"  {bidders} concurrent bidders: {accepted} accepted, {in_ledger} in the "
              f"ledger, {'none lost' if accepted == in_ledger == bidders else 'LOST'} "
              f"(the last integrated {integrated_in:.1f} s after the last answer)")
        bids_did = BIDS_DID.format(n=bidders)
        against_health = {"subject_did": bids_did,
                          "anchor_did": HEALTHZ_BURST_DID.format(n=bidders)}
        against_questions = {"subject_did": bids_did,
                             "anchor_did": QUESTIONS_DID.format(n=bidders)}
        report("bids accepted per second (goal ratio >= 0.5)", accepted / elapsed, "/s",
               "healthz/s", healthy / checked_in, **against_health)
        report("bids accepted per second", accepted / elapsed, "/s", "questions/s",
               answered / asked_in, **against_questions)
        report("bid submission p95", _percentile(latencies, 95), "ms", "healthz p95",
               _percentile(checked, 95), **against_health)
        report("bid submission p95", _percentile(latencies, 95), "ms", "question p95",
               _percentile(asked, 95), **against_questions)

        # the same bidders spread over the last minute, on a second tender
        spread_sealed, _ = _seal_all(base, setup["spread"], setup["tokens"])
        at = _schedule(bidders, spread_seconds)
        checked, healthy = asyncio.run(_spread(base, "GET", "/healthz",
                                               [(None, None)] * bidders, at, 200))
        if healthy != bidders:
            raise RuntimeError(f"the anchor failed: {healthy} of {bidders} /healthz answered")
        spread_latencies, spread_accepted = asyncio.run(_spread(
            base, "POST", f"/api/procurement/tenders/{setup['spread']}/bids",
            [(token, {"envelope": envelope}) for token, envelope in spread_sealed], at, 201))
        spread_in_ledger, _ = _ledger_count(base, setup["spread_bid_tag"], spread_accepted)
        whole = spread_accepted == spread_in_ledger == bidders
        print(f"  {bidders} bidders spread over {spread_seconds:g} s: {spread_accepted} "
              f"accepted, {spread_in_ledger} in the ledger, {'none lost' if whole else 'LOST'}")
        spread_did = {"subject_did": SPREAD_DID.format(n=bidders, s=spread_seconds)}
        report("bid submission p95, spread", _percentile(spread_latencies, 95), "ms",
               "goal", 300.0, **spread_did)
        report("bid submission p95, spread", _percentile(spread_latencies, 95), "ms",
               "healthz p95", _percentile(checked, 95), **spread_did,
               anchor_did=HEALTHZ_SPREAD_DID.format(n=bidders, s=spread_seconds))
        print(f"      spread bids: p50 {_percentile(spread_latencies, 50):.0f} ms, p99 "
              f"{_percentile(spread_latencies, 99):.0f} ms, max "
              f"{max(spread_latencies) * 1000:.0f} ms")
        opening = _child(env, f"open_after_deadline({url!r}, {home!r}, "
                              f"{setup['reference']!r}, {setup['opening_keys']!r})")
        whole = opening["opened"] == opening["listed"] == opening["commitments"] == accepted
        print(f"  opening after the deadline: {opening['opened']} opened, {opening['listed']} "
              f"listed in the report of {opening['commitments']} commitments, "
              f"{opening['rejected']} rejected, {opening['missing']} missing: "
              f"{'every bid opened' if whole and accepted == bidders else 'BIDS LOST'} "
              f"({opening['seconds']:.1f} s, {opening['seconds'] / max(1, accepted) * 1000:.1f}"
              " ms a bid)")
        start = time.perf_counter()
        verified = verify_opening(base, setup["reference"], opening["key"])
        print(f"  verify-opening from public data: {len(verified.opened)} opened bids "
              f"confirmed, nothing committed left out ({time.perf_counter() - start:.1f} s)")
        lists = _timed_gets(base, ["/api/procurement/tenders?limit=50",
                                   "/api/procurement/tenders?limit=50&state=complete",
                                   "/api/procurement/tenders?limit=50&offset=50000",
                                   "/api/procurement/tenders?limit=50&q=num%C3%A9ro%2077"], 200)
        report(f"tender list p95 ({tenders:,} tenders, API)", _percentile(lists, 95), "ms",
               "healthz p95", _percentile(health, 95),
               subject_did="one client, one request at a time: four tender list queries",
               anchor_did="the same client, one request at a time: GET /healthz")
        pages = _timed_gets(base, ["/tenders/", "/tenders/?state=complete&page=100"], 100)
        report(f"tender list p95 ({tenders:,} tenders, web page)", _percentile(pages, 95), "ms",
               "goal", 300.0)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        drop()


if __name__ == "__main__":
    main()
