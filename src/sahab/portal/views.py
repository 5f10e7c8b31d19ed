"""The public portal: what anybody may see without signing in."""

from django.db.models import Count
from django.shortcuts import render

from sahab.directory.models import Administration, AdministrationKind, Agent, Company


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
    })
