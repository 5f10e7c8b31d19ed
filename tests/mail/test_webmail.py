"""The webmail and the mail pages through Django's test client: reading (sanitised),
attachments, compose/reply/forward, search, letters, the address book, settings and
administration — and hostile input that must neither crash a page nor write a file."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sahab.mail import letters, maildir, webmail
from sahab.mail.models import Alias, Mailbox


def client_for(agent) -> Client:
    client = Client()
    client.force_login(agent.user)
    return client


def send_web(world, subject="Bonjour", body="Texte", attachments=()):
    message, recipients = webmail.compose(
        mailbox=world.alice_box, to=world.bob_box.address, cc="", subject=subject, body=body,
        attachments=list(attachments))
    return webmail.send(actor=world.alice.user, mailbox=world.alice_box, message=message,
                        recipients=recipients)


def test_read_a_message_with_its_attachment(world):
    send_web(world, subject="Rapport annuel", attachments=[("rapport.pdf", "application/pdf",
                                                            b"%PDF-1.4 rapport")])
    bob = client_for(world.bob)
    page = bob.get("/mail/", follow=True)
    assert page.status_code == 200 and "Rapport annuel" in page.content.decode()
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    assert not stored.seen
    page = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/")
    assert page.status_code == 200 and "rapport.pdf" in page.content.decode()
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    assert stored.seen  # read in the webmail, seen over IMAP too
    reading = webmail.read(stored.path.read_bytes())
    part = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/part/"
                   f"{reading.attachments[0].index}")
    assert part.status_code == 200 and part.content == b"%PDF-1.4 rapport"
    assert part["Content-Disposition"].startswith("attachment")
    # alice has her copy in Sent
    assert len(maildir.messages(world.alice_box.maildir, maildir.SENT)) == 1


def test_nobody_reads_another_agents_mailbox(world):
    send_web(world)
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    alice = client_for(world.alice)
    assert alice.get(f"/mail/box/{world.bob_box.pk}/INBOX/").status_code == 404
    assert alice.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/").status_code == 404
    assert alice.get(f"/mail/box/{world.bob_box.pk}/compose/").status_code == 404


def test_compose_reply_and_forward_with_attachments(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    send_web(world, subject="Question", body="Une question ?")
    bob = client_for(world.bob)
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    form = bob.get(f"/mail/box/{world.bob_box.pk}/compose/?reply=INBOX/{stored.key}")
    assert "Re: Question" in form.content.decode()
    reply = bob.post(f"/mail/box/{world.bob_box.pk}/compose/", {
        "to": world.alice_box.address, "subject": "Re: Question", "body": "Voici.",
        "in_reply_to": "<q@finances.test>",
        "attachments": [SimpleUploadedFile("reponse.txt", b"la reponse", "text/plain")]})
    assert reply.status_code == 302
    [answer] = maildir.messages(world.alice_box.maildir, "INBOX")
    reading = webmail.read(answer.path.read_bytes())
    assert reading.subject == "Re: Question" and reading.attachments[0].filename == "reponse.txt"
    forward = bob.post(f"/mail/box/{world.bob_box.pk}/compose/", {
        "to": world.registry_sante.address, "subject": "Fwd: Question", "body": "Pour suite",
        "forward": f"INBOX/{stored.key}"})
    assert forward.status_code == 302
    assert len(maildir.messages(world.registry_sante.maildir, "INBOX")) == 1


def test_header_injection_and_bad_addresses_are_form_errors(world):
    alice = client_for(world.alice)
    url = f"/mail/box/{world.alice_box.pk}/compose/"
    for fields in ({"to": world.bob_box.address, "subject": "Hi\r\nBcc: evil@example.org"},
                   {"to": f"{world.bob_box.address}\r\nBcc: evil@example.org", "subject": "x"},
                   {"to": "not an address", "subject": "x"},
                   {"to": "nobody@sante.test", "subject": "x"}):
        page = alice.post(url, {**fields, "body": "x"})
        assert page.status_code == 200, fields
        assert "error" in page.content.decode()
    assert maildir.messages(world.bob_box.maildir, "INBOX") == []
    assert not (world.bob_box.maildir / "tmp").exists() or \
        list((world.bob_box.maildir / "tmp").iterdir()) == []


HOSTILE = [
    # malformed MIME: a multipart without its boundary, a part with a broken encoding
    b"From: x@example.org\r\nSubject: broken\r\nContent-Type: multipart/mixed\r\n\r\n"
    b"--nope\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
    # invalid UTF-8 in headers and body, unknown charset
    b"From: \xff\xfe <x@example.org>\r\nSubject: caf\xe9 \xc3\x28\r\n"
    b"Content-Type: text/plain; charset=x-unknown\r\n\r\nbody \xff\xfe\r\n",
    # an encoded word that decodes to nonsense, a header without a colon
    b"Subject: =?utf-8?b?////?=\r\nNot a header line\r\n\r\nbody\r\n",
    # hostile HTML
    b"From: x@example.org\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n"
    b"<p onclick=\"steal()\">Hi</p><script>alert(1)</script><img src=\"http://tracker/x.gif\">"
    b"<a href=\"javascript:alert(1)\">link</a>\r\n",
    # no header/body separator at all
    b"Subject: only headers",
    # a huge header section (200 KB of folded lines) before a tiny body
    b"Subject: huge\r\nX-Filler: " + b"a" * 70 + b"".join(b"\r\n " + b"b" * 70
                                                        for _ in range(3000)) + b"\r\n\r\nok\r\n",
]


def test_hostile_messages_are_shown_without_crashing(world):
    for raw in HOSTILE:
        maildir.deliver(world.bob_box.home, raw)
    bob = client_for(world.bob)
    listing = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/")
    assert listing.status_code == 200
    stored_messages = maildir.messages(world.bob_box.maildir, "INBOX")
    assert len(stored_messages) == len(HOSTILE)
    for stored in stored_messages:
        page = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/")
        assert page.status_code == 200
        body = page.content.decode()
        assert "<script>alert" not in body and "steal()" not in body
        assert "http://tracker" not in body and "javascript:alert" not in body
    assert bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/?q=caf").status_code == 200


def test_html_is_sanitised():
    clean = webmail.sanitise_html('<p style="x" onclick="a()">ok</p><script>x</script>'
                                  '<img src="https://t/x.gif"><img src="cid:logo">'
                                  '<a href="javascript:x()">l</a><a href="https://gov.tn">g</a>')
    assert "script" not in clean and "onclick" not in clean and "https://t/x.gif" not in clean
    assert 'src="cid:logo"' in clean and "javascript" not in clean
    assert 'href="https://gov.tn"' in clean and "noopener" in clean


def test_search_paging_and_bin(world):
    for n in range(30):
        send_web(world, subject=f"Note {n}", body="budget" if n % 10 == 0 else "divers")
    bob = client_for(world.bob)
    url = f"/mail/box/{world.bob_box.pk}/INBOX/"
    assert "Page 1 of 2" in bob.get(url).content.decode()
    found = bob.get(url + "?q=budget").content.decode()
    assert "(3 messages)" in found
    stored = maildir.messages(world.bob_box.maildir, "INBOX")[0]
    assert bob.post(f"{url}{stored.key}/delete").status_code == 302
    assert len(maildir.messages(world.bob_box.maildir, maildir.TRASH)) == 1
    assert bob.get(f"/mail/box/{world.bob_box.pk}/..%2F/").status_code == 404


def test_letters_page_sends_and_tracks(world, django_capture_on_commit_callbacks):
    alice = client_for(world.alice)
    page = alice.get("/mail/letters/")
    assert page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        sent = alice.post("/mail/letters/", {
            "sender": world.alice_box.pk, "to": world.sante.pk, "reference": "MF/2026/9",
            "classification": "general", "subject": "Convocation", "body": "Réunion."})
    assert sent.status_code == 302
    tracking = alice.get(sent["Location"]).content.decode()
    assert "Delivered" in tracking and "Acceptance" in tracking
    # the registry's clerk opens it in the webmail: an opening receipt
    clerk = client_for(world.clerk)
    [stored] = maildir.messages(world.registry_sante.maildir, "INBOX")
    with django_capture_on_commit_callbacks(execute=True):
        page = clerk.get(f"/mail/box/{world.registry_sante.pk}/INBOX/{stored.key}/")
    assert "Registered letter MF/2026/9" in page.content.decode()
    assert "Opened" in alice.get(sent["Location"]).content.decode()
    letter = letters.letters_visible_to(world.alice.user).get()
    receipt = alice.get(f"/mail/letters/{letter.pk}/receipt/opening.txt")
    assert receipt.status_code == 200
    check = Client().post("/mail/receipts/verify", {"document": receipt.content.decode()})
    assert "This receipt is genuine" in check.content.decode()
    forged = receipt.content.decode().replace("opening", "delivery")
    assert "does not verify" in Client().post("/mail/receipts/verify",
                                              {"document": forged}).content.decode()
    assert Client().get("/mail/receipts/key").content.decode().startswith("mail.gov.tn")


def test_address_book_search_and_exports(world):
    alice = client_for(world.alice)
    page = alice.get("/mail/address-book/?q=Santé")
    assert world.bob_box.address in page.content.decode()
    assert world.alice_box.address not in page.content.decode()
    vcf = alice.get("/mail/address-book/?format=vcf").content.decode()
    assert vcf.count("BEGIN:VCARD") == Mailbox.objects.filter(active=True).count()
    data = json.loads(alice.get("/mail/address-book/?format=json").content)
    assert {e["address"] for e in data["entries"]} >= {world.bob_box.address}
    assert Client().get("/mail/address-book/").status_code == 302  # agents only


def test_settings_generates_a_mail_password_once(world):
    from sahab.mail import services

    alice = client_for(world.alice)
    page = alice.post("/mail/settings/")
    assert page["Cache-Control"] == "no-store"
    password = page.content.decode().split('id="mail-password" dir="ltr">')[1].split("<")[0]
    world.alice_box.refresh_from_db()
    assert services.check_password(world.alice_box, password)


def test_mail_administration_for_mail_admins_only(world):
    from sahab.directory.models import Agent

    admin = Agent.objects.get(user__username="admin.ms")
    assert "sante.test" in client_for(admin).get("/mail/admin/").content.decode()
    page = client_for(admin).get("/mail/admin/sante.test/")
    assert page.status_code == 200 and "_domainkey.sante.test" in page.content.decode()
    assert "v=DKIM1; k=ed25519" in page.content.decode()
    made = client_for(admin).post("/mail/admin/sante.test/list", {
        "administration": "MS", "local_part": "dsi", "description": "DSI",
        "members": f"{world.bob_box.address}, {world.registry_sante.address}"})
    assert made.status_code == 302 and Alias.objects.filter(address="dsi@sante.test").exists()
    assert client_for(world.bob).get("/mail/admin/").status_code == 404
    assert client_for(world.bob).get("/mail/admin/sante.test/").status_code == 404
    refused = client_for(world.bob).post("/mail/admin/sante.test/disable",
                                         {"mailbox": world.bob_box.pk})
    assert refused.status_code == 302
    world.bob_box.refresh_from_db()
    assert world.bob_box.active


def test_autoconfig_for_mail_clients(world):
    xml = Client().get("/.well-known/autoconfig/mail/config-v1.1.xml",
                       {"emailaddress": world.bob_box.address}).content.decode()
    assert "<domain>sante.test</domain>" in xml and "STARTTLS" in xml


@pytest.mark.parametrize("path", ["/mail/box/999/INBOX/", "/mail/letters/999/",
                                  "/mail/box/999/compose/"])
def test_unknown_objects_are_404(world, path):
    assert client_for(world.alice).get(path).status_code == 404


def test_arabic_and_nested_folders_and_dates_read_well_in_arabic(world):
    """The findings: "أرشيف" showed as &BiMGMQY0BkoGQQ-, "Projets/2026" as "Projets.2026",
    dates were raw RFC 2822 text garbled right to left, bodies had no dir="auto"."""
    from sahab.mail.maildir import ensure_maildir

    for folder in ("&BiMGMQY0BkoGQQ-", "Projets.2026"):  # as Dovecot names them on disk
        ensure_maildir(world.bob_box.home, folder)
    send_web(world, subject="تقرير الميزانية", body="نص الرسالة")
    bob = client_for(world.bob)
    page = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/", HTTP_ACCEPT_LANGUAGE="ar")
    html = page.content.decode()
    assert "أرشيف" in html and "&amp;BiMGMQY0BkoGQQ-<" not in html
    assert "Projets" in html and ">2026<" in html and "Projets.2026<" not in html
    assert 'class="depth-1"' in html  # 2026 under Projets
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    assert '<td dir="auto"><a' in html and "<time datetime=" in html
    assert "+0000" not in html  # not the raw header
    reading = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/").content.decode()
    assert '<h1 dir="auto">تقرير الميزانية</h1>' in reading
    assert '<pre class="mail-text" dir="auto">' in reading
    folder = bob.get(f"/mail/box/{world.bob_box.pk}/&BiMGMQY0BkoGQQ-/").content.decode()
    assert "<bdi>أرشيف</bdi>" in folder


def test_the_webmail_offers_bcc_and_never_shows_it(world):
    alice = client_for(world.alice)
    assert 'name="bcc"' in alice.get(f"/mail/box/{world.alice_box.pk}/compose/").content.decode()
    sent = alice.post(f"/mail/box/{world.alice_box.pk}/compose/", {
        "to": world.bob_box.address, "bcc": world.registry_sante.address,
        "subject": "Copie cachée", "body": "Texte"})
    assert sent.status_code == 302
    [to_bob] = maildir.messages(world.bob_box.maildir, "INBOX")
    [blind] = maildir.messages(world.registry_sante.maildir, "INBOX")
    for stored in (to_bob, blind):
        assert world.registry_sante.address.encode() not in stored.path.read_bytes()
    [copy] = maildir.messages(world.alice_box.maildir, maildir.SENT)
    assert webmail.read(copy.path.read_bytes()).subject == "Copie cachée"


def test_outlook_and_thunderbird_find_the_servers_and_dns_has_mta_sts(world, settings):
    """The findings: no Outlook autodiscover, no implicit-TLS ports, no MTA-STS nor TLS-RPT
    among the proposed DNS records."""
    from sahab.mail import services

    client = Client()
    request = (b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
               b'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
               b"<EMailAddress>" + world.bob_box.address.encode() + b"</EMailAddress>"
               b"<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
               b"outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>")
    answer = client.post("/Autodiscover/Autodiscover.xml", request, content_type="text/xml")
    assert answer.status_code == 200
    xml = answer.content.decode()
    assert f"<Port>{settings.IMAPS_PORT}</Port>" in xml and "<SSL>on</SSL>" in xml
    assert f"<Port>{settings.SMTPS_PORT}</Port>" in xml
    assert f"<LoginName>{world.bob_box.address}</LoginName>" in xml
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert client.post("/autodiscover/autodiscover.xml", bomb,
                       content_type="text/xml").status_code == 400
    assert client.post("/autodiscover/autodiscover.xml", request.replace(
        b"sante.test", b"elsewhere.example"), content_type="text/xml").status_code == 404
    thunderbird = client.get("/.well-known/autoconfig/mail/config-v1.1.xml",
                             {"emailaddress": world.bob_box.address}).content.decode()
    assert "<socketType>SSL</socketType>" in thunderbird
    policy = client.get("/.well-known/mta-sts.txt").content.decode()
    assert "mode: enforce" in policy and f"mx: {settings.MAIL_HOSTNAME}" in policy
    records = {(name, kind): value for name, kind, value in
               services.dns_records(world.bob_box.domain)}
    assert records[("_mta-sts.sante.test", "TXT")].startswith("v=STSv1; id=")
    assert records[("_smtp._tls.sante.test", "TXT")] == \
        "v=TLSRPTv1; rua=mailto:postmaster@sante.test"
    assert ("autodiscover.sante.test", "CNAME") in records
    assert records[("_imaps._tcp.sante.test", "SRV")].startswith(f"0 1 {settings.IMAPS_PORT} ")


def test_messages_of_the_same_second_list_newest_first_whatever_their_digits(tmp_path,
                                                                              monkeypatch):
    """Maildir names carry unpadded microseconds (M99999 is earlier than M123456 of the
    same second, though it sorts after it as text): the folder lists by time, not text."""
    moments = iter([1764000000.099999, 1764000000.123456, 1764000001.5])
    monkeypatch.setattr(maildir.time, "time", lambda: next(moments))
    names = [maildir.deliver(tmp_path, f"Subject: {n}\r\n\r\n.\r\n".encode())
             for n in ("first", "second", "third")]
    assert names[0] > names[1]  # the text order is the wrong one
    listed = maildir.messages(tmp_path / "Maildir", "INBOX")
    assert [m.path.name for m in listed] == names[::-1]
    assert maildir.delivery_time(listed[-1].key) == pytest.approx(1764000000.099999)
    assert maildir.delivery_time("not-a-maildir-name") is None


def test_the_webmail_keeps_the_submission_limits(world, settings):
    """The finding: the submission port allows 100 recipients a message and 120 messages
    a minute, but the compose page had no limit: 50 outside recipients in five posts went
    to the outbound queue with both limits set far lower. Now the same limits hold, as
    form errors."""
    from sahab.mail.models import OutboundMessage

    settings.MAIL_MAX_RECIPIENTS, settings.MAIL_RATE_PER_MINUTE = 3, 2
    alice = client_for(world.alice)
    url = f"/mail/box/{world.alice_box.pk}/compose/"
    page = alice.post(url, {"to": ", ".join(f"x{j}@ext.example.org" for j in range(10)),
                            "subject": "s", "body": "b"})
    assert page.status_code == 200 and "3 recipients at most" in page.content.decode()
    assert OutboundMessage.objects.count() == 0
    answers = [alice.post(url, {"to": f"x{i}@ext.example.org", "subject": "s", "body": "b"})
               for i in range(3)]
    assert [a.status_code for a in answers] == [302, 302, 200]
    assert "try again in a minute" in answers[2].content.decode()
    assert OutboundMessage.objects.count() == 2


def test_unicode_line_breaks_in_headers_are_form_errors_not_crashes(world):
    """The finding: a subject, an address field or a letter's reference holding U+2028
    (or another break ``str.splitlines`` knows) passed the one-line check, then the email
    package raised: 500. They are form errors now — and a receipt could not hold a second
    field that way."""
    alice = client_for(world.alice)
    for breaker in ("\u2028", "\u2029", "\x85", "\x0b", "\x1c"):
        page = alice.post(f"/mail/box/{world.alice_box.pk}/compose/",
                          {"to": world.bob_box.address, "subject": f"a{breaker}Bcc: x",
                           "body": "b"})
        assert page.status_code == 200 and "One line only" in page.content.decode()
        page = alice.post("/mail/letters/", {
            "sender": world.alice_box.pk, "to": world.sante.pk,
            "reference": f"R1{breaker}kind opening", "classification": "budget",
            "subject": "s", "body": "b"})
        assert page.status_code == 200 and "on one line" in page.content.decode()
    answer = alice.post("/api/mail/letters", {
        "sender": world.alice_box.address, "to": "MS", "classification": "budget",
        "reference": "R1\u2028kind opening\u2028opened-by Le Ministre", "subject": "s",
        "body": "b"}, content_type="application/json")
    assert answer.status_code == 422 and answer["Content-Type"] == "application/problem+json"
    assert maildir.messages(world.bob_box.maildir, "INBOX") == []
    assert not letters.letters_visible_to(world.alice.user).exists()


def test_mail_from_outside_the_states_domains_says_so_whatever_its_name(world):
    """The finding: mail from any outside domain could take a ministry's name as its
    display name ("Ministère des Finances <direction@finances-gov.example>"), and its
    own domain's valid signature showed it as a verified sender: the reader saw a
    verified ministry. The reader now marks every message whose address is on no domain
    the platform hosts as coming from outside, whatever the name says; mail between
    administrations carries no such mark."""
    from django.conf import settings

    lookalike = (
        "From: =?utf-8?q?Minist=C3=A8re_des_Finances?= <direction@finances-gov.example>\r\n"
        f"To: {world.bob_box.address}\r\nSubject: Virement urgent\r\n"
        "Message-ID: <l@finances-gov.example>\r\n"
        f"Authentication-Results: {settings.MAIL_HOSTNAME}; dkim=pass "
        "header.d=finances-gov.example; dmarc=pass header.from=finances-gov.example\r\n"
        "\r\nMerci de payer.\r\n").encode()
    maildir.deliver(world.bob_box.home, lookalike)
    send_web(world, subject="Entre ministères")
    bob = client_for(world.bob)
    pages = {}
    for stored in maildir.messages(world.bob_box.maildir, "INBOX"):
        reading = webmail.read(stored.path.read_bytes())
        page = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/",
                       HTTP_ACCEPT_LANGUAGE="en")
        assert page.status_code == 200
        pages[reading.subject] = page.content.decode()
    outside = 'id="outside-mark"'
    assert outside in pages["Virement urgent"] and "verified sender" in pages["Virement urgent"]
    assert outside not in pages["Entre ministères"]
    listing = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/", HTTP_ACCEPT_LANGUAGE="en")
    assert listing.content.decode().count('class="outside-mark"') == 1
    def from_(value: str) -> bool:
        return webmail.from_outside(f"From: {value}\r\nSubject: x\r\n\r\n".encode())

    assert from_("not an address") and from_("") and webmail.from_outside(b"Subject: x\r\n")
    assert not from_(f"Alice <{world.alice_box.address.upper()}>")
    assert not from_(f"=?utf-8?q?Alic=C3=A9?= <{world.alice_box.address}>")
    # a hosted address beside an outside one does not cover it
    assert from_(f"x@finances-gov.example, {world.alice_box.address}")


@pytest.mark.parametrize("claimed", [
    "=?utf-8?q?dg=40finances=2Etest?=",
    "=?utf-8?q?Minist=C3=A8re_des_Finances_dg=40finances=2Etest?=",
    "=?utf-8?q?Minist=C3=A8re_des_Finances?= =?utf-8?q?_dg=40finances=2Etest?=",
    "=?utf-8?q?Minist=C3=A8re_des_Finances?= <postmaster>",
    "Ministere des Finances <POSTMASTER>",
])
def test_an_address_spelt_in_an_encoded_word_is_from_outside(world, claimed):
    """The finding: the mark was decided on the decoded From text, and the MX took a From
    without a real address: one made only of an encoded word that decodes to "Ministère
    des Finances dg@finances.test" (no domain, hence none claimed and no signature asked
    for), or a bare "postmaster", reached the inbox unmarked. The MX now refuses a From
    without local-part@domain, and the reader decides on the raw field as the MX reads
    it, so that such a message already in a box (delivered before) is marked, in the
    folder's list too."""
    from sahab.mail import delivery, inbound

    raw = (f"From: {claimed}\r\nTo: {world.bob_box.address}\r\nSubject: Virement urgent\r\n"
           "Message-ID: <x@evil.example>\r\n\r\nMerci de payer.\r\n").encode()
    delivery.check_headers(raw)
    with pytest.raises(delivery.Refused, match=r"550 5\.7\.1 The From: header must give"):
        inbound.authenticate(raw, peer="192.0.2.1", helo="mx.evil.example",
                             mail_from="bounce@evil.example",
                             routing=webmail.current_routing())
    maildir.deliver(world.bob_box.home, raw)
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    bob = client_for(world.bob)
    page = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/{stored.key}/",
                   HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and 'id="outside-mark"' in page.content.decode()
    listing = bob.get(f"/mail/box/{world.bob_box.pk}/INBOX/", HTTP_ACCEPT_LANGUAGE="en")
    assert 'class="outside-mark"' in listing.content.decode()
