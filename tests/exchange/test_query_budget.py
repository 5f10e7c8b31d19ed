"""Database round trips of a granted call through the gateway (see tests/procurement's
budget): once the registry's lookups are cached, a call reads only the registry's
version, and nothing when a reading may serve calls for a while (the message log writes
its records from its own thread, in batches)."""

from collections import Counter

from sahab.exchange import gateway as gateway_module

CALLS = 5


def _count_round_trips(monkeypatch) -> Counter:
    seen: Counter = Counter()
    real = gateway_module._db

    def counting(fn, args):
        seen[getattr(fn, "__name__", repr(fn))] += 1
        return real(fn, args)

    monkeypatch.setattr(gateway_module, "_db", counting)
    return seen


def test_a_granted_call_reads_only_the_registry_version(intranet, monkeypatch):
    assert intranet.call("persons/09876543").status_code == 200  # warms the lookups
    seen = _count_round_trips(monkeypatch)
    for _ in range(CALLS):
        assert intranet.call("persons/09876543").status_code == 200
    assert seen == Counter({"_registry_version": CALLS}), seen


def test_with_a_reading_kept_for_a_while_a_call_reads_nothing(intranet, monkeypatch,
                                                              settings):
    settings.EXCHANGE_REGISTRY_MAX_AGE_SECONDS = 60
    assert intranet.call("persons/09876543").status_code == 200
    seen = _count_round_trips(monkeypatch)
    for _ in range(CALLS):
        assert intranet.call("persons/09876543").status_code == 200
    assert seen == Counter(), seen
