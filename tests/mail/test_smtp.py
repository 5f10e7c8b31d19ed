"""The SMTP server with real clients: smtplib with STARTTLS and AUTH, DKIM that dkimpy
verifies in the recipient's Maildir, IMAP through Dovecot, and every refusal's code."""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
from email.message import EmailMessage

import dkim
import pytest

from sahab.mail import maildir
from sahab.mail.routing import load
from tests.mail.conftest import client_tls, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def letter(sender: str, to: str, subject: str = "Budget 2027", body: str = "Bonjour") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def submit(server, login: str, password: str, sender: str, to: list[str], data: bytes):
    with smtplib.SMTP(server.host, server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.login(login, password)
        return client.sendmail(sender, to, data)


def stored(mailbox) -> list[bytes]:
    return [m.path.read_bytes() for m in maildir.messages(mailbox.maildir, "INBOX")]


def test_submission_delivers_signed_mail_that_dkimpy_verifies(committed_world, smtp_server):
    w = committed_world
    refused = submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
                     w.alice_box.address, [w.bob_box.address],
                     letter(w.alice_box.address, w.bob_box.address))
    assert refused == {}
    [raw] = stored(w.bob_box)
    records = load().records

    def dns(name, timeout=5):
        return records.get(name.decode().rstrip(".")).encode()

    signatures = [v for k, v in email.message_from_bytes(raw).items()
                  if k.lower() == "dkim-signature"]
    assert len(signatures) == 2  # Ed25519 and RSA
    for index in range(2):
        assert dkim.DKIM(raw).verify(idx=index, dnsfunc=dns)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert "dkim=pass header.d=finances.test" in parsed["Authentication-Results"]
    assert "smtp.auth=" + w.alice_box.address in parsed["Authentication-Results"]
    assert parsed["Message-ID"] and parsed["Date"]  # added for the client
    assert "with ESMTPSA" in parsed["Received"]


def test_imap_through_dovecot_lists_and_fetches_the_message(committed_world, smtp_server,
                                                            dovecot):
    w = committed_world
    submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
           w.alice_box.address, [w.bob_box.address],
           letter(w.alice_box.address, w.bob_box.address, subject="Par IMAP"))
    imap = imaplib.IMAP4("127.0.0.1", dovecot)
    imap.starttls(ssl_context=client_tls())
    imap.login(w.bob_box.address, w.passwords[w.bob_box.address])
    status, folders = imap.list()
    assert status == "OK" and any(b"INBOX" in f for f in folders)
    assert any(b"Sent" in f for f in folders)
    status, count = imap.select("INBOX")
    assert status == "OK" and count == [b"1"]
    status, data = imap.fetch("1", "(RFC822)")
    message = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert message["Subject"] == "Par IMAP"
    imap.logout()
    with pytest.raises(imaplib.IMAP4.error):
        bad = imaplib.IMAP4("127.0.0.1", dovecot)
        bad.starttls(ssl_context=client_tls())
        bad.login(w.bob_box.address, "wrong password!")


def test_unauthenticated_submission_is_refused(committed_world, smtp_server):
    w = committed_world
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.ehlo()
        code, _ = client.mail(w.alice_box.address)
        assert code == 530  # STARTTLS first
        client.starttls(context=client_tls())
        client.ehlo()
        code, _ = client.mail(w.alice_box.address)
        assert code == 530  # then AUTH


def test_wrong_password_is_refused(committed_world, smtp_server):
    w = committed_world
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        submit(smtp_server, w.alice_box.address, "not the password", w.alice_box.address,
               [w.bob_box.address], letter(w.alice_box.address, w.bob_box.address))
    assert refused.value.smtp_code == 535


def test_forged_sender_is_refused(committed_world, smtp_server):
    w = committed_world
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
               w.bob_box.address, [w.bob_box.address],
               letter(w.bob_box.address, w.bob_box.address))
    assert refused.value.smtp_code == 553
    with pytest.raises(smtplib.SMTPDataError) as forged_header:
        submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
               w.alice_box.address, [w.bob_box.address],
               letter("ministre@sante.test", w.bob_box.address))
    assert forged_header.value.smtp_code == 550
    assert stored(w.bob_box) == []


def test_unknown_recipient_and_relay_are_refused(committed_world, smtp_server):
    w = committed_world
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        client.ehlo("mx.example.org")
        client.mail("someone@example.org")
        assert client.rcpt("nobody@sante.test")[0] == 550
        assert client.rcpt("someone@elsewhere.example")[0] == 554
        assert client.rcpt(w.bob_box.address)[0] == 250
        code, _reply = client.data(letter("someone@example.org", w.bob_box.address))
        assert code == 250
    [raw] = stored(w.bob_box)
    assert b"dkim=none" in raw  # an unsigned message from outside, said so


def test_limits_give_clear_replies(committed_world, smtp_server, settings):
    w = committed_world
    settings.MAIL_MAX_RECIPIENTS = 2
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        client.ehlo("mx.example.org")
        client.mail("someone@example.org")
        assert client.rcpt(w.bob_box.address)[0] == 250
        assert client.rcpt(w.alice_box.address)[0] == 250
        assert client.rcpt(w.registry_sante.address)[0] == 452
        client.rset()
        client.mail("someone@example.org")
        client.rcpt(w.bob_box.address)
        huge = b"Subject: x\r\n" + b"".join(b"X-Filler: " + b"a" * 900 + b"\r\n"
                                            for _ in range(400)) + b"\r\nbody\r\n"
        assert client.data(huge)[0] == 552
    assert stored(w.bob_box) == []


def test_a_retried_submission_is_not_stored_twice(committed_world, smtp_server):
    w = committed_world
    data = letter(w.alice_box.address, w.bob_box.address)
    data = b"Message-ID: <retry-1@finances.test>\r\n" + data
    for _ in range(2):
        submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
               w.alice_box.address, [w.bob_box.address], data)
    assert len(stored(w.bob_box)) == 1


def test_mail_for_other_domains_waits_in_the_outbound_queue(committed_world, smtp_server):
    from sahab.mail.models import OutboundMessage

    w = committed_world
    submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
           w.alice_box.address, ["partner@example.org", w.bob_box.address],
           letter(w.alice_box.address, "partner@example.org"))
    row = wait_for(lambda: OutboundMessage.objects.first())
    assert row.recipient == "partner@example.org" and row.state == "queued"
    assert len(stored(w.bob_box)) == 1
