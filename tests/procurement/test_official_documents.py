"""Signed official documents (docs/procurement.md, "Signed official documents").

The review found no signature on any document: not the opening report, the evaluation
report, the award decision or the contract. A tender walked to its contract now gets
each of them in French and in Arabic, signed (PAdES) by the certificate of the agent who
took the step, with its SHA-256 on the ledger; pyHanko validates them against the demo
CA, a changed byte breaks them, and the Arabic is rendered, shaped and extractable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from pyhanko.pdf_utils.reader import PdfFileReader

from sahab.core import certs, pdfsign
from sahab.ledger import services as ledger
from sahab.procurement import official, services
from sahab.procurement.models import BidLot, Contract, OfficialDocument, Step, Tender
from tests import factories
from tests.conftest import missing
from tests.procurement.bidding import run_timers_at, submit_bid

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-results" / "official-documents"
BIDI_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                    "\u2066\u2067\u2068\u2069"))
TITLES = {("opening_report", "fr"): "Procès-verbal d'ouverture des plis",
          ("opening_report", "ar"): "محضر فتح العروض",
          ("evaluation_report", "fr"): "Rapport d'évaluation des offres",
          ("evaluation_report", "ar"): "تقرير تقييم العروض",
          ("award_decision", "fr"): "Décision d'attribution",
          ("award_decision", "ar"): "قرار إسناد الصفقة",
          ("contract", "fr"): "Marché public",
          ("contract", "ar"): "صفقة عمومية"}


def walk_to_contract(world, tender: Tender):
    """Three companies bid; the bids open at the deadline (the worker); an evaluator finds
    them eligible; the officer completes the evaluation, the committee adopts it, the
    officer awards (Atlas lot 1, Carthage
    lot 2) and, after lot 1's standstill, signs its contract."""
    deadline = tender.submission_deadline
    offers = ({"1": "100000"}, {"1": "105000", "2": "50000"}, {"1": "110000", "2": "52000"})
    for (_company, member), prices in zip(world["companies"], offers, strict=True):
        submit_bid(member.user, tender, prices, now=deadline - DAY)
    run_timers_at(deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation", tender.state
    officer, evaluator = world["officer"].user, world["evaluators"][0].user
    services.declare_conflict_of_interest(actor=evaluator, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=True)
    services.complete_evaluation(actor=officer, tender=tender)
    factories.adopt_evaluation(tender)  # the committee's quorum approves the report
    awards = services.award_tender(actor=officer, tender=tender, now=deadline + DAY)
    lot1 = next(a for a in awards if a.lot.number == 1)
    moment = lot1.standstill_until + SECOND
    with time_machine.travel(moment):
        return services.sign_contract(actor=officer, award=lot1, start_date=dt.date(2027, 1, 1),
                                      end_date=dt.date(2027, 12, 31), now=moment)


@pytest.fixture
def issued(world, published_tender):
    """The tender walked to its contract, then the worker's job run once."""
    walk_to_contract(world, published_tender)
    assert not OfficialDocument.objects.exists()  # the steps themselves render nothing
    started = time.monotonic()
    assert official.issue_due(limit=10) == 4
    seconds = time.monotonic() - started
    print(f"4 steps, 8 signed PDFs issued in {seconds:.2f} s")
    return {d.kind + "/" + d.language: d for d in OfficialDocument.objects.all()}


def pyhanko_status(pdf: bytes, ca_pem: bytes):
    """pyHanko's own validation API, trusting ``ca_pem`` only."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    root = asn1_x509.Certificate.load(pem.unarmor(ca_pem)[2])
    signature, = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(signature, ValidationContext(trust_roots=[root]))


def entry_data(index: int) -> dict:
    return json.loads(bytes(ledger.get_entry(index).body))


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        missing(tool, "poppler-utils")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-enc", "UTF-8", str(path), "-"],
                         capture_output=True, check=True, timeout=60).stdout.decode()
    return " ".join(out.translate(BIDI_MARKS).split())


# --- the documents, their signers and the ledger -----------------------------------------

def test_a_tender_walked_to_its_contract_gets_four_signed_documents_in_two_languages(
        world, published_tender, issued):
    assert sorted(issued) == sorted(f"{k}/{lang}" for k in ("opening_report",
                                                            "evaluation_report",
                                                            "award_decision", "contract")
                                    for lang in ("fr", "ar"))
    ca = pdfsign.trust_roots_pem()
    officer = world["officer"].user
    for key, document in issued.items():
        pdf = bytes(document.content)
        status = pyhanko_status(pdf, ca)
        assert status.intact and status.valid and status.trusted, key
        assert status.bottom_line, key
        # the signer is whoever took the step: the platform for the automatic opening,
        # the procurement officer for the evaluation, the award and the contract
        signer = status.signing_cert.subject.native
        if document.kind == "opening_report":
            assert document.signer is None and signer["common_name"].startswith("sahab")
        else:
            assert document.signer == officer
            assert signer["common_name"] == officer.get_full_name()
            assert signer["organization_name"] == world["mf"].name_fr
        # the ledger holds the file's SHA-256, in the step's tender's log, with the signer
        entry = entry_data(document.ledger_index)
        assert entry["type"] == "procurement.document.signed"
        assert entry["subject"] == f"tender:{published_tender.reference}"
        assert entry["data"]["sha256"] == hashlib.sha256(pdf).hexdigest() == document.sha256
        assert entry["data"]["size"] == len(pdf)
        assert entry["data"]["kind"] == document.kind
        assert entry["data"]["language"] == document.language
        assert entry["data"]["step"] == document.step_index
        assert entry["data"]["certificate_sha256"] == pdfsign.fingerprint(document.certificate)
        assert entry["data"]["signer"] == ("platform" if document.signer is None
                                           else f"user:{officer.pk}")
        # and the step it records is the one the document names
        step = Step.objects.get(ledger_index=document.step_index)
        assert official.KINDS[step.type] == document.kind


def test_the_job_issues_each_step_once(issued):
    assert official.issue_due(limit=10) == 0
    assert OfficialDocument.objects.count() == 8


def test_rendering_and_signing_hold_no_transaction(world, published_tender, monkeypatch):
    """A PDF takes seconds to render and sign: holding a transaction meanwhile would keep
    every other writer waiting (on SQLite, the whole database), as a first run of the
    worker did under load ("database is locked")."""
    from django.db import connection

    walk_to_contract(world, published_tender)
    depth = len(connection.atomic_blocks)  # the test's own transaction
    seen: list[int] = []
    render = official.render
    monkeypatch.setattr(official, "render", lambda *args: seen.append(
        len(connection.atomic_blocks)) or render(*args))
    assert official.issue_due(limit=10) == 4
    assert len(seen) == 8 and set(seen) == {depth}


def test_a_changed_byte_in_the_signed_range_breaks_the_signature(issued):
    ca = pdfsign.trust_roots_pem()
    pdf = bytes(issued["award_decision/fr"].content)
    from pyhanko.pdf_utils.reader import PdfFileReader

    signature, = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    start, length = signature.byte_range[0], signature.byte_range[1]
    # a byte of the header's binary comment: the file still parses, its digest changes
    assert pdf.startswith(b"%PDF-") and start == 0 and length > 20
    changed = bytearray(pdf)
    changed[10] ^= 0x01
    status = pyhanko_status(bytes(changed), ca)
    assert not status.intact and not status.bottom_line
    assert not pdfsign.validate(bytes(changed)).ok
    # and one letter of the signature's own dictionary (its place: Tunis → Tunjs)
    at = pdf.find(b"/Location (Tunis)")
    ranges = [int(n) for n in signature.byte_range]
    assert at > 0 and any(a <= at < a + n for a, n in zip(ranges[::2], ranges[1::2],
                                                           strict=True))
    changed = bytearray(pdf)
    changed[at + len(b"/Location (Tun")] ^= ord("i") ^ ord("j")
    assert not pyhanko_status(bytes(changed), ca).intact
    assert pyhanko_status(pdf, ca).bottom_line  # the original still validates


def test_pyhanko_cli_validates_as_the_verification_page_says(issued, tmp_path):
    cli = Path(sys.executable).with_name("pyhanko")
    if not cli.exists():
        pytest.fail("pyhanko-cli is a development dependency: uv sync --extra dev")
    (tmp_path / "ca.pem").write_bytes(pdfsign.trust_roots_pem())
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    pdf = bytes(issued["contract/ar"].content)
    good.write_bytes(pdf)
    bad.write_bytes(pdf[:10] + bytes([pdf[10] ^ 1]) + pdf[11:])

    def validate(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), "sign", "validate", "--trust-replace", "--trust",
                               str(tmp_path / "ca.pem"), str(path)],
                              capture_output=True, text=True, timeout=120)

    result = validate(good)
    assert result.returncode == 0 and ":INTACT:TRUSTED" in result.stdout, result
    result = validate(bad)
    assert result.returncode != 0 or ":INTACT:TRUSTED" not in result.stdout, result


def test_signing_keys_are_readable_by_the_platform_only(issued, sahab_home):
    for path in [sahab_home / "keys" / pdfsign.CA_FILE,
                 *(sahab_home / "keys" / pdfsign.SIGNERS_DIR).iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert b"PRIVATE KEY" not in pdfsign.trust_roots_pem()


# --- what the documents say, in French and in Arabic ------------------------------------

def test_arabic_and_french_render_with_their_titles_and_the_verification_address(
        world, published_tender, issued, tmp_path, request):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    pdftoppm = poppler("pdftoppm")
    from PIL import Image

    for key, document in issued.items():
        pdf = bytes(document.content)
        text = pdf_text(pdf, tmp_path)
        # pdftotext gives back the title words (in logical order for Arabic: the glyphs
        # carry their characters), the reference, and the printed verification address
        assert TITLES[(document.kind, document.language)] in text, (key, text[:400])
        assert published_tender.reference in text
        assert official.verify_url(document) in text.replace(" ", "")
        assert str(document.step_index) in text
        # page 1 rendered as a person sees it, kept with the test's artefacts
        stem = ARTEFACTS / key.replace("/", "-")
        subprocess.run([pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                        str(tmp_path / "doc.pdf"), str(stem)], check=True, timeout=60)
        image = Image.open(f"{stem}.png").convert("L")
        dark = sum(1 for p in image.get_flattened_data() if p < 128)
        assert dark > 0.01 * image.width * image.height, key  # not a blank page
    arabic = pdf_text(bytes(issued["award_decision/ar"].content), tmp_path)
    for words in ("الجمهورية التونسية", "صاحب الصفقة", world["mf"].name_ar):
        assert words in arabic, words
    assert "Atlas" in arabic and "Carthage" in arabic
    french = pdf_text(bytes(issued["opening_report/fr"].content), tmp_path)
    for words in ("République tunisienne", "Offres ouvertes", "Atlas", "Medina",
                  "100000,000"):
        assert words in french, (words, french)


def test_the_arabic_documents_are_right_to_left_in_an_arabic_font(issued, tmp_path):
    pdffonts = poppler("pdffonts")
    for lang, wanted in (("ar", "Arabic"), ("fr", "Noto-Sans")):
        path = tmp_path / f"{lang}.pdf"
        path.write_bytes(bytes(issued[f"contract/{lang}"].content))
        fonts = subprocess.run([pdffonts, str(path)], capture_output=True, text=True,
                               check=True, timeout=60).stdout
        assert wanted in fonts, fonts
    # the right-to-left page: the Arabic title stands at the right of page 1
    bbox = subprocess.run([poppler("pdftotext"), "-bbox", "-f", "1", "-l", "1",
                           str(tmp_path / "ar.pdf"), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    import re

    page_width = float(re.search(r'<page width="([\d.]+)"', bbox).group(1))
    first_word = re.search(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"', bbox)
    assert float(first_word.group(2)) > 0.8 * page_width  # starts at the right margin


# --- the public verification page --------------------------------------------------------

def test_the_verification_page_shows_hash_ledger_signer_and_how_to_verify(issued):
    document = issued["award_decision/ar"]
    client = Client()  # anyone: no sign-in
    page = client.get(f"/tenders/documents/{document.pk}/verify")
    assert page.status_code == 200
    body = page.content.decode()
    for expected in (document.sha256, f"#{document.ledger_index}", document.signer_name,
                     "pyhanko sign validate --trust-replace --trust sahab-documents-ca.pem",
                     pdfsign.fingerprint(document.certificate)):
        assert expected in body, expected
    assert "does not validate" not in body
    pdf = client.get(f"/tenders/documents/{document.pk}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf) == bytes(document.content)
    ca = client.get("/tenders/documents/ca.pem")
    assert ca.status_code == 200 and ca.content == pdfsign.trust_roots_pem()
    # the tender page lists them
    tender = client.get(f"/tenders/{document.tender.reference}/").content.decode()
    assert f"/tenders/documents/{document.pk}/verify" in tender


def test_the_verification_page_says_when_the_stored_file_was_changed(issued):
    document = issued["contract/fr"]
    content = bytearray(document.content)
    content[10] ^= 0x01
    OfficialDocument.objects.filter(pk=document.pk).update(content=bytes(content))
    body = Client().get(f"/tenders/documents/{document.pk}/verify").content.decode()
    assert "does not validate" in body


def test_a_document_not_yet_on_the_ledger_is_not_public(issued):
    document = issued["contract/fr"]
    OfficialDocument.objects.filter(pk=document.pk).update(ledger_index=None)
    assert Client().get(f"/tenders/documents/{document.pk}/verify").status_code == 404
    assert Client().get(f"/tenders/documents/{document.pk}/pdf").status_code == 404


# --- production: the national CA's PKCS#12 files -----------------------------------------

def national_ca(tmp_path: Path, names: dict[str, str]) -> Path:
    """A stand-in for the national CA: its root (PEM) and a PKCS#12 file (with passphrase)
    for each of ``names`` (file stem → common name). Returns the root's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TunTrust test root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256()))
    for stem, common_name in names.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(root_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                # signing certificates carry non-repudiation, which pyHanko requires
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(root_key, hashes.SHA256()))
        passphrase = f"secret-{stem}".encode()
        (tmp_path / f"{stem}.p12").write_bytes(pkcs12.serialize_key_and_certificates(
            stem.encode(), key, cert, [root],
            serialization.BestAvailableEncryption(passphrase)))
        (tmp_path / f"{stem}.pass").write_bytes(passphrase + b"\n")
    (tmp_path / "roots.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return tmp_path / "roots.pem"


def signed_entries() -> int:
    from sahab.ledger.models import Entry

    return Entry.objects.filter(type="procurement.document.signed").count()


def test_a_signer_without_a_national_certificate_signs_nothing_until_given_one(
        world, published_tender, settings, tmp_path):
    walk_to_contract(world, published_tender)
    settings.DOCUMENT_SIGNING_PKCS12_DIR = str(tmp_path)
    settings.DOCUMENT_SIGNING_TRUST_ROOTS = str(national_ca(tmp_path, {}))
    # production has no demo CA to fall back on: nothing is signed, nothing is written,
    # and every step stays due
    assert official.issue_due(limit=10) == 0
    assert not OfficialDocument.objects.exists() and signed_entries() == 0
    assert len(official.due_steps(10)) == 4
    officer = world["officer"].user
    roots = national_ca(tmp_path, {"platform": "sahab plateforme",
                                   officer.username: officer.get_full_name()})
    assert official.issue_due(limit=10) == 4
    assert signed_entries() == 8
    for document in OfficialDocument.objects.all():
        pdf = bytes(document.content)
        assert pyhanko_status(pdf, roots.read_bytes()).bottom_line
        assert pdfsign.validate(pdf).ok  # against the configured national roots
        assert not pyhanko_status(pdf, certs.pem(pdfsign.demo_ca()[1])).trusted
    # the verification page publishes the national roots, not the demo CA
    assert Client().get("/tenders/documents/ca.pem").content == roots.read_bytes()


def test_a_pkcs11_token_configured_but_not_wired_in_signs_nothing(
        world, published_tender, settings):
    walk_to_contract(world, published_tender)
    settings.DOCUMENT_SIGNING_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
    assert official.issue_due(limit=10) == 0
    assert not OfficialDocument.objects.exists() and signed_entries() == 0


def test_the_worker_runs_the_job_and_the_steps_themselves_sign_nothing(world, published_tender):
    from sahab.core import scheduler

    assert official.issue_documents.module_path in scheduler.registered()
    walk_to_contract(world, published_tender)
    assert not OfficialDocument.objects.exists() and signed_entries() == 0
    assert [s.type for s in official.due_steps(10)] == ["tender.opened", "tender.evaluated",
                                                       "tender.awarded", "contract.signed"]
    assert official.issue_documents.call() == 4
    assert not official.due_steps(10)


# --- the supplier's countersignature ---------------------------------------------------

def test_the_supplier_countersigns_the_contract_the_buyer_signed_as_a_second_signature(
        world, published_tender, issued, tmp_path):
    """The contract PDF carries the buyer's signature; once the supplier countersigns on
    the platform, the worker adds the supplier's own PAdES signature to those very files
    (an incremental update): both validate, the buyer's still covers what it signed, and
    the new file's hash is on the ledger."""
    contract = Contract.objects.get(tender=published_tender)
    buyer_signed = {lang: bytes(issued[f"contract/{lang}"].content) for lang in ("fr", "ar")}
    factories.countersign(contract)
    contract.refresh_from_db()
    assert official.issue_due(limit=10) == 1
    countersigned = {d.language: d for d in OfficialDocument.objects.filter(
        step_index=contract.supplier_signed_index)}
    assert sorted(countersigned) == ["ar", "fr"]
    supplier = contract.supplier_signed_by
    for lang, document in countersigned.items():
        pdf = bytes(document.content)
        assert official.is_countersigned(document) and document.signer == supplier
        assert pdf.startswith(buyer_signed[lang])  # the buyer's file, untouched, then more
        first, second = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        roots = [pyhanko_root(pdfsign.trust_roots_pem())]
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko_certvalidator import ValidationContext

        buyers = validate_pdf_signature(first, ValidationContext(trust_roots=roots))
        suppliers = validate_pdf_signature(second, ValidationContext(trust_roots=roots))
        assert buyers.bottom_line and suppliers.bottom_line  # both intact, valid, trusted
        assert buyers.signing_cert.subject.native["common_name"] == \
            world["officer"].user.get_full_name()
        assert suppliers.signing_cert.subject.native["organization_name"] == \
            contract.supplier.name
        validation = pdfsign.validate(pdf)
        assert validation.ok and len(validation.signers) == 2
        entry = entry_data(document.ledger_index)
        assert entry["data"]["sha256"] == hashlib.sha256(pdf).hexdigest()
        assert entry["data"]["step"] == contract.supplier_signed_index
        assert entry["data"]["signer"] == f"user:{supplier.pk}"
        assert official.file_name(document).startswith("contrat-contresigne-")
        # a changed byte in what the buyer signed (the header's binary comment: the file
        # still parses) breaks both signatures
        tampered = bytearray(pdf)
        tampered[10] ^= 0x01
        broken = pdfsign.validate(bytes(tampered))
        assert not broken.ok and not broken.intact and not broken.earlier[0].intact
    page = Client().get(f"/tenders/documents/{countersigned['fr'].pk}/verify").content.decode()
    assert "contresign" in page.lower() or "countersign" in page.lower()
    assert official.issue_due(limit=10) == 0  # issued once


def test_a_countersignature_waits_for_the_buyers_signed_contract(world, published_tender):
    walk_to_contract(world, published_tender)
    contract = Contract.objects.get(tender=published_tender)
    factories.countersign(contract)
    contract.refresh_from_db()
    countersign_step = Step.objects.get(ledger_index=contract.supplier_signed_index)
    with pytest.raises(official.NotYetSigned):
        official.issue_for_step(countersign_step)  # the buyer's PDF is not issued yet
    assert not OfficialDocument.objects.filter(step_index=countersign_step.ledger_index)
    assert official.issue_due(limit=10) == 5  # in ledger order: the buyer's first


def pyhanko_root(ca_pem: bytes):
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(pem.unarmor(ca_pem)[2])
