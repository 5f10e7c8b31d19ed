"""Database round trips of a granted call through the gateway (see tests/procurement's
budget): once the registry's lookups are cached, a call reads only the registry's
version, and nothing when a reading may serve calls for a while (the message log writes
its records from its own thread, in batches). On SQLite the version is read on the event
loop (counted the same); on PostgreSQL in the database thread."""

import concurrent.futures
import sqlite3
from collections import Counter

from django.db import connection

from sahab.exchange import gateway as gateway_module

CALLS = 5


def _count_round_trips(monkeypatch, intranet) -> Counter:
    seen: Counter = Counter()
    real = gateway_module._db

    def counting(fn, args):
        seen[getattr(fn, "__name__", repr(fn))] += 1
        return real(fn, args)

    monkeypatch.setattr(gateway_module, "_db", counting)
    registry = intranet.gateway.gateway.registry
    local = registry.local_version
    if local is not None:
        def local_counting():
            seen["_registry_version"] += 1
            return local()

        monkeypatch.setattr(registry, "local_version", local_counting)
    return seen


def test_a_granted_call_reads_only_the_registry_version(intranet, monkeypatch):
    local = intranet.gateway.gateway.registry.local_version
    assert (local is not None) == (connection.vendor == "sqlite")
    assert intranet.call("persons/09876543").status_code == 200  # warms the lookups
    seen = _count_round_trips(monkeypatch, intranet)
    for _ in range(CALLS):
        assert intranet.call("persons/09876543").status_code == 200
    assert seen == Counter({"_registry_version": CALLS}), seen


def test_with_a_reading_kept_for_a_while_a_call_reads_nothing(intranet, monkeypatch,
                                                              settings):
    settings.EXCHANGE_REGISTRY_MAX_AGE_SECONDS = 60
    assert intranet.call("persons/09876543").status_code == 200
    seen = _count_round_trips(monkeypatch, intranet)
    for _ in range(CALLS):
        assert intranet.call("persons/09876543").status_code == 200
    assert seen == Counter(), seen


def test_a_busy_database_sends_the_version_reading_to_the_database_thread(intranet,
                                                                         monkeypatch):
    """On SQLite the reading on the event loop never waits: if it fails (a lock), the
    database thread reads the version, and a revocation still applies to the next call."""
    from sahab.exchange import services

    registry = intranet.gateway.gateway.registry
    if registry.local_version is None:
        return  # PostgreSQL: every reading is in the database thread

    def locked():
        raise sqlite3.OperationalError("database is locked")

    seen = _count_round_trips(monkeypatch, intranet)
    monkeypatch.setattr(registry, "local_version", locked)
    assert intranet.call("persons/09876543").status_code == 200
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="fin")
    assert intranet.call("persons/09876543").status_code == 403
    assert seen["_registry_version"] == 2, seen


def test_concurrent_calls_share_readings_that_started_after_they_arrived(intranet,
                                                                         monkeypatch):
    """In the database thread, calls that arrive while a reading is under way share the
    next one (each call still uses a reading that started after it arrived)."""
    registry = intranet.gateway.gateway.registry
    monkeypatch.setattr(registry, "local_version", None)
    assert intranet.call("persons/09876543").status_code == 200
    seen = _count_round_trips(monkeypatch, intranet)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: intranet.call("persons/09876543").status_code,
                                 range(24)))  # the grant allows 30 a minute
    assert statuses == [200] * 24
    assert 1 <= seen["_registry_version"] <= 24, seen
