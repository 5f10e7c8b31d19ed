"""How the tests submit and withdraw bids: one place to adapt when the way bids are sealed
and submitted changes (the tests above it speak of companies, tenders and prices only)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import time_machine

from sahab.ledger import services as ledger
from sahab.procurement import services
from sahab.procurement.models import Bid, Tender
from tests import factories


def submit_bid(company_user, tender: Tender, prices: dict[str, str], *,
               now: dt.datetime | None = None) -> Bid:
    """``company_user`` seals and signs a bid with ``prices`` (lot number → price) on its
    side and submits the envelope."""
    return factories.submit_sealed(tender, company_user, prices,
                                   technical_offer="Offre technique", now=now)


def run_timers_at(moment: dt.datetime) -> list[str]:
    """The worker's timers at ``moment``, on a clock moved there too: committee members'
    keys are only released on a clock past the deadline, whatever ``now`` says."""
    with time_machine.travel(moment):
        return services.advance_tenders(now=moment)


def sequence_bids() -> None:
    """What the worker does within a second of a bid: the sequencer integrates the
    pending entries and the bids get their indexes."""
    ledger.integrate_pending()
    services.fill_bid_indexes()


def withdraw_bid(company_user, bid: Bid, *, now: dt.datetime | None = None) -> Bid:
    return services.withdraw_bid(actor=company_user, bid=bid, now=now)


@contextlib.contextmanager
def paused_before_commit(event_type: str):
    """While inside, a thread that calls ``arm()`` and then writes the ledger entry
    ``procurement.<event_type>`` stops just before it — its checks done, its locks
    held, its transaction open — and signals ``reached``; it goes on when ``release``
    is set (or after 10 s, so that a test that went wrong cannot hang).

    Yields ``(arm, reached, release)``."""
    reached, release = threading.Event(), threading.Event()
    armed = threading.local()
    ledger = services.ledger  # the module procurement records through
    originals = {"record": ledger.record, "enqueue": ledger.enqueue}

    def paused(original):
        def write(event, *args, **kwargs):
            if event == f"procurement.{event_type}" and getattr(armed, "on", False):
                reached.set()
                release.wait(10)
            return original(event, *args, **kwargs)
        return write

    def arm() -> None:
        armed.on = True

    for name, original in originals.items():  # bids are enqueued, other steps recorded
        setattr(ledger, name, paused(original))
    try:
        yield arm, reached, release
    finally:
        for name, original in originals.items():
            setattr(ledger, name, original)
        release.set()


def opening_report(tender: Tender) -> dict:
    """The tender's full opening report, as stored, checked against the SHA-256 that its
    ``procurement.tender.opened`` ledger entry records."""
    import hashlib
    import json

    from sahab.ledger.models import Entry
    from sahab.procurement.models import OPENING_REPORT

    entry = json.loads(bytes(Entry.objects.get(type="procurement.tender.opened",
                                               subject=f"tender:{tender.reference}").body))
    content = bytes(tender.documents.get(name=OPENING_REPORT).content)
    assert hashlib.sha256(content).hexdigest() == entry["data"]["report"]["sha256"]
    return json.loads(content)
