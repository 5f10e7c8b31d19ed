"""How the tests submit and withdraw bids: one place to adapt when the way bids are sealed
and submitted changes (the tests above it speak of companies, tenders and prices only)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

from sahab.procurement import services
from sahab.procurement.models import Bid, Tender


def submit_bid(company_user, tender: Tender, prices: dict[str, str], *,
               now: dt.datetime | None = None) -> Bid:
    """``company_user`` submits a sealed bid with ``prices`` (lot number → price)."""
    return services.submit_bid(actor=company_user, tender=tender, prices=prices,
                               technical_offer="Offre technique", now=now)


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
    original = services._step

    def step(tender, event, *args, **kwargs):
        if event == f"procurement.{event_type}" and getattr(armed, "on", False):
            reached.set()
            release.wait(10)
        return original(tender, event, *args, **kwargs)

    def arm() -> None:
        armed.on = True

    services._step = step
    try:
        yield arm, reached, release
    finally:
        services._step = original
        release.set()
