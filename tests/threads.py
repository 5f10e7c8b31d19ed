"""Writes raced in threads, each on its own database connection (PostgreSQL tests)."""

from __future__ import annotations

import threading

from django.db import connection, transaction

from sahab.core.errors import Conflict


def in_thread(target, outcome: dict) -> threading.Thread:
    """Run ``target`` on its own database connection; its result or Conflict in
    ``outcome``, and any other exception under "error" (reported by the test, not lost
    in the thread)."""

    def run() -> None:
        try:
            outcome["result"] = target()
        except Conflict as refused:
            outcome["refused"] = refused
        except Exception as failed:
            outcome["error"] = failed
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def waits_for_open_transaction(opened, other) -> tuple[dict, dict, bool]:
    """Run ``opened`` in a transaction kept open once it is done, then ``other`` in its own
    thread; returns both outcomes and whether ``other`` was still waiting 5 s later,
    that is, held back by the open transaction (which then commits)."""
    done, release = threading.Event(), threading.Event()

    def open_change():
        with transaction.atomic():
            result = opened()
            done.set()
            release.wait(10)  # its transaction stays open, its writes made
        return result

    def other_change():
        with transaction.atomic():
            return other()

    first, second = {}, {}
    opening = in_thread(open_change, first)
    assert done.wait(20), first
    changing = in_thread(other_change, second)
    changing.join(5)
    held_back = changing.is_alive()
    release.set()
    opening.join(10)
    changing.join(10)
    return first, second, held_back


def append_beside_open_change(change) -> list[str]:
    """Run ``change`` in a transaction kept open, and an append of another entry beside
    it; assert that both succeed and that the append did not wait for the change's
    commit (which it did while the change held the ledger's append lock). Returns the
    types of the entries the log got from then on, once the pending ones are integrated
    (the append first: it committed first)."""
    from sahab.ledger import services as ledger
    from sahab.ledger.models import Entry

    ledger.integrate_pending()
    size = ledger.tree_size()
    changed, other, held_back = waits_for_open_transaction(
        change, lambda: ledger.append_many([ledger.Record("test.other", "s", {}, "system")]))
    assert set(changed) == {"result"} and set(other) == {"result"}, (changed, other)
    assert not held_back, "the other write waited for the open change's transaction"
    ledger.integrate_pending()
    return list(Entry.objects.filter(index__gte=size).order_by("index")
                .values_list("type", flat=True))
