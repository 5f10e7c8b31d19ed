"""The public portal: what anybody may see without signing in."""

from django.db.models import Count
from django.shortcuts import render

from sahab.directory.models import Administration, AdministrationKind, Agent, Company


def _procurement_figures() -> dict:
    from django.db.models import Sum

    from sahab.procurement.models import Contract, State, Tender

    by_state = dict(Tender.objects.exclude(state=State.DRAFT).values_list("state")
                    .annotate(n=Count("id")).values_list("state", "n"))
    spend = list(Contract.objects.values("tender__buyer__code", "tender__buyer__name_fr",
                                         "tender__buyer__name_ar")
                 .annotate(total=Sum("value")).order_by("-total")[:8])
    top = max((row["total"] for row in spend), default=1) or 1
    for row in spend:
        row["percent"] = round(100 * row["total"] / top)
    return {"open_tenders": by_state.get(State.ENQUIRIES, 0) + by_state.get(State.TENDERING, 0),
            "published_tenders": sum(by_state.values()),
            "contracts": Contract.objects.count(), "spend": spend}


def home(request):
    by_kind = dict(Administration.objects.filter(active=True).values_list("kind")
                   .annotate(n=Count("id")).values_list("kind", "n"))
    rows = [{"kind": label, "count": by_kind.get(value, 0)}
            for value, label in AdministrationKind.choices if by_kind.get(value)]
    top = max((r["count"] for r in rows), default=1)
    for row in rows:
        row["percent"] = round(100 * row["count"] / top)
    return render(request, "portal/home.html", {
        "administrations": sum(by_kind.values()),
        "ministries": by_kind.get(AdministrationKind.MINISTRY, 0),
        "companies": Company.objects.filter(active=True).count(),
        "providers": Company.objects.filter(active=True, is_cloud_provider=True).count(),
        "agents": Agent.objects.filter(user__is_active=True).count(),
        "by_kind": rows,
        **_procurement_figures(),
    })
