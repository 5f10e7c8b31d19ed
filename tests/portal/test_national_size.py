"""The portal at national size: pages read the red flags that the worker stored instead of
computing them, and the faster tender search and list answer exactly as before."""

import datetime as dt
import re
from email.utils import parsedate_to_datetime

import pytest
from django.db.models import Q
from django.utils import translation

from sahab.directory.models import Administration
from sahab.directory.selectors import SYSTEM
from sahab.procurement import redflags, search, selectors, tasks
from sahab.procurement.models import Award, Bid, RedFlagRun, Tender


@pytest.fixture
def worker_only(settings):
    """As in production: nobody but the worker computes the flags once a run exists."""
    settings.RED_FLAGS_RECOMPUTE_WHEN_STALE = False
    redflags._loaded.clear()
    yield
    redflags._loaded.clear()


def test_the_worker_stores_the_flags_that_a_computation_gives(demo, worker_only):
    expected = redflags.compute(redflags.compiled_releases())
    assert expected  # the demo plants flagged cases
    assert tasks.refresh_red_flags.call() == len(expected)
    run = RedFlagRun.objects.get()
    assert run.count == len(expected) and run.seconds >= 0
    redflags._loaded.clear()  # another process reads the stored run
    stored = redflags.current()
    assert [redflags.as_dict(f) for f in stored] == [redflags.as_dict(f) for f in expected]
    for language in ("fr", "ar", "en"):  # amounts, ratios and dates keep their kind
        with translation.override(language):
            assert [f.explanation for f in stored] == [f.explanation for f in expected]


def test_the_worker_computes_the_flags_again_only_when_releases_or_settings_changed(
        demo, worker_only, settings):
    """At a country's size a run takes minutes: the worker's turn every few minutes
    computes nothing when no release was published and no threshold changed."""
    from sahab.procurement.models import Release

    tasks.refresh_red_flags.call()
    tasks.refresh_red_flags.call()
    assert RedFlagRun.objects.count() == 1
    settings.RED_FLAGS = {"R003": {"threshold": 21}}
    tasks.refresh_red_flags.call()
    assert RedFlagRun.objects.count() == 2
    last = Release.objects.order_by("-ledger_index").first()
    Release.objects.create(ocid=last.ocid, release_id=last.release_id + "-next",
                           tender=last.tender, date=last.date, tags=last.tags, data=last.data,
                           ledger_index=last.ledger_index + 1000)
    tasks.refresh_red_flags.call()
    assert RedFlagRun.objects.order_by("-pk").first().releases_upto == last.ledger_index + 1000


def test_pages_read_the_stored_run_and_never_compute_flags(demo, worker_only, client,
                                                           monkeypatch,
                                                           django_assert_max_num_queries):
    redflags.refresh()
    flagged = next(f for f in redflags.current() if f.level == "tender")

    def computing(*_args, **_kwargs):
        raise AssertionError("a page computed the red flags")

    monkeypatch.setattr(redflags, "compute", computing)
    redflags._loaded.clear()  # a fresh process: it decodes the run, it does not compute
    with django_assert_max_num_queries(8):
        page = client.get("/tenders/red-flags/")
    assert page.status_code == 200
    assert "computed-at" in page.content.decode()
    api = client.get("/api/procurement/red-flags")
    assert api.status_code == 200 and "Last-Modified" in api
    assert {(f["code"], f["key"]) for f in api.json()} == \
        {(f.code, f.key) for f in redflags.current()}
    assert flagged.code in client.get(f"/tenders/{flagged.reference}/").content.decode()
    for path in ("/tenders/dashboard/", f"/tenders/?flag={flagged.code}", "/"):
        assert client.get(path).status_code == 200, path
    # a tender published since shows up at the worker's next run, not in a visitor's page
    assert RedFlagRun.objects.count() == 1


def test_only_the_last_runs_are_kept(demo, worker_only):
    for _ in range(5):
        redflags.refresh()
    assert RedFlagRun.objects.count() == 3
    assert redflags.last_run() == RedFlagRun.objects.order_by("-pk").first()


