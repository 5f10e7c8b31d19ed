"""Each person is told what waits for them, by mail through sahab's own mail system (the
journey that told nobody: an order waiting for approval sent nothing to the approver, and
the IT officer was not told the database was ready)."""

import pytest

from sahab.cloud import services
from sahab.cloud.models import InstanceState, Order
from sahab.directory.models import Role
from sahab.mail.models import OutboundMessage
from tests import factories, notices

_mails, _to = notices.sent, notices.subjects_to


def test_an_order_above_the_threshold_is_mailed_to_its_approvers_only(market, commits):
    other_finance = factories.agent(roles=[Role.FINANCE]).user  # another ministry
    order = commits(services.place_order, actor=market.it, plan=market.plan("pg-medium"),
                    purpose="Paie")
    assert order.status == Order.Status.PENDING_APPROVAL
    [subject] = _to(market.finance)
    assert order.number in subject
    [(_, message)] = [(t, m) for t, m in _mails() if t == market.finance.email]
    assert f"/cloud/orders/{order.number}/" in message.get_content()
    assert message["From"].startswith("notifications@")
    assert _to(other_finance) == [] and _to(market.it) == []  # nor the one who ordered


def test_the_officer_is_told_of_the_decision_then_that_the_database_is_ready(market,
                                                                            commits):
    order = commits(services.place_order, actor=market.it, plan=market.plan("pg-medium"),
                    purpose="Paie")
    commits(services.decide_order, actor=market.finance, order=order, approve=True)
    assert any("approved" in s for s in _to(market.it))
    commits(market.work, 3)
    order.refresh_from_db()
    assert order.instance.state == InstanceState.ACTIVE
    assert any("is ready" in s for s in _to(market.it))


def test_a_refusal_says_why(market, commits):
    order = commits(services.place_order, actor=market.it, plan=market.plan("pg-medium"),
                    purpose="Paie")
    commits(services.decide_order, actor=market.finance, order=order, approve=False,
            note="Budget épuisé pour ce trimestre")
    [(_, message)] = [(t, m) for t, m in _mails() if t == market.it.email]
    assert "refused" in message["Subject"] and "Budget épuisé" in message.get_content()


def test_nothing_is_sent_for_an_order_rolled_back(market, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), \
            transaction.atomic():
        services.place_order(actor=market.it, plan=market.plan("pg-medium"), purpose="Paie")
        raise RuntimeError("the request failed after the order")
    assert _mails() == []


def test_the_account_page_lists_what_waits_and_only_what_the_person_may_do(market, client):
    from tests.cloud.conftest import make_provider

    order = services.place_order(actor=market.it, plan=market.plan("pg-medium"),
                                 purpose="Paie")
    client.force_login(market.finance)
    page = client.get("/accounts/").content.decode()
    assert f"/cloud/orders/{order.number}/" in page and "Approve or refuse" in page
    client.force_login(market.it)  # who ordered may not approve: nothing offered
    assert "Nothing waits for you." in client.get("/accounts/").content.decode()
    services.decide_order(actor=market.finance, order=order, approve=True)
    client.force_login(market.finance)
    assert order.number not in client.get("/accounts/").content.decode()

    _provider, member = make_provider(name="Jasmin Hosting", reviewer=market.reviewer,
                                      expires_in_days=10)
    client.force_login(member)
    assert "Renew your" in client.get("/accounts/").content.decode()


def test_an_expired_label_is_mailed_to_the_provider_and_to_its_customers(market, commits):
    import datetime as dt

    from django.utils import timezone

    from sahab.cloud.models import Attestation, Label

    commits(services.place_order, actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    commits(market.work, 3)
    OutboundMessage.objects.all().delete()
    g_cloud = Attestation.objects.get(provider=market.provider, label=Label.G_CLOUD)
    Attestation.objects.filter(pk=g_cloud.pk).update(
        expires_on=timezone.localdate() - dt.timedelta(days=1))
    assert commits(services.expire_attestations) == 1
    assert any("label expired" in s for s in _to(market.provider_user))
    assert any("Carthage Cloud is suspended" in s for s in _to(market.it))
    assert _to(market.finance) == []  # no live service of theirs
