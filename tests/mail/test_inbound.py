"""An outside sender on the MX port: spoofed, unaligned and aligned mail for hosted and
foreign domains, with SPF, DKIM and DMARC answered by a real DNS server — each verdict,
each Authentication-Results header and each webmail mark checked."""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib
from email.message import EmailMessage

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from sahab.mail import dkim, maildir, routing, webmail

pytestmark = pytest.mark.django_db(transaction=True)
OUTSIDE = "127.0.0.1"  # example.org's SPF names this address …
ELSEWHERE = "127.0.0.9"  # … and not this one


def message(sender: str, to: str, subject: str, extra: bytes = b"") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = f"<{subject.replace(' ', '-')}@outside>"
    m.set_content("Bonjour,\n\nVoici le texte.\n")
    return extra + m.as_bytes(policy=email.policy.SMTP)


def send_mx(server, mail_from: str, to: str, data: bytes, source: str = OUTSIDE):
    """What another mail server does: plain SMTP to our MX port; (code, reply) of DATA."""
    with smtplib.SMTP(server.host, server.smtp_port, timeout=30,
                      source_address=(source, 0)) as client:
        client.ehlo("mx.example.org")
        assert client.mail(mail_from)[0] == 250
        assert client.rcpt(to)[0] == 250
        return client.data(data)


def stored(mailbox, subject: str, folder: str = "INBOX"):
    for found in maildir.messages(mailbox.maildir, folder):
        parsed = email.message_from_bytes(found.path.read_bytes(), policy=email.policy.default)
        if parsed["Subject"] == subject:
            return parsed
    raise AssertionError(f"no message {subject!r} in {folder}")


def our_results(parsed) -> str:
    """This server's Authentication-Results (the first, ours, on top)."""
    values = [" ".join(str(v).split()) for v in parsed.get_all("Authentication-Results")]
    ours = [v for v in values if v.startswith("mail.gov.tn;")]
    assert len(ours) == 1, values
    return ours[0]


@pytest.fixture
def outside(dns_zone):
    """example.org signs its mail and publishes SPF and p=reject; quarantine.example asks
    for quarantine; lax.example for nothing; nodmarc.example publishes no policy."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    dns_zone.add_txt("s1._domainkey.example.org",
                     dkim.rsa_record(base64.b64encode(public).decode()))
    dns_zone.add_txt("example.org", f"v=spf1 ip4:{OUTSIDE} -all")
    dns_zone.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; adkim=s; aspf=s")
    dns_zone.add_txt("quarantine.example", "v=spf1 -all")
    dns_zone.add_txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine")
    dns_zone.add_txt("_dmarc.lax.example", "v=DMARC1; p=none")

    def sign(data: bytes) -> bytes:
        return dkimpy.sign(data, b"s1", b"example.org", pem,
                           include_headers=[b"from", b"to", b"subject", b"message-id"]) + data

    return sign


def test_outside_senders_get_the_verdict_they_earned(committed_world, smtp_server, outside):
    w = committed_world
    bob = w.bob_box

    # 1. The finding: a forged minister of a hosted domain, with a forged dkim=pass.
    forged = b"Authentication-Results: mail.gov.tn; dkim=pass header.d=finances.test\r\n"
    code, reply = send_mx(smtp_server, "ministre@finances.test", bob.address,
                          message("ministre@finances.test", bob.address, "Instruction urgente",
                                  forged))
    assert code == 550 and b"5.7.1" in reply and b"finances.test" in reply
    # … and with a genuine outside envelope but the minister in From:
    code, _ = send_mx(smtp_server, "someone@example.org", bob.address,
                      message("ministre@finances.test", bob.address, "Instruction 2"))
    assert code == 550
    assert maildir.messages(bob.maildir, "INBOX") == []

    # 2. Genuine mail of a hosted domain that came back through the MX (signed by sahab
    #    with finances.test's keys): accepted, aligned.
    keys = routing.domain_keys(w.alice_box.domain)
    genuine = message(w.alice_box.address, bob.address, "Note signee")
    code, _ = send_mx(smtp_server, w.alice_box.address, bob.address,
                      dkim.sign(genuine, keys) + genuine)
    assert code == 250
    results = our_results(stored(bob, "Note signee"))
    assert "dkim=pass header.d=finances.test" in results and "dmarc=pass" in results

    # 3. A spoof of example.org, which publishes p=reject: refused.
    code, reply = send_mx(smtp_server, "president@example.org", bob.address,
                          message("president@example.org", bob.address, "Faux"),
                          source=ELSEWHERE)
    assert code == 550 and b"DMARC" in reply

    # 4. quarantine.example, signed by another domain (not aligned), SPF failing: Junk.
    unaligned = outside(message("info@quarantine.example", bob.address, "Offre"))
    code, _ = send_mx(smtp_server, "info@quarantine.example", bob.address, unaligned)
    assert code == 250
    junk = stored(bob, "Offre", "Junk")
    results = our_results(junk)
    assert "dmarc=fail (p=quarantine) header.from=quarantine.example" in results
    assert "spf=fail" in results and "dkim=pass header.d=example.org" in results

    # 5. example.org, signed and from its own address: the inbox, every check passing; a
    #    forged result in our name is removed, another server's result is kept.
    extra = (b"Authentication-Results: mail.gov.tn; dmarc=pass header.from=finances.test\r\n"
             b"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.org\r\n")
    aligned = outside(message("partner@example.org", bob.address, "Convention", extra))
    code, _ = send_mx(smtp_server, "partner@example.org", bob.address, aligned)
    assert code == 250
    inbox = stored(bob, "Convention")
    results = our_results(inbox)  # exactly one of ours: the forged one is gone
    assert "spf=pass smtp.mailfrom=example.org" in results
    assert "dkim=pass header.d=example.org" in results
    assert "dmarc=pass (p=reject) header.from=example.org" in results
    assert any(str(v).startswith("mx.example.org")
               for v in inbox.get_all("Authentication-Results"))

    # 6. No DMARC policy, no signature: delivered, unverified. p=none failing: failed.
    send_mx(smtp_server, "someone@nodmarc.example", bob.address,
            message("someone@nodmarc.example", bob.address, "Sans politique"))
    assert "dmarc=none" in our_results(stored(bob, "Sans politique"))
    send_mx(smtp_server, "someone@lax.example", bob.address,
            message("someone@lax.example", bob.address, "Politique souple"))
    assert "dmarc=fail (p=none)" in our_results(stored(bob, "Politique souple"))

    # The webmail shows each verdict.
    marks = {}
    for folder in ("INBOX", "Junk"):
        for found in maildir.messages(bob.maildir, folder):
            reading = webmail.read(found.path.read_bytes())
            marks[reading.subject] = reading.auth
    assert marks == {"Note signee": "verified", "Convention": "verified", "Offre": "failed",
                     "Sans politique": "unverified", "Politique souple": "failed"}
    client = Client()
    client.force_login(w.bob.user)
    [offer] = maildir.messages(bob.maildir, "Junk")
    page = client.get(f"/mail/box/{bob.pk}/Junk/{offer.key}/").content.decode()
    assert "auth-failed" in page and "may be forged" in page
    folders = client.get(f"/mail/box/{bob.pk}/INBOX/").content.decode()
    assert f"/mail/box/{bob.pk}/Junk/" in folders
