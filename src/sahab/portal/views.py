"""The public portal: what anybody may see without signing in."""

from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from sahab.core.errors import CoreError, InvalidInput
from sahab.directory.models import Administration, AdministrationKind, Agent, Company
from sahab.portal.forms import FollowForm, followable_kinds


def _figures() -> dict:
    from sahab.procurement import dashboard

    by_kind = dict(Administration.objects.filter(active=True).values_list("kind")
                   .annotate(n=Count("id")).values_list("kind", "n"))
    rows = [{"kind": label, "count": by_kind.get(value, 0)}
            for value, label in AdministrationKind.choices if by_kind.get(value)]
    top = max((r["count"] for r in rows), default=1)
    for row in rows:
        row["percent"] = round(100 * row["count"] / top)
    return {
        "administrations": sum(by_kind.values()),
        "ministries": by_kind.get(AdministrationKind.MINISTRY, 0),
        "companies": Company.objects.filter(active=True).count(),
        "providers": Company.objects.filter(active=True, is_cloud_provider=True).count(),
        "agents": Agent.objects.filter(user__is_active=True).count(),
        "by_kind": rows,
        # aggregated over every tender and contract by the worker, which stores them
        **dashboard.table("home"),
        "figures_freshness": dashboard.freshness(["home"]),
    }


def home(request):
    from django.conf import settings
    from django.core.cache import cache

    # counts over every tender and contract, the same in every language: kept a minute
    figures = cache.get_or_set("sahab:portal:home", _figures, settings.PORTAL_FIGURES_SECONDS)
    return render(request, "portal/home.html", figures)


# --- companies and buyers ---------------------------------------------------------------

def _download(request, name: str, profile):
    """``?table=<name>&format=csv|json`` downloads one table of a profile, streamed."""
    from sahab.core.downloads import streamed_table_response, wants_download

    fmt = wants_download(request)
    rows = profile.download(request.GET.get("table", "")) if fmt else None
    if rows is not None:
        return streamed_table_response(fmt, f"{name}-{request.GET['table']}", rows)
    return None


def companies(request):
    """Search companies by name or matricule fiscal."""
    from sahab.procurement import selectors

    q = request.GET.get("q", "")[:100]
    found = selectors.search_companies(q) if q.strip() else []
    return render(request, "portal/companies.html", {"q": q, "companies": found})


def company(request, slug: str):
    from sahab.core.charts import bars
    from sahab.procurement import ocds, profiles, redflags, selectors
    from sahab.procurement.views import _linked

    item = selectors.company_by_slug(slug)
    if item is None:
        raise Http404
    profile = profiles.company_profile(item)
    download = _download(request, f"company-{ocds.company_slug(item)}", profile)
    if download:
        return download
    flags = [_linked(f) for f in redflags.for_organization(
        {ocds.company_party_id(item), item.matricule_fiscal})]
    return render(request, "portal/company.html", {
        "company": item, "party_id": ocds.company_party_id(item), **profile.page(),
        "won_bars": bars(profile.years, "year", "awarded_value"),
        "flags": flags})


def buyer(request, code: str):
    from sahab.core.charts import bars
    from sahab.procurement import ocds, profiles, redflags
    from sahab.procurement.views import _linked

    item = get_object_or_404(Administration, code=code)
    profile = profiles.buyer_profile(item)
    download = _download(request, f"buyer-{item.code}", profile)
    if download:
        return download
    flags = [_linked(f) for f in redflags.for_organization(
        {ocds.administration_party_id(item), item.code})]
    page = profile.page()
    return render(request, "portal/buyer.html", {
        "buyer": item, "party_id": ocds.administration_party_id(item), **page,
        "spend_bars": bars(profile.years, "year", "contracted_value"),
        "supplier_bars": bars(page["suppliers"][:10], "supplier", "value"),
        "flags": flags})


# --- alerts ---------------------------------------------------------------------------

