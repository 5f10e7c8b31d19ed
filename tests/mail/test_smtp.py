"""The SMTP server with real clients: smtplib with STARTTLS and AUTH, DKIM that dkimpy
verifies in the recipient's Maildir, IMAP through Dovecot, and every refusal's code."""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
from email.message import EmailMessage

import dkim
import pytest

from sahab.directory.selectors import SYSTEM
from sahab.mail import delivery, maildir
from sahab.mail.routing import load
from tests import factories
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
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
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
        bad = imaplib.IMAP4("127.0.0.1", dovecot.port)
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


def test_the_same_message_sent_twice_is_delivered_twice(committed_world, smtp_server):
    """The finding: the same bytes submitted twice got 250 twice and were delivered once
    (a seven-day duplicate suppression meant for retries)."""
    w = committed_world
    data = b"Message-ID: <twice-1@finances.test>\r\n" + \
        letter(w.alice_box.address, w.bob_box.address)
    for _ in range(2):
        assert submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
                      w.alice_box.address, [w.bob_box.address], data) == {}
    assert len(stored(w.bob_box)) == 2


def test_the_quota_counts_the_incoming_message(committed_world, smtp_server):
    """The finding: the quota check ignored the size of the message being delivered."""
    from sahab.mail import services

    w = committed_world
    services.set_quota(actor=SYSTEM, mailbox=w.bob_box, quota_bytes=1024 * 1024)
    wait_for(lambda: smtp_server.live.table.mailboxes[w.bob_box.address].quota == 1024 * 1024)
    big = letter(w.alice_box.address, w.bob_box.address, body="x" * 1_100_000)
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=10) as client:
        client.starttls(context=client_tls())
        client.login(w.alice_box.address, w.passwords[w.alice_box.address])
        client.ehlo()
        # announced with SIZE=: refused at RCPT
        client.mail(w.alice_box.address, [f"SIZE={len(big)}"])
        code, reply = client.rcpt(w.bob_box.address)
        assert code == 452 and b"4.2.2" in reply
        client.rset()
        # not announced: refused at DATA, when the size is known
        client.mail(w.alice_box.address)
        assert client.rcpt(w.bob_box.address)[0] == 250
        code, reply = client.data(big)
        assert code == 452 and b"4.2.2" in reply
        client.rset()
        small = letter(w.alice_box.address, w.bob_box.address, body="court")
        client.sendmail(w.alice_box.address, [w.bob_box.address], small)
    assert len(stored(w.bob_box)) == 1


def test_ehlo_advertises_what_the_server_does(committed_world, smtp_server):
    """The finding: EHLO advertised neither PIPELINING nor ENHANCEDSTATUSCODES."""
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        code, _ = client.ehlo("mx.example.org")
        assert code == 250
        for keyword in ("pipelining", "enhancedstatuscodes", "8bitmime", "smtputf8", "size",
                        "starttls"):
            assert client.has_extn(keyword), keyword
        # and every reply carries an enhanced status code (RFC 2034)
        assert client.noop() == (250, b"2.0.0 OK")
        code, reply = client.docmd("FROBNICATE")
        assert code == 500 and reply.startswith(b"5.5.2 ")
        code, reply = client.rcpt("someone@sante.test")
        assert code == 503 and reply.startswith(b"5.5.1 ")


def test_bcc_reaches_its_recipient_and_nobody_sees_it(committed_world, smtp_server):
    """The finding: a submitted Bcc: header reached the visible recipients unchanged."""
    w = committed_world
    blind = w.registry_finances.address
    data = b"Bcc: " + blind.encode() + b"\r\n" + letter(w.alice_box.address, w.bob_box.address)
    submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
           w.alice_box.address, [w.bob_box.address, blind], data)
    [to_bob] = stored(w.bob_box)
    [to_blind] = stored(w.registry_finances)
    for raw in (to_bob, to_blind):
        headers = raw.split(b"\r\n\r\n", 1)[0]
        # A header field, not the three bytes: base64 in a DKIM signature may hold "Bcc".
        assert not re.search(rb"(?im)^bcc[ \t]*:", headers)
        assert blind.encode() not in headers
        assert b"dkim=pass" in raw


