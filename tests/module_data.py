"""Data that every test of a module reads, built once for the module instead of once per test.

The demo takes seconds to load; a module whose tests all start from it builds it once
inside a transaction that stays open for the module and is rolled back at its end. Each
test then runs in a savepoint of that transaction (pytest-django's ``db``), so what a
test writes is rolled back as before, and on a copy of the module's SAHAB_HOME (keys, mail,
the signer's record), so that no test sees the files another wrote.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import transaction
from django.test import override_settings
from django.utils import translation


@contextmanager
def module_transaction(django_db_blocker) -> Iterator[None]:
    """An outer transaction for a module's data, rolled back when the module ends."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        # as Django's TestCase marks its own: durable blocks of the services stay allowed
        atomic._from_testcase = True
        atomic.__enter__()
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@contextmanager
def demo_of_module(django_db_blocker, home: Path, **overrides) -> Iterator[dict]:
    """The demo loaded once into ``home``, in English as the tests read it; its data lasts
    until the module ends."""
    with module_transaction(django_db_blocker):
        with (django_db_blocker.unblock(), translation.override("en"),
              override_settings(SAHAB_HOME=home, LEDGER_SIGNER_DIR=str(home / "ledger-signer"),
                                LANGUAGE_CODE="en", **overrides)):
            data = _load_demo_with_keys()
        _forget_cached_state()
        yield data


def on_a_copy_of(home: Path, settings, tmp_path: Path) -> Path:
    """Point this test's SAHAB_HOME (and the ledger signer's record) at a copy of ``home``."""
    copy = tmp_path / "home"
    shutil.copytree(home, copy, symlinks=True)
    settings.SAHAB_HOME = copy
    settings.LEDGER_SIGNER_DIR = str(copy / "ledger-signer")
    _forget_cached_state()
    return copy


def _load_demo_with_keys() -> dict:
    from sahab.core import keys
    from sahab.core.demo import load_demo

    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    _forget_cached_state()
    return load_demo()


def _forget_cached_state() -> None:
    """The ledger signer's key and the mail routing table are cached per process."""
    from sahab.ledger import services as ledger
    from sahab.mail import webmail

    ledger._signer.cache_clear()
    webmail._cached = None
