"""Public procurement pages: tenders, their documents, opening reports, awards, contracts."""

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from sahab.procurement import selectors
from sahab.procurement.models import Bid, Procedure, State, TenderDocument


def tenders(request):
    q = request.GET.get("q", "")[:100]
    state = request.GET.get("state", "")
    state = state if state in State.values else ""
    procedure = request.GET.get("procedure", "")
    procedure = procedure if procedure in Procedure.values else ""
    qs = selectors.public_tenders(q=q, state=state, procedure=procedure)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    template = ("procurement/_tender_rows.html" if request.headers.get("HX-Request")
                else "procurement/tenders.html")
    return render(request, template, {
        "page": page, "q": q, "state": state, "procedure": procedure,
        "states": [(v, label) for v, label in State.choices if v != State.DRAFT],
        "procedures": Procedure.choices})


def tender(request, reference: str):
    item = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if item is None:
        raise Http404
    bids = []
    if item.opened_at:
        bids = (item.bids.filter(status__in=[Bid.Status.OPENED, Bid.Status.TAMPERED])
                .select_related("company").prefetch_related("lot_prices__lot"))
    return render(request, "procurement/tender.html", {
        "tender": item, "lots": item.lots.prefetch_related("items"),
        "documents": item.documents.all(),
        "questions": item.questions.exclude(answered_at=None),
        "bids": bids, "awards": item.awards.select_related("lot", "supplier"),
        "contracts": item.contracts.select_related("award__lot", "supplier")
        .prefetch_related("amendments", "payments"),
        "steps": item.steps.all(),
    })


def document(request, reference: str, document_id: int):
    tender = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if tender is None:
        raise Http404
    doc = get_object_or_404(TenderDocument, pk=document_id, tender=tender)
    response = HttpResponse(bytes(doc.content), content_type=doc.media_type)
    response["Content-Disposition"] = f'attachment; filename="{doc.name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Digest"] = f"sha-256={doc.sha256}"
    return response
