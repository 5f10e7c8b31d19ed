"""A registered letter's receipts are written with pending ledger entries, as bids and
orders are: a letter between administrations never holds the ledger's append lock while
its transaction is open; each receipt shows the log's promise until the worker's
sequencer gives it its index."""

from __future__ import annotations

import base64

import pytest
from django.db import connection

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry, PendingEntry
from sahab.mail import letters
from sahab.mail.models import Receipt
from tests.mail.test_api import api_client
from tests.threads import append_beside_open_change


def _send(world, reference: str = "MF/API/7"):
    return letters.send_letter(
        actor=world.alice.user, sender=world.alice_box, to=world.sante,
        reference=reference, classification="general", subject="Réunion", body="Texte",
        attachments=[])


def test_the_receipts_show_their_promise_then_their_index(world):
    client = api_client(world.alice)
    sent = client.post("/api/mail/letters", {
        "sender": world.alice_box.address, "to": "MS", "reference": "MF/API/7",
        "classification": "legal", "subject": "Avis", "body": "Texte",
        "attachments": [{"filename": "avis.pdf", "content_type": "application/pdf",
                         "content_base64": base64.b64encode(b"%PDF").decode()}]},
        content_type="application/json")
    assert sent.status_code == 201, sent.content
    letter = sent.json()
    receipts = Receipt.objects.filter(letter_id=letter["id"])
    pending = [r.ledger_pending for r in receipts]
    assert [(r["ledger_index"], r["promise_url"]) for r in letter["receipts"]] == [
        (None, f"http://testserver/ledger/promises/{p}") for p in pending]
    page = client.get(f"/mail/letters/{letter['id']}/").content.decode()
    assert all(f'href="/ledger/promises/{p}"' in page for p in pending)

    ledger.integrate_pending()  # the worker's timer, every second

    shown = client.get(f"/api/mail/letters/{letter['id']}").json()["receipts"]
    indexes = [r.ledger_index for r in receipts.all()]
    assert [(r["ledger_index"], r["promise_url"]) for r in shown] == [
        (i, None) for i in indexes]
    assert [(e.type, e.subject) for e in Entry.objects.filter(index__in=indexes)
            .order_by("index")] == [("mail.letter.acceptance", f"mail:letter:{letter['id']}"),
                                    ("mail.letter.delivery", f"mail:letter:{letter['id']}")]
    page = client.get(f"/mail/letters/{letter['id']}/").content.decode()
    assert all(f'href="/ledger/entries/{i}"' in page for i in indexes)


@pytest.mark.django_db(transaction=True)
def test_an_open_letter_does_not_hold_back_other_writes(world):
    """Before: each receipt appended its entry under the ledger's lock and held it until
    the letter's commit, so every write of the platform (a tender's step, a directory
    change, another ministry's letter) queued behind a letter whose transaction was
    slow (its attachments stored, its delivery). Now another change appends and commits
    while the letter's transaction is still open."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    added = append_beside_open_change(lambda: _send(world))
    # in commit order, dense: the other change committed first
    assert added[:2] == ["test.other", "mail.letter.acceptance"]


def test_a_receipt_pointed_at_another_letters_entry_gets_no_index(world, report_at_once):
    """A receipt's row pointed, in the database, at another letter's pending entry (to
    date a letter by another's ledger entry) gets no index; the status reports it, and
    the receipt whose promise number was taken away too."""
    first, second = _send(world, "MF/API/8"), _send(world, "MF/API/9")
    accepted = second.receipts.get(kind="acceptance")
    other = PendingEntry.objects.get(pk=first.receipts.get(kind="acceptance").ledger_pending)
    Receipt.objects.filter(pk=first.receipts.get(kind="acceptance").pk) \
        .update(ledger_pending=None)
    Receipt.objects.filter(pk=accepted.pk).update(ledger_pending=other.pk)

    ledger.integrate_pending()

    accepted.refresh_from_db()
    assert accepted.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"mail.receipt": 2}


def test_a_receipt_given_an_entry_of_its_type_and_letter_but_another_hash_gets_no_index(
        world, report_at_once):
    """From the second review: a pending entry written in the database for the same
    letter and kind, with another receipt's hash, and the receipt pointed at it: the
    receipt took that entry's index. The entry's hash must be the receipt's."""
    from sahab.mail.events import MailEvent

    letter = _send(world)
    delivery = letter.receipts.get(kind="delivery")
    forged = ledger.enqueue(MailEvent.LETTER_DELIVERY, letter.subject_uri, "system",
                            {"receipt_sha256": "00" * 32})
    Receipt.objects.filter(pk=delivery.pk).update(ledger_pending=forged.pending)

    ledger.integrate_pending()

    delivery.refresh_from_db()
    assert delivery.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"mail.receipt": 1}


def test_the_tracking_page_shows_a_receipt_with_neither_index_nor_promise(world):
    letter = _send(world)
    Receipt.objects.filter(letter=letter).update(ledger_pending=None, ledger_index=None)
    assert api_client(world.alice).get(f"/mail/letters/{letter.pk}/").status_code == 200