def test_the_worker_stores_the_dashboards_and_pages_read_them_without_aggregating(
        demo, worker_only, client, monkeypatch, settings):
    import json

    from django.core.cache import cache

    from sahab.procurement import dashboard
    from sahab.procurement.models import DashboardTable

    redflags.refresh()
    expected = {name: json.loads(json.dumps(aggregate()))
                for name, aggregate in dashboard.STORED.items()}
    assert expected["spending"] and expected["competition"]  # the demo has both
    assert expected["home"]["contracts"] and expected["home"]["spend"]
    took = tasks.refresh_dashboards.call()
    assert set(took) == set(dashboard.STORED) and min(took.values()) >= 0
    assert {t.name: t.rows for t in DashboardTable.objects.all()} == expected

    calls = []

    def aggregating(name):
        def aggregate():
            calls.append(name)
            return expected[name]
        return aggregate

    for name in dashboard.STORED:
        monkeypatch.setitem(dashboard.STORED, name, aggregating(name))
    # a page reads what the worker stored: no aggregation in a visitor's request
    cache.clear()  # a process that kept nothing yet
    assert client.get("/tenders/dashboard/").status_code == 200
    home = client.get("/").content.decode()
    assert f">{expected['home']['contracts']}<" in home
    download = client.get("/tenders/dashboard/", {"table": "spending", "format": "json"})
    assert download.json() == expected["spending"]
    # the download says when its figures were computed, as the page does
    stored_at = DashboardTable.objects.get(name="spending").computed_at
    assert parsedate_to_datetime(download["Last-Modified"]) == stored_at.replace(microsecond=0)
    assert client.get("/tenders/dashboard/", {"table": "spending", "format": "csv"}
                      )["Last-Modified"] == download["Last-Modified"]
    assert calls == []
    assert "Figures computed on" in client.get("/tenders/dashboard/").content.decode()
    # a worker that stopped ten refreshes ago leaves its last figures, shown with their
    # time and a warning: no visitor waits for an aggregation over every tender
    stale = DashboardTable.objects.get(name="competition").computed_at - dt.timedelta(
        seconds=11 * settings.PORTAL_FIGURES_SECONDS)
    DashboardTable.objects.filter(name__in=["competition", "home"]).update(computed_at=stale)
    cache.clear()
    for path in ("/tenders/dashboard/", "/"):
        page = client.get(path)
        assert page.status_code == 200
        assert "These figures were last computed on" in page.content.decode(), path
    assert f">{expected['home']['contracts']}<" in page.content.decode()
    assert calls == []
    # before the worker's first refresh, the page aggregates itself and writes nothing
    # (public pages may be read from a standby)
    DashboardTable.objects.all().delete()
    cache.clear()
    assert client.get("/tenders/dashboard/").status_code == 200
    assert client.get("/").status_code == 200
    assert sorted(calls) == sorted(dashboard.STORED)
    assert not DashboardTable.objects.exists()