def test_implicit_tls_submission_on_its_own_port_delivers_signed_mail(
        committed_world, smtp_server):
    """Port 465 (RFC 8314): TLS from the first byte, then the same rules as submission —
    authentication required, signed with both DKIM keys."""
    w = committed_world
    login, password = w.alice_box.address, w.passwords[w.alice_box.address]
    with smtplib.SMTP_SSL(smtp_server.host, smtp_server.smtps_port, timeout=10,
                          context=client_tls()) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(login, [w.bob_box.address], letter(login, w.bob_box.address))
        assert refused.value.smtp_code == 530
        client.login(login, password)
        assert client.sendmail(login, [w.bob_box.address],
                               letter(login, w.bob_box.address, "Par le port 465")) == {}
    [raw] = stored(w.bob_box)
    assert b"Par le port 465" in raw
    assert b"dkim=pass" in raw


def test_the_platforms_own_marks_are_stripped_from_submitted_mail(committed_world,
                                                                  smtp_server):
    """X-Sahab-* header fields are the platform's (registered letters): a user cannot set
    them, whatever their case."""
    w = committed_world
    login, password = w.alice_box.address, w.passwords[w.alice_box.address]
    marked = (b"X-Sahab-Letter: reference=MF/2026/1; classification=budget\r\n"
              b"x-sahab-receipt: opened\r\n") + letter(login, w.bob_box.address)
    submit(smtp_server, login, password, login, [w.bob_box.address], marked)
    [raw] = stored(w.bob_box)
    assert not re.search(rb"(?im)^x-sahab-", raw.split(b"\r\n\r\n", 1)[0])
    assert b"dkim=pass" in raw


def test_sender_is_checked_like_from_and_from_is_required(committed_world, smtp_server):
    """The findings: Sender: ministre@… was accepted; a message without From: was accepted
    and signed."""
    w = committed_world
    login, password = w.alice_box.address, w.passwords[w.alice_box.address]
    forged = b"Sender: ministre@sante.test\r\n" + letter(login, w.bob_box.address)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(smtp_server, login, password, login, [w.bob_box.address], forged)
    assert refused.value.smtp_code == 550 and b"Sender" in refused.value.smtp_error
    headless = b"To: " + w.bob_box.address.encode() + b"\r\nSubject: anonyme\r\n\r\nqui ?\r\n"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(smtp_server, login, password, login, [w.bob_box.address], headless)
    assert refused.value.smtp_code == 550 and b"5.6.0" in refused.value.smtp_error
    assert stored(w.bob_box) == []


def test_mail_for_other_domains_waits_in_the_outbound_queue(committed_world, smtp_server):
    from sahab.mail.models import OutboundMessage

    w = committed_world
    submit(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address],
           w.alice_box.address, ["partner@example.org", w.bob_box.address],
           letter(w.alice_box.address, "partner@example.org"))
    row = wait_for(lambda: OutboundMessage.objects.first())
    assert row.recipient == "partner@example.org" and row.state == "queued"
    assert len(stored(w.bob_box)) == 1


