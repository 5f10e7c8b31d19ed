"""Registered letters: acceptance, delivery, opening and non-delivery receipts, signed,
in the ledger as hashes, verifiable offline — and a changed receipt does not verify."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys

import pytest
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, PermissionDenied
from sahab.directory.selectors import SYSTEM
from sahab.ledger import services as ledger
from sahab.ledger.note import NoteError
from sahab.mail import letters, maildir, services
from sahab.mail.models import Letter, Receipt
from sahab.mail.receipts import verify_receipt


def send(world, **overrides):
    fields = dict(actor=world.alice.user, sender=world.alice_box, to=world.sante,
                  reference="MF/DGI/2026/0412", classification="budget",
                  subject="Arbitrages budgétaires 2027", body="Veuillez trouver ci-joint…",
                  attachments=[("note.pdf", "application/pdf", b"%PDF-1.4 demo")])
    fields.update(overrides)
    return letters.send_letter(**fields)


def test_a_letter_is_accepted_delivered_then_opened_with_signed_receipts(
        world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        letter = send(world)
    assert letter.state == Letter.State.DELIVERED
    assert letter.recipient == world.registry_sante
    [stored] = maildir.messages(world.registry_sante.maildir, "INBOX")
    raw = stored.path.read_bytes()
    assert b"X-Sahab-Letter: reference=MF/DGI/2026/0412" in raw
    assert b"DKIM-Signature" in raw
    with django_capture_on_commit_callbacks(execute=True):
        opened = letters.record_opening(letter, world.clerk.user,
                                        stored_key=letter.delivered_file)
    assert opened.kind == Receipt.Kind.OPENING
    kinds = [r.kind for r in letter.receipts.all()]
    assert kinds == ["acceptance", "delivery", "opening"]
    # the entries are pending (the letter held no ledger lock), then the worker's tick
    assert [r.ledger_index for r in letter.receipts.all()] == [None] * 3
    ledger.integrate_pending()
    indexes = [r.ledger_index for r in letter.receipts.all()]
    assert indexes == sorted(indexes) and None not in indexes
    vkey = letters.verifier_key()
    for receipt in letter.receipts.all():
        fields = verify_receipt(receipt.document, vkey)
        assert fields["kind"] == receipt.kind
        assert fields["message-sha256"] == letter.message_sha256
        entry = json.loads(bytes(ledger.get_entry(receipt.ledger_index).body))
        assert entry["type"] == f"mail.letter.{receipt.kind}"
        assert entry["data"]["receipt_sha256"] == \
            hashlib.sha256(receipt.document.encode()).hexdigest()
        # hashes only: neither the subject nor the body is in the ledger
        assert "Arbitrages" not in json.dumps(entry) and "ci-joint" not in json.dumps(entry)
    # the sender has each receipt in the Receipts folder
    assert len(maildir.messages(world.alice_box.maildir, maildir.RECEIPTS)) == 3
    assert len(maildir.messages(world.alice_box.maildir, maildir.SENT)) == 1


def test_a_changed_receipt_fails_verification(world):
    letter = send(world)
    receipt = letter.receipts.get(kind="delivery")
    forged = receipt.document.replace("kind delivery", "kind opening")
    with pytest.raises(NoteError):
        verify_receipt(forged, letters.verifier_key())
    moved = receipt.document.replace(letter.recipient.address, "autre@sante.test")
    with pytest.raises(NoteError):
        verify_receipt(moved, letters.verifier_key())


def test_receipts_verify_offline_with_the_command(world, tmp_path):
    letter = send(world)
    receipt = letter.receipts.get(kind="acceptance")
    path = tmp_path / "receipt.txt"
    path.write_text(receipt.document)
    command = [sys.executable, "-m", "sahab.cli", "mail", "verify-receipt", str(path),
               "--key", letters.verifier_key()]
    env = {"PATH": "/usr/bin:/bin"}  # no settings, no database: offline
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "verifies" in done.stdout and letter.reference in done.stdout
    path.write_text(receipt.document.replace("acceptance", "delivery"))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "does NOT verify" in done.stderr


def test_undelivered_letters_get_a_non_delivery_receipt_after_the_delay(world):
    services.set_mailbox_active(actor=SYSTEM, mailbox=world.registry_sante, active=False)
    letters_before = Letter.objects.count()
    with pytest.raises(InvalidInput):  # no active registry: refused at once
        send(world)
    assert Letter.objects.count() == letters_before
    services.set_mailbox_active(actor=SYSTEM, mailbox=world.registry_sante, active=True)
    letter = send(world, reference="MF/2026/2")
    assert letter.state == "delivered"
    # a full registry: the letter waits, then is declared undelivered
    world.registry_sante.refresh_from_db()
    world.registry_sante.quota_bytes = 1
    world.registry_sante.save()
    waiting = send(world, reference="MF/2026/3")
    assert waiting.state == Letter.State.ACCEPTED and "full" in waiting.last_error
    Letter.objects.filter(pk=waiting.pk).update(deliver_by=timezone.now() - dt.timedelta(1))
    letters.advance_letters()
    waiting.refresh_from_db()
    assert waiting.state == Letter.State.NOT_DELIVERED
    notice = waiting.receipts.get(kind="non_delivery")
    assert "full" in verify_receipt(notice.document, letters.verifier_key())["detail"]


def test_only_a_delegated_agent_opening_the_delivered_file_earns_the_receipt(world):
    letter = send(world)
    registry = world.registry_sante
    # nobody outside the registry, not the sender, not another message's file
    assert letters.record_opening(letter, world.bob.user, stored_key=letter.delivered_file) \
        is None
    assert letters.record_opening(letter, world.alice.user,
                                  stored_key=letter.delivered_file) is None
    assert letters.record_opening(letter, world.clerk.user, stored_key="1.M1P1.other") is None
    # the IMAP path: the registry's own login names nobody; a delegated agent does
    [stored] = maildir.messages(registry.maildir, "INBOX")
    (registry.maildir / "dovecot-uidlist").write_text(
        f"3 V1 N2 G0\n1 :{stored.key}\n")
    assert letters.opened_over_imap(user=registry.address, mailbox="INBOX", uid=1) is None
    assert letters.opened_over_imap(user=world.clerk.mailbox.address, mailbox="INBOX",
                                    uid=1) is None
    receipt = letters.opened_over_imap(user=world.clerk.mailbox.address,
                                       mailbox=f"shared/{registry.address}/INBOX", uid=1)
    assert f"opened-by {world.clerk.user.get_full_name()} <{world.clerk.mailbox.address}>" \
        in receipt.document
    letter.refresh_from_db()
    assert letter.state == Letter.State.OPENED


def test_rights_and_input(world):
    with pytest.raises(PermissionDenied):  # bob may not send from alice's mailbox
        send(world, actor=world.bob.user)
    with pytest.raises(InvalidInput):
        send(world, reference="A\r\nBcc: x@y")
    with pytest.raises(InvalidInput):
        send(world, classification="secret-defense")
    send(world)
    with pytest.raises(Conflict):
        send(world)
    assert letters.letters_visible_to(world.clerk.user).count() == 1
    assert letters.letters_visible_to(world.bob.user).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_letter_sent_from_a_mail_client_gets_the_same_evidence(committed_world, smtp_server):
    import email.policy
    import smtplib
    from email.message import EmailMessage

    from tests.mail.conftest import client_tls

    w = committed_world
    login = w.alice_box.address
    message = EmailMessage()
    message["From"], message["To"] = login, "bureau-ordre+lettre@sante.test"
    message["Subject"] = "[MF/2026/88] Demande de crédits"
    message.set_content("Monsieur le Ministre,\n\nJ'ai l'honneur…")
    message.add_attachment(b"%PDF-1.4 annexe", maintype="application", subtype="pdf",
                           filename="annexe.pdf")
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=30) as client:
        client.starttls(context=client_tls())
        client.login(login, w.passwords[login])
        client.ehlo()
        client.mail(login)
        assert client.rcpt("bureau-ordre+lettre@sante.test")[0] == 250
        assert client.rcpt(w.bob_box.address)[0] == 452  # a letter travels alone
        code, reply = client.data(message.as_bytes(policy=email.policy.SMTP))
    assert code == 250 and b"MF/2026/88" in reply
    letter = Letter.objects.get(reference="MF/2026/88")
    assert letter.state == Letter.State.DELIVERED and letter.sent_by == w.alice
    assert [r.kind for r in letter.receipts.all()] == ["acceptance", "delivery"]
    for receipt in letter.receipts.all():
        assert verify_receipt(receipt.document, letters.verifier_key())["reference"] == \
            "MF/2026/88"
    [stored] = maildir.messages(w.registry_sante.maildir, "INBOX")
    raw = stored.path.read_bytes()
    assert b"X-Sahab-Letter: reference=MF/2026/88" in raw and b"annexe.pdf" in raw
    assert stored.key == letter.delivered_file


def test_a_receipt_field_cannot_hide_a_second_one():
    """A value holding a line break ``str.splitlines`` knows (U+2028…) would read as two
    fields — ``kind opening`` inside an acceptance receipt: refused when writing, and a
    receipt whose text does so, or names a field twice, does not verify."""
    from sahab.mail.receipts import RECEIPT_HEADER, receipt_text

    with pytest.raises(ValueError):
        receipt_text({"kind": "acceptance", "reference": "R1\u2028kind opening"})
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.ledger import note

    signer = note.Signer("test/receipts", Ed25519PrivateKey.generate())
    for text in (f"{RECEIPT_HEADER}\nkind acceptance\nreference R1\u2028kind opening\n",
                 f"{RECEIPT_HEADER}\nkind acceptance\nkind opening\n"):
        document = text.encode() + b"\n" + signer.signature_line(text.encode()).encode()
        with pytest.raises(NoteError):
            verify_receipt(document, signer.verifier.vkey())