def test_a_download_is_dated_by_the_refresh_that_computed_its_rows(demo, worker_only, client,
                                                                   settings):
    """Before: the rows and their time were kept by the process as two entries, set by
    different requests. Rows kept from the page before the worker's next refresh (in
    another process, which cannot clear this one's copy) went out dated by that next
    refresh: figures older than their Last-Modified said."""
    from django.core.cache import cache

    from sahab.procurement import dashboard
    from sahab.procurement.models import DashboardTable

    settings.CACHES = {"default": {  # as a server process keeps them
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    dashboard.refresh()
    cache.clear()
    first = DashboardTable.objects.get(name="spending")
    assert client.get("/tenders/dashboard/").status_code == 200  # keeps the rows
    # the worker's next refresh, in its own process: new figures, a later time
    DashboardTable.objects.filter(name="spending").update(
        rows=[], computed_at=first.computed_at + dt.timedelta(seconds=30))
    download = client.get("/tenders/dashboard/", {"table": "spending", "format": "json"})
    assert download.json() == first.rows  # what this process kept, for now
    assert parsedate_to_datetime(download["Last-Modified"]) == \
        first.computed_at.replace(microsecond=0)  # dated by the refresh that made them


def _search_as_before(q: str):
    """The tender search as it was written before: joins and DISTINCT."""
    opened = selectors.OPENED
    compact = q.replace("/", "").replace(" ", "").upper()
    return set(Tender.objects.filter(state__in=selectors.PUBLIC_STATES).filter(
        Q(title__icontains=q) | Q(reference__icontains=q) | Q(description__icontains=q)
        | Q(bids__status__in=opened, bids__company__name__icontains=q)
        | Q(bids__status__in=opened, bids__company__matricule_fiscal__icontains=q)
        | Q(awards__supplier__name__icontains=q)
        | (Q(bids__status__in=opened, bids__company__matricule_fiscal__startswith=compact[:8])
           if len(compact) >= 8 else Q(pk__in=[]))).distinct().values_list("reference",
                                                                             flat=True))


def test_the_search_finds_what_it_found_before(demo):
    bidder = Bid.objects.filter(status=Bid.Status.OPENED).select_related("company").first()
    winner = Award.objects.select_related("supplier").first().supplier
    sealed = Bid.objects.filter(status=Bid.Status.SUBMITTED).select_related("company").first()
    tender = Tender.objects.exclude(state="draft").first()
    words = [bidder.company.name, bidder.company.name[:5].lower(), winner.name,
             winner.matricule_fiscal, winner.matricule_fiscal.replace("/", "")[:8],
             tender.title.split()[0], tender.reference, tender.reference[-3:], "zzz-nothing"]
    if sealed is not None:
        words.append(sealed.company.name)
    for q in words:
        found = set(selectors.public_tenders(q=q).values_list("reference", flat=True))
        assert found == _search_as_before(q), q
    # a tender found by its bidder's name, by its buyer, by its title
    assert tender.reference in {t.reference for t in selectors.public_tenders(
        q=tender.title, buyer=tender.buyer.code)}
    assert bidder.tender.reference in {t.reference for t in selectors.public_tenders(
        q=bidder.company.name)}
    if sealed is not None:  # a sealed bid names nobody
        assert sealed.tender.reference not in {t.reference for t in selectors.public_tenders(
            q=sealed.company.name)}
    # no tender twice, though several of its bids match
    listed = list(selectors.public_tenders(q=bidder.company.name[:3]).values_list("pk",
                                                                                    flat=True))
    assert len(listed) == len(set(listed))
    # the CPV filter neither repeats a tender with several matching lots
    cpv = tender.lots.first().cpv[:2]
    listed = list(selectors.public_tenders(cpv=cpv).values_list("pk", flat=True))
    assert len(listed) == len(set(listed)) and tender.pk in listed


def test_the_tender_list_api_pages_in_the_same_order_with_its_count(demo, client):
    expected = list(Tender.objects.filter(state__in=selectors.PUBLIC_STATES)
                    .order_by("-published_at", "-pk").values_list("reference", flat=True))
    assert len(expected) > 3
    seen = []
    for offset in range(0, len(expected), 2):
        page = client.get("/api/procurement/tenders", {"limit": 2, "offset": offset}).json()
        assert page["count"] == len(expected)
        seen.extend(t["reference"] for t in page["items"])
    assert seen == expected
    state = Tender.objects.get(reference=expected[0]).state
    filtered = client.get("/api/procurement/tenders", {"limit": 100, "state": state}).json()
    assert [t["reference"] for t in filtered["items"]] == \
        [r for r in expected if Tender.objects.get(reference=r).state == state]
    assert filtered["count"] == len(filtered["items"])



def _listed(response) -> list[str]:
    """The tender references of a search page's rows, in order."""
    return re.findall(r'<a href="/tenders/[^"]+/"><code>([^<]+)</code>', response.text)


def test_a_search_past_the_cap_says_more_than_and_sends_downloads_to_the_bulk_file(
        demo, client, monkeypatch):
    from sahab.procurement import views

    published = list(selectors.public_tenders().values_list("reference", flat=True))
    assert len(published) > 5
    monkeypatch.setattr(views, "SEARCH_COUNT_CAP", 4)
    monkeypatch.setattr(views, "TENDERS_PER_PAGE", 2)
    with translation.override("en"):
        first = client.get("/tenders/", HTTP_ACCEPT_LANGUAGE="en")
        assert "More than 4 tenders: narrow the search to see them all" in first.text
        assert "Page 1</span>" in first.text and "Page 1 of" not in first.text
        assert _listed(first) == published[:2]
        # the pages stop at the cap: asking beyond it gives the last one
        assert _listed(client.get("/tenders/", {"page": 2})) == published[2:4]
        assert _listed(client.get("/tenders/", {"page": 99})) == published[2:4]
        # the page offers the bulk file instead of a download of the matches
        assert "/ocds/releases.json.gz" in first.text and "format=csv" not in first.text
        for fmt in ("csv", "json"):
            refused = client.get("/tenders/", {"format": fmt})
            assert refused.status_code == 400
            assert refused["Content-Type"] == "application/problem+json"
            assert refused.json()["title"] == "Too many tenders to download"
            assert "/ocds/releases.json.gz" in refused.json()["detail"]
        # a narrower search is counted exactly and downloads as before
        reference = published[0]
        narrow = client.get("/tenders/", {"q": reference})
        assert "1 tender" in narrow.text and "Page 1 of" not in narrow.text
        download = client.get("/tenders/", {"q": reference, "format": "csv"})
        assert download.status_code == 200 and reference in download.content.decode()
    # htmx asks for the rows only
    rows = client.get("/tenders/", {"q": reference}, HTTP_HX_REQUEST="true")
    assert "<form" not in rows.text and _listed(rows) == [reference]


def test_the_buyer_field_suggests_buyers_by_code_or_name_and_names_the_chosen_one(
        demo, client):
    buyer = Tender.objects.exclude(state="draft").select_related("buyer").first().buyer
    silent = Administration.objects.exclude(
        pk__in=Tender.objects.filter(published_at__isnull=False).values("buyer")).first()

    def suggested(text: str) -> list[str]:
        response = client.get("/tenders/buyers/", {"buyer": text})
        assert response.status_code == 200
        return re.findall(r'<option value="([^"]+)">', response.text)

    by_code = suggested(buyer.code[:2].lower())
    assert buyer.code in by_code
    assert all(code.startswith(buyer.code[:2]) for code in by_code[:by_code.index(buyer.code)])
    assert buyer.code in suggested(buyer.name_fr[1:8])
    assert suggested("") == [] and suggested("zzz-nobody") == []
    if silent is not None:  # an administration that never published is no buyer to pick
        assert silent.code not in suggested(silent.code)
    with translation.override("fr"):
        chosen = client.get("/tenders/", {"buyer": buyer.code.lower()},
                            HTTP_ACCEPT_LANGUAGE="fr")
        assert f'<small id="buyer-chosen">{buyer.name_fr}</small>' in chosen.text
        assert _listed(chosen) and all(
            Tender.objects.get(reference=r).buyer.path.startswith(buyer.path)
            for r in _listed(chosen))
        unknown = client.get("/tenders/", {"buyer": "NOPE"}, HTTP_ACCEPT_LANGUAGE="fr")
        assert _listed(unknown) == [] and 'id="buyer-chosen"></small>' not in unknown.text


def _found(q: str, **filters) -> set[str]:
    return set(selectors.public_tenders(q=q, **filters).values_list("reference", flat=True))


def test_a_tender_saved_from_an_older_copy_keeps_the_names_the_search_finds(demo):
    """Only procurement.search writes the names: a service saving a tender it read before
    an opening or an award must not put the former names back."""
    won = Award.objects.select_related("tender", "supplier").first()
    older = Tender.objects.get(pk=won.tender_id)
    Tender.objects.filter(pk=won.tender_id).update(party_names="Nouveau Titulaire SARL")
    older.description = "Mise à jour de la description."
    older.save()
    again = Tender.objects.get(pk=won.tender_id)
    assert again.party_names == "Nouveau Titulaire SARL"
    assert again.description == "Mise à jour de la description."
    search.refresh_party_names([won.tender_id])
    assert won.tender.reference in _found(won.supplier.name)


def test_a_renamed_company_is_found_by_its_new_name_only(demo):
    from sahab.directory import services as directory

    won = Award.objects.select_related("tender", "supplier").first()
    former = won.supplier.name
    assert won.tender.reference in _found(former)
    directory.update_company(actor=SYSTEM, company=won.supplier, name="Numérique du Sud")
    assert won.tender.reference in _found("Numérique du Sud")
    assert won.tender.reference not in _found(former)
    assert _found("Numérique du Sud") == _search_as_before("Numérique du Sud")


def test_a_word_never_spans_two_names_nor_a_name_and_a_matricule(demo):
    bid = Bid.objects.filter(status=Bid.Status.OPENED).select_related("company").first()
    assert bid.tender.reference in _found(bid.company.name)
    across = f"{bid.company.name}\n{bid.company.matricule_fiscal}"
    assert _found(across) == _search_as_before(across) == set()
    assert _found(f"{bid.company.name} {bid.company.matricule_fiscal}") == set()


def test_the_api_counts_and_pages_a_broad_search_within_its_window(demo, client, monkeypatch):
    """A common word matches a fifth of a country's tenders: the API counts up to the
    window and pages through it, as search engines do, and says the count is capped."""
    from sahab.core.pagination import SearchPaging

    matches = list(selectors.public_tenders(q="e").values_list("reference", flat=True))
    everything = selectors.public_tenders().count()
    assert len(matches) > 4
    monkeypatch.setattr(SearchPaging, "window", 4)
    broad = client.get("/api/procurement/tenders", {"q": "e", "limit": 3}).json()
    assert broad["count"] == 4 and broad["count_capped"] is True
    assert [t["reference"] for t in broad["items"]] == matches[:3]
    # the last page of the window stops at the window
    last = client.get("/api/procurement/tenders", {"q": "e", "limit": 3, "offset": 3}).json()
    assert [t["reference"] for t in last["items"]] == matches[3:4]
    beyond = client.get("/api/procurement/tenders", {"q": "e", "offset": 4})
    assert beyond.status_code == 422  # the API's invalid input, as a problem
    assert beyond["Content-Type"] == "application/problem+json"
    assert beyond.json()["code"] == "search_past_window"
    assert "/ocds/releases.json.gz" in beyond.json()["detail"]
    # a narrow search is counted exactly; the list without a word too, past the window
    reference = matches[0]
    narrow = client.get("/api/procurement/tenders", {"q": reference}).json()
    assert narrow["count"] == 1 and narrow["count_capped"] is False
    listed = client.get("/api/procurement/tenders", {"offset": 5, "limit": 1}).json()
    assert listed["count"] == everything > 4 and listed["count_capped"] is False


def test_one_table_that_fails_does_not_stop_the_others_being_refreshed(
        demo, worker_only, monkeypatch, caplog):
    from sahab.procurement import dashboard
    from sahab.procurement.models import DashboardTable

    def failing():
        raise RuntimeError("a query the database refused")

    monkeypatch.setitem(dashboard.STORED, "competition", failing)
    took = dashboard.refresh()
    assert "competition" not in took
    assert set(DashboardTable.objects.values_list("name", flat=True)) == \
        set(dashboard.STORED) - {"competition"}
    assert "could not be aggregated" in caplog.text
