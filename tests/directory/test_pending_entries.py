"""The directory's and mail administration's changes write their ledger entries pending,
as bids, orders and letters do: an account, an agent's roles, a password, a mailbox never
hold the ledger's append lock while their transaction is open, and their entries reach
the log within the worker's tick, committed if and only if the change is."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from sahab.directory import services
from sahab.directory.models import Role
from sahab.directory.selectors import SYSTEM
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry, PendingEntry
from tests import factories
from tests.threads import append_beside_open_change


@pytest.mark.django_db(transaction=True)
def test_an_open_directory_change_does_not_hold_back_other_writes():
    """Before: creating an agent (its account, then its mailbox) appended two entries
    under the ledger's lock and held it until the commit, so every write of the platform
    (a tender's step, another ministry's agent) queued behind it. At national size,
    300,000 agents change passwords, end sessions and get roles. Now another change
    appends and commits while the agent's transaction is still open."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    ministry = factories.administration()
    added = append_beside_open_change(
        lambda: factories.agent(administration=ministry, roles=[Role.PROCUREMENT_OFFICER]))
    assert added[:2] == ["test.other", "directory.agent.created"]


@pytest.mark.django_db
def test_a_change_rolled_back_leaves_no_pending_entry():
    agent = factories.agent()
    ledger.integrate_pending()
    waiting = PendingEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.set_agent_roles(actor=SYSTEM, agent=agent, roles=[Role.AUDITOR])
        assert PendingEntry.objects.count() == waiting + 1
        raise RuntimeError("the change fails after its entry was written")
    assert PendingEntry.objects.count() == waiting
    ledger.integrate_pending()
    assert not Entry.objects.filter(type="directory.agent.roles_changed").exists()


@pytest.mark.django_db
def test_the_entry_reaches_the_log_at_the_tick_with_its_promise_kept():
    agent = factories.agent()
    services.set_agent_roles(actor=SYSTEM, agent=agent, roles=[Role.AUDITOR])
    pending = PendingEntry.objects.filter(type="directory.agent.roles_changed").get()
    assert pending.index is None
    ledger.integrate_pending()
    pending.refresh_from_db()
    entry = Entry.objects.get(index=pending.index)
    assert (entry.type, entry.subject) == ("directory.agent.roles_changed",
                                          f"user:{agent.user_id}")
    assert ledger.promise_state(pending.pk)["index"] == pending.index
