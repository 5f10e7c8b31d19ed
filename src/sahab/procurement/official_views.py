"""Public pages of the signed official documents: the verification page that each
document's QR code leads to, the signed PDF, and the certificate authority to trust."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render

from sahab.core import pdfsign
from sahab.core.downloads import attach
from sahab.procurement import official, selectors
from sahab.procurement.models import OfficialDocument


def _document(request, pk: int) -> OfficialDocument:
    document = (OfficialDocument.objects.select_related("tender", "tender__buyer")
                .filter(pk=pk, ledger_index__isnull=False,
                        tender__in=selectors.tenders_visible_to(request.user)).first())
    if document is None:
        raise Http404
    return document


def document(request, pk: int):
    """Who signed, what the ledger holds, whether the stored file still validates, and how
    anyone checks a copy on their own machine."""
    item = _document(request, pk)
    others = item.tender.official_documents.filter(ledger_index__isnull=False).exclude(pk=pk)
    return render(request, "procurement/official/verify.html", {
        "document": item, "tender": item.tender, "file_name": official.file_name(item),
        "fingerprint": pdfsign.fingerprint(item.certificate),
        "countersigned": official.is_countersigned(item),
        "others": others, **official.verification(item)})


def document_pdf(request, pk: int):
    item = _document(request, pk)
    response = HttpResponse(bytes(item.content), content_type="application/pdf")
    attach(response, official.file_name(item), as_attachment=False)
    response["X-Content-Type-Options"] = "nosniff"
    response["Digest"] = f"sha-256={item.sha256}"
    return response


def certificate_authority(request):
    """The certificates a verifier trusts (the demo CA, or the national CA's)."""
    response = HttpResponse(pdfsign.trust_roots_pem(), content_type="application/x-pem-file")
    attach(response, "sahab-documents-ca.pem")
    return response
