"""Writes raced in threads, each on its own database connection (PostgreSQL tests)."""

from __future__ import annotations

import threading

from django.db import connection

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
