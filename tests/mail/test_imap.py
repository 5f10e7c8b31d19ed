"""Mail clients against the real Dovecot that sahab configures: a delegated agent finds
the shared and registry mailboxes, reads its quota, files mail with Sieve and answers
with a vacation reply; guessed IMAP passwords lock out; and a registered letter is opened
only by somebody fetching its body, who is named in the receipt."""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import smtplib
from email.message import EmailMessage

import pytest
from django.test import Client

from sahab.core import keys
from sahab.directory.selectors import SYSTEM
from sahab.mail import letters, maildir, outbound, services, webmail
from sahab.mail.models import Letter, Receipt
from sahab.mail.receipts import verify_receipt
from tests.mail.conftest import client_tls, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class FromAddress(imaplib.IMAP4_SSL):
    """An IMAP client connecting from a given loopback address (a different machine, as
    far as the server can tell)."""

    def __init__(self, port: int, source: str):
        self.source = source
        super().__init__("127.0.0.1", port, ssl_context=client_tls())

    def _create_socket(self, timeout):
        import socket

        sock = socket.create_connection((self.host, self.port), timeout or 30,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def imaps(dovecot, login: str, password: str, source: str = "127.0.0.1") -> imaplib.IMAP4:
    """Implicit TLS (RFC 8314), as Thunderbird and Outlook connect by default."""
    client = FromAddress(dovecot.imaps_port, source)
    client.login(login, password)
    return client


def note(sender: str, to: str, subject: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content(f"{subject}\n")
    return m.as_bytes(policy=email.policy.SMTP)


def submit(server, login: str, password: str, to: str, subject: str) -> None:
    with smtplib.SMTP(server.host, server.submission_port, timeout=30) as client:
        client.starttls(context=client_tls())
        client.login(login, password)
        client.sendmail(login, [to], note(login, to, subject))


@pytest.fixture
def clerk(committed_world):
    """The clerk of the health ministry: reads its registry office (delegated read) and
    runs its procurement service's shared mailbox (read and send)."""
    w = committed_world
    box = w.clerk.mailbox
    password = services.set_password(actor=SYSTEM, mailbox=box)
    shared = services.create_shared_mailbox(actor=SYSTEM, administration=w.sante,
                                            local_part="achats", display_name="Achats")
    services.delegate(actor=SYSTEM, mailbox=shared, agent=w.clerk, can_send=True)
    return box, password, shared


def test_a_delegated_agent_opens_shared_and_registry_mailboxes_and_reads_its_quota(
        committed_world, clerk, smtp_server, dovecot):
    w = committed_world
    box, password, shared = clerk
    alice, alice_password = w.alice_box.address, w.passwords[w.alice_box.address]
    submit(smtp_server, alice, alice_password, w.registry_sante.address, "Au bureau d'ordre")
    submit(smtp_server, alice, alice_password, shared.address, "Aux achats")

    client = imaps(dovecot, box.address, password)
    status, listed = client.list()
    names = b"\n".join(listed).decode()
    assert f"shared/{w.registry_sante.address}" in names and f"shared/{shared.address}" in names
    # (Dovecot adds "d", RFC 2086's name for the deletion rights t and e)
    for mailbox, subject, rights in ((w.registry_sante, "Au bureau d'ordre", "lrs"),
                                     (shared, "Aux achats", "lrwstiped")):
        name = f'"shared/{mailbox.address}/INBOX"'
        status, count = client.select(name)
        assert status == "OK" and count == [b"1"]
        _, data = client.fetch("1", "(BODY[])")
        assert email.message_from_bytes(data[0][1])["Subject"] == subject
        _, granted = client.myrights(name)
        assert granted[0].decode().endswith(f" {rights}")
    # the finding: GETQUOTAROOT answered BAD; now Dovecot reports sahab's own quota
    status, (_roots, quota) = client.getquotaroot("INBOX")
    assert status == "OK" and b"STORAGE" in quota[0]
    assert quota[0].decode().rstrip(")").endswith(f" {box.quota_bytes // 1024}")
    client.logout()

    # bob of the same ministry was given nothing: he sees none of them
    bob = imaps(dovecot, w.bob_box.address, w.passwords[w.bob_box.address])
    assert b"shared" not in b"\n".join(bob.list()[1])
    status, _ = bob.select(f'"shared/{w.registry_sante.address}/INBOX"')
    assert status == "NO"
    bob.logout()


def test_sieve_files_mail_by_a_rule_and_answers_with_a_vacation_reply(
        committed_world, clerk, smtp_server, dovecot, monkeypatch):
    from sievelib.managesieve import Client as ManageSieve

    w = committed_world
    box, password, _shared = clerk
    alice, alice_password = w.alice_box.address, w.passwords[w.alice_box.address]
    monkeypatch.setenv("SSL_CERT_FILE", str(keys.tls_cert_path()))  # trust the platform's
    sieve = ManageSieve("127.0.0.1", dovecot.managesieve_port)
    assert sieve.connect(box.address, password, starttls=True, authmech="PLAIN")
    script = ('require ["fileinto", "mailbox"];\n'
              'if header :contains "subject" "projet" { fileinto :create "Projets/2026"; }\n')
    assert sieve.putscript("filtres", script) and sieve.setactive("filtres")
    sieve.logout()
    submit(smtp_server, alice, alice_password, box.address, "Le projet de loi de finances")
    submit(smtp_server, alice, alice_password, box.address, "Autre chose")
    filed = maildir.messages(box.maildir, "Projets.2026")
    assert [webmail.read(m.path.read_bytes()).subject for m in filed] == \
        ["Le projet de loi de finances"]
    assert [webmail.read(m.path.read_bytes()).subject
            for m in maildir.messages(box.maildir, "INBOX")] == ["Autre chose"]

    # bob turns his vacation reply on in the webmail; alice writes to him
    web = Client()
    web.force_login(w.bob.user)
    page = web.post("/mail/settings/vacation", {"enabled": "on", "subject": "Absent jusqu'au 5",
                                                "text": "En congé."})
    assert page.status_code == 302
    submit(smtp_server, alice, alice_password, w.bob_box.address, "Réunion lundi")
    assert len(maildir.messages(w.bob_box.maildir, "INBOX")) == 1
    assert outbound.send_sieve_outbox() == 1
    [reply] = [webmail.read(m.path.read_bytes())
               for m in maildir.messages(w.alice_box.maildir, "INBOX")]
    assert reply.subject == "Absent jusqu'au 5" and "En congé." in reply.text
    assert reply.auth == "verified"  # signed for sante.test, as any mail of bob's
    # once a day per sender: a second message gets no second reply
    submit(smtp_server, alice, alice_password, w.bob_box.address, "Réunion mardi")
    assert outbound.send_sieve_outbox() == 0


def test_guessed_imap_passwords_lock_the_login_out_as_smtp_ones_do(
        committed_world, dovecot, settings):
    from sahab.mail.models import AuthFailure

    w = committed_world
    login = w.bob_box.address
    failures = 0
    while failures < settings.MAIL_AUTH_FAILURES_PER_LOGIN:
        # from ever new addresses: Dovecot's own penalty is per address, sahab's per login
        client = FromAddress(dovecot.imaps_port, f"127.0.3.{failures + 1}")
        with pytest.raises(imaplib.IMAP4.error):
            client.login(login, f"guess-{failures}")
        failures += 1
        client.shutdown()
    wait_for(lambda: AuthFailure.objects.filter(
        key=f"login:{login}", count__gte=settings.MAIL_AUTH_FAILURES_PER_LOGIN).exists())
    # the right password no longer opens the mailbox, from anywhere
    with pytest.raises(imaplib.IMAP4.error):
        imaps(dovecot, login, w.passwords[login], source="127.0.4.1")


def test_a_letter_is_opened_only_by_a_named_person_fetching_its_body(
        committed_world, clerk, smtp_server, dovecot):
    w = committed_world
    box, password, _shared = clerk
    letter = letters.send_letter(
        actor=w.alice.user, sender=w.alice_box, to=w.sante, reference="MF/2026/77",
        classification="budget", subject="Crédits 2027", body="Texte de la lettre")
    assert letter.state == Letter.State.DELIVERED

    # The finding: the sender forges the "opened" receipt with an ordinary mail carrying
    # the letter's Message-ID and an X-Sahab-Letter header.
    forged = (f"Message-ID: {letter.message_id}\r\nX-Sahab-Letter: reference=MF/2026/77; "
              f"classification=budget\r\n").encode() + \
        note(w.alice_box.address, w.registry_sante.address, "[MF/2026/77] Crédits 2027")
    with smtplib.SMTP(smtp_server.host, smtp_server.submission_port, timeout=30) as smtp:
        smtp.starttls(context=client_tls())
        smtp.login(w.alice_box.address, w.passwords[w.alice_box.address])
        smtp.sendmail(w.alice_box.address, [w.registry_sante.address], forged)
    web = Client()
    web.force_login(w.clerk.user)
    forged_copy = [m for m in maildir.messages(w.registry_sante.maildir, "INBOX")
                   if m.key != letter.delivered_file]
    assert len(forged_copy) == 1
    headers = forged_copy[0].path.read_bytes().split(b"\r\n\r\n")[0]
    assert not re.search(rb"(?im)^x-sahab-", headers)  # the platform's marks are its own
    page = web.get(f"/mail/box/{w.registry_sante.pk}/INBOX/{forged_copy[0].key}/")
    assert page.status_code == 200
    letter.refresh_from_db()
    assert letter.state == Letter.State.DELIVERED and not letter.receipts.filter(
        kind=Receipt.Kind.OPENING).exists()

    # The finding: a header-only FETCH by anyone holding the registry's password.
    registry_password = services.set_password(actor=SYSTEM, mailbox=w.registry_sante)
    client = imaps(dovecot, w.registry_sante.address, registry_password)
    client.select("INBOX")
    client.fetch("1:*", "(BODY.PEEK[HEADER])")
    client.fetch("1:*", "(BODY[])")  # even the body: the registry's password names nobody
    client.logout()
    clerk_client = imaps(dovecot, box.address, password)
    clerk_client.select(f'"shared/{w.registry_sante.address}/INBOX"')
    clerk_client.fetch("1:*", "(BODY[HEADER])")
    letter.refresh_from_db()
    assert letter.state == Letter.State.DELIVERED

    # The clerk opens the letter itself: a receipt that names her, verifiable offline.
    _, found = clerk_client.search(None, f'HEADER Message-ID "{letter.message_id}"')
    for number in found[0].split():
        clerk_client.fetch(number, "(BODY[])")
    clerk_client.logout()
    opening = wait_for(lambda: letter.receipts.filter(kind=Receipt.Kind.OPENING).first())
    fields = verify_receipt(opening.document, letters.verifier_key())
    name = w.clerk.user.get_full_name()
    assert fields["opened-by"] == f"{name} <{box.address}>"
    assert fields["opened-by-administration"] == "MS Ministère de la Santé"
    assert fields["message-sha256"] == letter.message_sha256


def test_a_sieve_script_cannot_send_as_another_mailbox(
        committed_world, clerk, smtp_server, dovecot, monkeypatch):
    """The finding: a script uploaded over ManageSieve wrote ``vacation :from`` and
    ``notify :from`` naming an agent of another ministry, and the worker signed both for
    that ministry's domain: bob saw a *verified* order from alice. Now what a mailbox's
    filters send goes out as that mailbox only; a redirect keeps its genuine author."""
    from sievelib.managesieve import Client as ManageSieve

    w = committed_world
    box, password, _shared = clerk
    alice, bob = w.alice_box.address, w.bob_box.address
    monkeypatch.setenv("SSL_CERT_FILE", str(keys.tls_cert_path()))
    sieve = ManageSieve("127.0.0.1", dovecot.managesieve_port)
    assert sieve.connect(box.address, password, starttls=True, authmech="PLAIN")
    script = ('require ["vacation", "enotify", "copy"];\n'
              f'notify :from "{alice}" :message "Virement urgent" '
              f'"mailto:{bob}?body=Faites%20le%20virement";\n'
              f'vacation :days 1 :from "{alice}" :subject "Ordre du ministre" "Payez.";\n'
              f'redirect :copy "{bob}";\n')
    assert sieve.putscript("piege", script) and sieve.setactive("piege")
    sieve.logout()
    submit(smtp_server, alice, w.passwords[alice], box.address, "Note de service")
    assert outbound.send_sieve_outbox() == 1  # the redirect alone
    [got] = [webmail.read(m.path.read_bytes())
             for m in maildir.messages(w.bob_box.maildir, "INBOX")]
    assert got.subject == "Note de service" and alice in got.sender
    assert not list(dovecot_outbox())  # the forged ones were dropped, not left waiting
    assert maildir.messages(w.alice_box.maildir, "INBOX") == []  # no vacation as alice


def dovecot_outbox():
    from sahab.mail import dovecot as glue

    return glue.vacation_spool().glob("*")