def test_postmaster_abuse_and_the_dmarc_address_reach_the_administrators(committed_world,
                                                                         smtp_server):
    """The findings: postmaster was refused (RFC 5321 §4.5.1) and the DMARC record's
    report address answered 550."""
    from sahab.directory.models import Agent
    from sahab.mail import services
    from sahab.mail.models import Mailbox

    w = committed_world
    admin = Agent.objects.get(user__username="admin.ms")
    admin_box = services.provision_agent_mailbox(admin)
    platform = factories.platform_admin(administration=w.finances)
    platform_box = services.provision_agent_mailbox(platform)
    Mailbox.objects.filter(pk=admin_box.pk).update(display_name="x")  # any change …
    services.set_quota(actor=SYSTEM, mailbox=admin_box, quota_bytes=2**30)  # … reloads
    table = wait_for(lambda: smtp_server.live.table if "abuse@sante.test" in
                     smtp_server.live.table.aliases and "postmaster" in
                     smtp_server.live.table.aliases else None)
    assert table.aliases["dmarc@sante.test"] == [admin_box.address]
    [record] = [v for n, t, v in services.dns_records(w.registry_sante.domain)
                if n.startswith("_dmarc.")]
    assert "rua=mailto:dmarc@sante.test" in record and "p=reject" in record
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        client.ehlo("mx.example.org")
        client.mail("reporter@example.org")
        for rcpt in ("<postmaster>", "postmaster@sante.test", "abuse@sante.test",
                     "dmarc@sante.test"):
            assert client.docmd("RCPT TO:", rcpt if rcpt.startswith("<") else f"<{rcpt}>")[0] \
                == 250, rcpt
        assert client.data(letter("reporter@example.org", "postmaster@sante.test",
                                  subject="Rapport DMARC"))[0] == 250
    assert len(stored(admin_box)) == 1  # postmaster@, abuse@ and dmarc@: one copy
    assert len(stored(platform_box)) == 1  # the bare postmaster


def _data_reply_of_mx(smtp_server, sender: str, recipient: str, data: bytes
                      ) -> tuple[int, bytes]:
    """What the MX port answers at the end of DATA, the recipient taken."""
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        client.ehlo(f"mx.{sender.rpartition('@')[2]}")
        client.mail(sender)
        assert client.rcpt(recipient)[0] == 250
        return client.data(data)


def test_a_header_line_readers_see_differently_is_refused(committed_world, smtp_server):
    """The finding: ``From : Le Ministre <…@finances.test>`` (a space before the colon)
    is no header for Python's parser, which checked the sender, so the message passed as
    one from evil.org; Dovecot read it as a From header and IMAP clients showed the
    minister as the sender. Lines that are neither a field nor a continuation, and bare
    CRs, are now refused at DATA on both ports."""
    w = committed_world
    minister, bob = w.alice_box.address, w.bob_box.address
    tricks = [
        f"From : Le Ministre <{minister}>\r\nFrom: x@evil.org\r\n",
        f"From: x@evil.org\r\nFrom <{minister}>\r\n",
        f"From: x@evil.org\r\nX-Note: a\rFrom: <{minister}>\r\n",
        f"From: x@evil.org\r\nLe Ministre <{minister}>\r\n",
    ]
    for trick in tricks:
        data = (f"{trick}To: {bob}\r\nSubject: ordre\r\nMessage-ID: <1@evil.org>\r\n\r\n"
                f"Payez.\r\n").encode()
        code, reply = _data_reply_of_mx(smtp_server, "x@evil.org", bob, data)
        assert (code, reply[:5]) == (554, b"5.6.0"), (trick, code, reply)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(smtp_server, bob, w.passwords[bob], bob, [minister],
               f"From : <{minister}>\r\nFrom: {bob}\r\nSubject: x\r\n\r\nx\r\n".encode())
    assert refused.value.smtp_code == 554
    assert stored(w.bob_box) == [] and stored(w.alice_box) == []
    # ordinary mail, folded headers included, still passes
    data = (f"From: x@evil.org\r\nTo: {bob}\r\nSubject: a long\r\n\tsubject\r\n\r\n"
            f"ok\r\n").encode()
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        assert client.sendmail("x@evil.org", [bob], data) == {}
    assert len(stored(w.bob_box)) == 1


