"""Mail on a running sahab: an agent reads a message in the webmail, replies with an
attachment, sends a registered letter and sees its proof of delivery; mail clients use
the same mailboxes through SMTP submission and Dovecot's IMAP."""

import email
import email.policy
import imaplib
import smtplib
import ssl
from pathlib import Path

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.slow


def _box(platform, username: str) -> dict:
    return next(m for m in platform["demo"]["mailboxes"] if m["username"] == username)


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def test_read_reply_with_attachment_and_send_a_registered_letter(platform, browser,
                                                                  output_dir, tmp_path):
    page = sign_in(browser, platform, "it.sante")
    page.goto(platform["url"] + "/mail/")
    page.get_by_role("link", name="Migration de la messagerie").click()
    page.get_by_text("La bascule des boîtes du ministère").wait_for()
    page.screenshot(path=str(output_dir / "message.png"), full_page=True)

    page.get_by_role("link", name="Répondre", exact=True).click()
    assert page.input_value("#id_subject") == "Re: Migration de la messagerie"
    attachment = tmp_path / "planning.csv"
    attachment.write_text("jour;creneau\nlundi;8h-10h\n")
    page.fill("#id_body", "Créneau confirmé, planning joint.")
    page.set_input_files("#id_attachments", str(attachment))
    page.get_by_role("button", name="Envoyer").click()
    page.get_by_text("Message envoyé.").wait_for()

    # it.finances reads the reply (and its attachment) with a mail client over IMAP
    walid = _box(platform, "it.finances")
    imap = imaplib.IMAP4("127.0.0.1", int(platform["env"]["SAHAB_IMAP_PORT"]))
    imap.starttls(ssl_context=_tls())
    imap.login(walid["address"], walid["password"])
    imap.select("INBOX")
    _, found = imap.search(None, "SUBJECT", '"Re: Migration"')
    [number] = found[0].split()
    _, data = imap.fetch(number, "(RFC822)")
    reply = email.message_from_bytes(data[0][1], policy=email.policy.default)
    [part] = list(reply.iter_attachments())
    assert part.get_filename() == "planning.csv"
    assert "dkim=pass" in reply["Authentication-Results"]
    imap.logout()

    page.goto(platform["url"] + "/mail/letters/")
    page.select_option("#id_to", label="Ministère des Finances")
    page.fill("#id_reference", "MS/DSI/2026/0101")
    page.select_option("#id_classification", "it")
    page.fill("#id_subject", "Hébergement du dossier patient")
    page.fill("#id_body", "Monsieur le Directeur, …")
    page.get_by_role("button", name="Envoyer le courrier").click()
    page.wait_for_url("**/mail/letters/*/")
    assert page.locator("#letter-state").inner_text() == "Remis"
    assert page.locator("li.receipt-acceptance").count() == 1
    assert page.locator("li.receipt-delivery").count() == 1
    page.screenshot(path=str(output_dir / "letter.png"), full_page=True)
    receipt = page.locator("li.receipt-delivery").get_by_role("link", name="accusé signé")
    with page.expect_download() as download:
        receipt.click()
    document = Path(download.value.path()).read_text()
    assert "kind delivery" in document and "MS/DSI/2026/0101" in document
    page.context.close()


def test_mail_clients_submit_and_fetch(platform):
    sonia, hichem = _box(platform, "achats.finances"), _box(platform, "achats.sante")
    port = int(platform["env"]["SAHAB_SUBMISSION_PORT"])
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.starttls(context=_tls())
        client.login(sonia["address"], sonia["password"])
        client.sendmail(sonia["address"], [hichem["address"]],
                        f"From: {sonia['address']}\r\nTo: {hichem['address']}\r\n"
                        "Subject: Modele de note\r\n\r\nCi-joint le modele.\r\n".encode())
    imap = imaplib.IMAP4("127.0.0.1", int(platform["env"]["SAHAB_IMAP_PORT"]))
    imap.starttls(ssl_context=_tls())
    imap.login(hichem["address"], hichem["password"])
    imap.select("INBOX")
    _, found = imap.search(None, "SUBJECT", '"Modele de note"')
    assert len(found[0].split()) == 1
    imap.logout()
