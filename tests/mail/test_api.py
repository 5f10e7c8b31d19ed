"""The mail JSON API: address book, DNS records, letters with receipts, receipt checks."""

from __future__ import annotations

import base64

from django.test import Client


def api_client(agent) -> Client:
    client = Client()
    client.force_login(agent.user)
    return client


def test_address_book_and_domains(world):
    client = api_client(world.alice)
    book = client.get("/api/mail/address-book", {"q": "sante"}).json()
    assert world.bob_box.address in {e["address"] for e in book["items"]}
    domains = client.get("/api/mail/domains").json()["items"]
    sante = next(d for d in domains if d["name"] == "sante.test")
    assert {r["type"] for r in sante["records"]} == {"MX", "TXT", "CNAME", "SRV"}
    assert Client().get("/api/mail/address-book").status_code in (401, 403)


def test_send_a_letter_and_read_its_receipts(world):
    client = api_client(world.alice)
    sent = client.post("/api/mail/letters", {
        "sender": world.alice_box.address, "to": "MS", "reference": "MF/API/1",
        "classification": "legal", "subject": "Avis juridique", "body": "Texte",
        "attachments": [{"filename": "avis.pdf", "content_type": "application/pdf",
                         "content_base64": base64.b64encode(b"%PDF").decode()}]},
        content_type="application/json")
    assert sent.status_code == 201, sent.content
    letter = sent.json()
    assert letter["state"] == "delivered"
    assert [r["kind"] for r in letter["receipts"]] == ["acceptance", "delivery"]
    check = Client().post("/api/mail/receipts/verify",
                          {"document": letter["receipts"][1]["document"]},
                          content_type="application/json")
    assert check.status_code == 200 and check.json()["fields"]["kind"] == "delivery"
    forged = letter["receipts"][1]["document"].replace("MF/API/1", "MF/API/2")
    bad = Client().post("/api/mail/receipts/verify", {"document": forged},
                        content_type="application/json")
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"
    assert client.get(f"/api/mail/letters/{letter['id']}").json()["reference"] == "MF/API/1"
    assert api_client(world.bob).get(f"/api/mail/letters/{letter['id']}").status_code == 404


def test_letter_refusals_are_problems(world):
    client = api_client(world.bob)
    cases = [({"sender": world.alice_box.address}, 403),  # not bob's mailbox
             ({"to": "NOPE"}, 404),
             ({"attachments": [{"filename": "a", "content_base64": "***"}]}, 422),
             ({"reference": "A\nB"}, 422)]
    for change, status in cases:
        payload = {"sender": world.bob_box.address, "to": "MF", "reference": "MS/1",
                   "classification": "general", "subject": "s", "body": "b", **change}
        answer = client.post("/api/mail/letters", payload, content_type="application/json")
        assert answer.status_code == status, (change, answer.content)


def test_attachment_names_of_a_letter_are_plain_file_names(world):
    """The finding: an attachment named ``a\\nb.pdf`` made the email package raise (500),
    and ``../../etc/passwd`` went into the registry's mailbox as the evidence's name.
    Both are refused as problems, and nothing is sent."""
    client = api_client(world.alice)
    for n, name in enumerate(["a\nb.pdf", "../../etc/passwd", "a\u2028b.pdf", "..",
                              "dossier\\note.pdf"]):
        answer = client.post("/api/mail/letters", {
            "sender": world.alice_box.address, "to": "MS", "reference": f"MF/PJ/{n}",
            "classification": "legal", "subject": "s", "body": "b",
            "attachments": [{"filename": name,
                             "content_base64": base64.b64encode(b"x").decode()}]},
            content_type="application/json")
        assert answer.status_code == 422, (name, answer.content)
        assert answer["Content-Type"] == "application/problem+json"
    assert client.get("/api/mail/letters").json()["items"] == []