def test_a_from_without_a_real_address_is_refused_at_the_mx(committed_world, smtp_server):
    """The finding: ``From: =?utf-8?q?Minist=C3=A8re_des_Finances_dg=40finances=2Etest?=``
    (an encoded word, no address) names no domain, so none was checked, and the reader
    showed "Ministère des Finances dg@finances.test" as the sender. The MX refuses a From
    that gives no local-part@domain; an ordinary one still passes."""
    w = committed_world
    bob = w.bob_box.address
    for claimed in ("=?utf-8?q?Minist=C3=A8re_des_Finances_dg=40finances=2Etest?=",
                    "Ministere des Finances <postmaster>", "undisclosed"):
        data = (f"From: {claimed}\r\nTo: {bob}\r\nSubject: ordre\r\n"
                f"Message-ID: <2@evil.org>\r\n\r\nPayez.\r\n").encode()
        code, reply = _data_reply_of_mx(smtp_server, "x@evil.org", bob, data)
        assert (code, reply[:5]) == (550, b"5.7.1"), (claimed, code, reply)
    assert stored(w.bob_box) == []
    data = (f"From: =?utf-8?q?Soci=C3=A9t=C3=A9?= <x@evil.org>\r\nTo: {bob}\r\n"
            f"Subject: ok\r\n\r\nok\r\n").encode()
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        assert client.sendmail("x@evil.org", [bob], data) == {}
    assert len(stored(w.bob_box)) == 1


def test_a_looping_message_is_refused_at_the_hop_limit(committed_world, smtp_server):
    """The finding: the MX counted no hops, so a Sieve redirect to an outside address that
    forwards back went round for ever. At 50 Received: fields (Postfix's limit) the
    message is refused as looping; below it, it is delivered."""
    w = committed_world
    bob = w.bob_box.address
    hops = "".join(f"Received: from relay{i}.example.org by relay{i + 1}.example.org; "
                   f"Sun, 6 Dec 2026 09:00:00 +0000\r\n" for i in range(delivery.MAX_HOPS))
    data = (f"{hops}From: x@example.org\r\nTo: {bob}\r\nSubject: boucle\r\n"
            f"Message-ID: <loop@example.org>\r\n\r\nencore\r\n").encode()
    code, reply = _data_reply_of_mx(smtp_server, "x@example.org", bob, data)
    assert (code, reply[:5]) == (554, b"5.4.6"), reply
    assert stored(w.bob_box) == []
    one_less = data.split(b"\r\n", 1)[1]
    with smtplib.SMTP(smtp_server.host, smtp_server.smtp_port, timeout=10) as client:
        assert client.sendmail("x@example.org", [bob], one_less) == {}
    assert len(stored(w.bob_box)) == 1


def test_a_signed_message_replayed_with_a_subject_of_ones_own_is_refused(committed_world,
                                                                          smtp_server):
    """The finding: anybody holding one genuine message of a ministry put a ``Subject:``
    of their own above it and sent it to the MX: the DKIM signature (over the bottom-most
    Subject) held, the webmail showed the new subject as from a *verified sender*. A
    second instance of a single field is refused at DATA, and the signature covers each
    such field once more than it appears, so an added one breaks it."""
    w = committed_world
    alice, bob = w.alice_box.address, w.bob_box.address
    submit(smtp_server, alice, w.passwords[alice], alice, [bob],
           letter(alice, bob, subject="Bonjour"))
    [raw] = stored(w.bob_box)
    genuine = raw[raw.index(b"DKIM-Signature"):]  # as it left the platform
    replay = b"Subject: Ordre: virement immediat\r\n" + genuine
    code, reply = _data_reply_of_mx(smtp_server, "x@evil.org", w.registry_sante.address,
                                    replay)
    assert (code, reply[:5]) == (554, b"5.6.0"), reply
    assert stored(w.registry_sante) == []
    assert dkim.verify(genuine, dnsfunc=_records(smtp_server))
    assert not dkim.verify(replay, dnsfunc=_records(smtp_server))


def _records(server):
    def lookup(name, timeout=5):
        return server.live.table.records.get(name.decode().rstrip("."), "").encode()
    return lookup