def follow(request):
    """Follow a CPV code, a buyer, a company or a search by e-mail (confirmed by a link)."""
    from sahab.core.actions import form_error_text
    from sahab.core.errors import DomainError
    from sahab.portal import alerts

    form = FollowForm(request.POST if request.method == "POST" else None)
    # links from other pages pre-fill what to follow: ?kind=buyer&value=MF
    kind = form["kind"].value() or request.GET.get("kind", "cpv")
    value = form["value"].value() or request.GET.get("value", "")
    context = {"kind": kind, "value": value[:200], "kinds": followable_kinds()}
    status = 200
    if form.is_bound:
        try:
            if not form.is_valid():
                raise InvalidInput(CoreError.INVALID_FIELDS, errors=form_error_text(form))
            alerts.follow(**form.cleaned_data)
        except DomainError as exc:
            context["error"], status = exc.detail, 400
        else:
            context["sent_to"] = form.cleaned_data["email"]
    return render(request, "portal/follow.html", context, status=status)


def confirm(request, token: str):
    """The link in the message shows a button; the button confirms. Link checkers that
    open every link of a message subscribe nobody."""
    from sahab.core.errors import NotFound
    from sahab.portal import alerts
    from sahab.portal.models import Subscription

    if request.method != "POST":
        pending = Subscription.objects.filter(token=token, unsubscribed_at=None).first()
        if pending is None:
            return render(request, "portal/alert_done.html",
                          {"error": "This link is not valid (any more)."}, status=404)
        return render(request, "portal/alert_done.html",
                      {"confirm": alerts.describe(pending), "token": token})
    try:
        subscription = alerts.confirm(token=token)
    except NotFound as exc:
        return render(request, "portal/alert_done.html", {"error": exc.detail}, status=404)
    return render(request, "portal/alert_done.html",
                  {"confirmed": alerts.describe(subscription), "subscription": subscription})


def unsubscribe(request, token: str):
    """One click, as mail clients expect (RFC 8058 sends a POST, a person a GET)."""
    from sahab.core.errors import NotFound
    from sahab.portal import alerts

    try:
        subscription = alerts.unsubscribe(token=token)
    except NotFound as exc:
        return render(request, "portal/alert_done.html", {"error": exc.detail}, status=404)
    return render(request, "portal/alert_done.html",
                  {"unsubscribed": alerts.describe(subscription)})


def feed(request):
    """An Atom feed of the tenders matching ``cpv``, ``buyer``, ``company`` or ``q``."""
    from django.http import HttpResponse
    from django.utils import feedgenerator

    from sahab.core.errors import InvalidInput
    from sahab.portal import alerts
    from sahab.portal.models import Subscription

    K = Subscription.Kind
    kind, value = next(((k, request.GET[p]) for p, k in
                        (("cpv", K.CPV), ("buyer", K.BUYER), ("company", K.COMPANY),
                         ("q", K.SEARCH)) if request.GET.get(p)), (None, ""))
    if kind is None:
        return HttpResponse("Give cpv, buyer, company or q.", status=400,
                            content_type="text/plain; charset=utf-8")
    try:
        value = alerts.clean(kind, value)
    except InvalidInput as exc:
        return HttpResponse(exc.detail, status=400, content_type="text/plain; charset=utf-8")
    base = request.build_absolute_uri("/").rstrip("/")
    atom = feedgenerator.Atom1Feed(
        title=f"sahab — {kind} {value}", link=request.build_absolute_uri(),
        description="", language="fr", feed_url=request.build_absolute_uri())
    for t in alerts.matching(kind, value)[:50]:
        atom.add_item(title=f"{t.reference} — {t.title}",
                      link=f"{base}/tenders/{t.reference}/",
                      description=f"{t.buyer.name_fr} · {t.get_procedure_display()} · "
                                  f"{t.estimated_value} TND · {t.get_state_display()}",
                      unique_id=f"{base}/tenders/{t.reference}/",
                      pubdate=t.published_at, updateddate=t.published_at)
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    atom.write(response, "utf-8")
    response["Access-Control-Allow-Origin"] = "*"
    return response
