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
