"""The demo's year of procurement: its planted cases and, around them, ordinary purchases
(``sahab demo --tenders N``), with dates that never run backwards and the planted
patterns found by the red flags."""

import datetime as dt

import pytest
from django.utils import timezone

from sahab.core.demo import load_demo
from sahab.procurement import demo, redflags
from sahab.procurement.models import Award, Bid, Contract, Payment, Procedure, Step, Tender
from tests.module_data import demo_of_module, on_a_copy_of
from tests.procurement.test_ocds import (
    check_time_never_runs_backwards_and_records_show_the_latest_state,
)

pytestmark = pytest.mark.django_db
TENDERS = 70


@pytest.fixture(scope="module")
def _year_of_module(django_db_setup, django_db_blocker, tmp_path_factory):
    """The year loads once for the module (seconds): see tests.module_data."""
    home = tmp_path_factory.mktemp("demo-year")
    with demo_of_module(django_db_blocker, home, DEMO_TENDERS=TENDERS) as data:
        yield home, data


@pytest.fixture
def year(_year_of_module, db, settings, tmp_path):
    home, data = _year_of_module
    on_a_copy_of(home, settings, tmp_path)
    settings.DEMO_TENDERS = TENDERS
    return data


def test_ordinary_purchases_are_the_same_at_every_load():
    assert demo.ordinary_cases(40) == demo.ordinary_cases(40)
    assert len({c.title for c in demo.ordinary_cases(300)}) == 300


def test_the_demo_loads_a_year_of_every_procedure_and_outcome_with_consistent_dates(year):
    now = timezone.now()
    assert Tender.objects.count() == year["procurement"]["tenders"] == TENDERS
    assert set(Tender.objects.values_list("procedure", flat=True)) == set(Procedure.values)
    states = set(Tender.objects.values_list("state", flat=True))
    assert {"complete", "cancelled", "unsuccessful", "evaluation", "standstill",
            "draft"} <= states
    assert states & {"enquiries", "tendering"}  # calls still open for bids
    assert Tender.objects.values("buyer").distinct().count() >= 4

    # nothing happened in the future, and nothing before it could have
    assert not Step.objects.filter(at__gt=now).exists()
    for bid in Bid.objects.select_related("tender"):
        assert bid.tender.published_at <= bid.submitted_at <= now
        assert bid.submitted_at <= bid.tender.submission_deadline
    for contract in Contract.objects.select_related("award"):
        assert contract.award.decided_at <= contract.signed_at <= now
    assert not Payment.objects.filter(paid_at__gt=now).exists()
    assert Payment.objects.count() > 20
    check_time_never_runs_backwards_and_records_show_the_latest_state()


def test_no_demo_tender_is_awarded_without_its_committee(year):
    """Every award follows a report adopted by a committee of two; the far-below winner
    of the security audit explained its price and the committee accepted it."""
    from sahab.procurement.models import EvaluationReport, Explanation

    awarded = Tender.objects.filter(awards__isnull=False).distinct()
    assert awarded.exists()
    for tender in awarded:
        assert tender.evaluation_committee.count() >= 2 and tender.evaluation_quorum >= 2
        latest = tender.evaluation_reports.order_by("-number").first()
        if tender.state in ("awarded", "standstill", "complete"):
            assert latest.status == EvaluationReport.Status.ADOPTED, tender.reference
            assert latest.approvals.filter(approved=True).count() >= 2
    audit = Explanation.objects.get(
        bid_lot__bid__tender__title="Audit de sécurité des systèmes de paiement")
    assert audit.status == Explanation.Status.ACCEPTED
    assert audit.bid_lot.bid.company.name == "Djerba Digital"
    assert audit.requested_at < audit.answered_at < audit.decided_at


def test_the_planted_patterns_of_the_ordinary_year_are_there(year):
    """Two companies at one address keep bidding together (flagged S07), and a commune
    keeps awarding one builder its ordinary purchases."""
    flags = redflags.current(max_age=0)
    assert any(f.code == "S07" and all(name in f.params.get("names", "")
                                       for name in demo.PARTNERS) for f in flags)
    buyer, builder = demo.FAVOURED
    awarded = Award.objects.filter(tender__buyer__code=buyer, status=Award.Status.ACTIVE,
                                   tender__title__contains="— marché")
    assert awarded.count() >= 3
    assert awarded.filter(supplier__name=builder).count() / awarded.count() >= 0.5


def test_a_second_load_adds_nothing(year, settings):
    before = Tender.objects.count(), Step.objects.count()
    settings.DEMO_TENDERS = TENDERS + 50
    load_demo()
    assert (Tender.objects.count(), Step.objects.count()) == before
    assert dt.timedelta(0) <= timezone.now() - Step.objects.latest("at").at
