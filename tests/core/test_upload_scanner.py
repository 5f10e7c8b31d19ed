"""Uploaded documents pass through the operator's antivirus (ASVS 12.4.2): an infected
file is refused with a clear error and nothing saved, and so is every file the scanner
could not check (fail closed). The scanner here is a real program speaking clamdscan's
exit codes, which flags the EICAR test signature as ClamAV does."""

import sys
import textwrap

import pytest

from sahab.core import documents
from sahab.core.errors import Conflict, InvalidInput

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def scanner(tmp_path, settings):
    program = tmp_path / "scan.py"
    program.write_text(textwrap.dedent('''
        import sys
        data = sys.stdin.buffer.read()
        if b"broken scanner" in data:
            sys.exit(2)
        if b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in data:
            print("stream: Eicar-Signature FOUND")
            sys.exit(1)
        print("stream: OK")
    '''))
    settings.UPLOAD_SCANNER = f"{sys.executable} {program}"
    return program


def test_a_clean_file_passes_and_an_infected_one_is_refused(scanner):
    assert documents.check_document("plan.png", PNG)[0] == "image/png"
    with pytest.raises(InvalidInput, match="refused by the antivirus"):
        documents.check_document("plan.png", PNG + EICAR)


def test_a_file_the_scanner_cannot_check_is_refused(scanner, settings):
    with pytest.raises(Conflict, match="could not be checked"):
        documents.check_document("plan.png", PNG + b"broken scanner")
    settings.UPLOAD_SCANNER = "/nonexistent/clamdscan -"
    with pytest.raises(Conflict, match="could not be checked"):
        documents.check_document("plan.png", PNG)


@pytest.mark.django_db
def test_an_infected_tender_document_is_refused_and_nothing_saved(scanner, sahab_home):
    import datetime as dt

    from django.utils import timezone

    from sahab.directory.selectors import SYSTEM
    from sahab.procurement import services
    from sahab.procurement.models import TenderDocument
    from tests import factories

    now = timezone.now()
    tender = services.create_tender(
        actor=SYSTEM, buyer=factories.administration(code="MF"), title="Serveurs",
        procedure="open", enquiry_deadline=now + dt.timedelta(days=10),
        submission_deadline=now + dt.timedelta(days=30),
        lots=[{"title": "Serveurs", "cpv": "48820000-2", "estimated_value": "1000"}])
    with pytest.raises(InvalidInput, match="antivirus"):
        services.add_document(actor=SYSTEM, tender=tender, name="cahier.png",
                              content=PNG + EICAR)
    assert not TenderDocument.objects.exists()
