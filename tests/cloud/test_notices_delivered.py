"""Every notice of the cloud marketplace reaches its person where they read their mail:
agents in their own mailbox on sahab (delivered into its Maildir by sahab's own mail
system, never handed to another server), companies at their own address through the
smart host, over SMTP. Labels about to expire are told twice before the day, once each."""

import datetime as dt
import json

import httpx
from django.utils import timezone

from sahab.cloud import services
from sahab.cloud.models import Attestation, InstanceState, Label
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from tests import notices
from tests.cloud.test_faults import FaultyBroker, _provision


def _subjects(user) -> list[str]:
    return [str(m["Subject"]) for m in notices.inbox(user)]


def test_an_order_its_approval_and_its_database_reach_each_agents_mailbox(market, commits):
    notices.give_mailboxes(market.it, market.finance)
    order = commits(services.place_order, actor=market.it, plan=market.plan("pg-medium"),
                    purpose="Paie")
    [waiting] = notices.inbox(market.finance)
    assert order.number in waiting["Subject"]
    assert f"/cloud/orders/{order.number}/" in waiting.get_content()
    assert waiting["Auto-Submitted"] == "auto-generated"
    assert _subjects(market.it) == []
    commits(services.decide_order, actor=market.finance, order=order, approve=True)
    commits(market.work, 3)
    assert sorted(_subjects(market.it)) == [f"Order {order.number} approved",
                                            f"Order {order.number} is ready"]
    assert notices.sent() == []  # all of it stayed on sahab: nothing for another server


def test_a_refusal_and_a_failed_database_reach_the_officers_mailbox(market, commits):
    notices.give_mailboxes(market.it, market.finance)
    refused = commits(services.place_order, actor=market.it, plan=market.plan("pg-medium"),
                      purpose="Paie")
    commits(services.decide_order, actor=market.finance, order=refused, approve=False,
            note="Budget épuisé pour ce trimestre")
    market.transport = FaultyBroker(market.transport, lambda request, forward: httpx.Response(
        400, json={"description": "bad plan"}) if _provision(request) else None)
    failed = commits(services.place_order, actor=market.it, plan=market.plan("pg-small"),
                     purpose="Web")
    commits(market.work)
    failed.instance.refresh_from_db()
    assert failed.instance.state == InstanceState.FAILED
    by_subject = {str(m["Subject"]): m.get_content() for m in notices.inbox(market.it)}
    assert "Budget épuisé" in by_subject[f"Order {refused.number} refused"]
    assert "bad plan" in by_subject[f"Order {failed.number} could not be provisioned"]


def _about_labels(user) -> list[str]:
    """The subjects of the mail in ``user``'s mailbox that are not about their orders."""
    return [s for s in _subjects(user) if not s.startswith("Order ")]


def _g_cloud(market) -> Attestation:
    return Attestation.objects.get(provider=market.provider, label=Label.G_CLOUD)


def _expiring_in(market, days: int) -> Attestation:
    label = _g_cloud(market)
    Attestation.objects.filter(pk=label.pk).update(
        expires_on=timezone.localdate() + dt.timedelta(days=days))
    return label


def test_a_label_about_to_expire_is_told_to_the_provider_and_its_customers_twice(
        market, commits, settings):
    notices.give_mailboxes(market.it, market.finance)
    commits(services.place_order, actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    commits(market.work, 3)
    label = _expiring_in(market, 40)
    today = timezone.localdate()
    assert commits(services.warn_expiring_attestations, today) == 0  # not yet
    with notices.SmartHost(settings) as smart_host:
        # a month before: the provider, at its company's address, and the customer
        assert commits(services.warn_expiring_attestations, today + dt.timedelta(days=10)) == 1
        assert commits(services.warn_expiring_attestations, today + dt.timedelta(days=11)) == 0
        smart_host.relay()
        assert smart_host.subjects_to(market.provider_user) == [
            "Your ANCS G-cloud label expires in 30 days"]
        expires = (today + dt.timedelta(days=40)).isoformat()
        assert _about_labels(market.it) == [
            f"Carthage Cloud's ANCS G-cloud label expires on {expires}"]
        assert _subjects(market.finance) == []  # no live service of hers
        # the last week: once more, then nothing until the day
        assert commits(services.warn_expiring_attestations, today + dt.timedelta(days=35)) == 1
        assert commits(services.warn_expiring_attestations, today + dt.timedelta(days=39)) == 0
        smart_host.relay()
        assert smart_host.subjects_to(market.provider_user)[1:] == [
            "Your ANCS G-cloud label expires in 5 days"]
    assert len(_about_labels(market.it)) == 2
    ledger.integrate_pending()
    warned = [json.loads(bytes(e.body))["data"] for e in Entry.objects.filter(
        type="cloud.attestation.expiry_warned").order_by("index")]
    assert [(d["days_left"], d["customers_told"]) for d in warned] == [(30, 1), (5, 1)]
    assert all(d["attestation"] == label.pk for d in warned)


def test_a_label_whose_loss_suspends_nothing_is_told_to_the_provider_only(market, commits,
                                                                          settings):
    notices.give_mailboxes(market.it)
    commits(services.place_order, actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    commits(market.work, 3)
    iso = Attestation.objects.get(provider=market.provider, label=Label.ISO_27001)
    Attestation.objects.filter(pk=iso.pk).update(
        expires_on=timezone.localdate() + dt.timedelta(days=20))
    with notices.SmartHost(settings) as smart_host:
        assert commits(services.warn_expiring_attestations) == 1
        smart_host.relay()
    assert smart_host.subjects_to(market.provider_user) == [
        "Your ISO/IEC 27001 label expires in 20 days"]
    assert _about_labels(market.it) == []


def test_an_expired_label_reaches_the_customers_mailbox_and_the_providers_address(
        market, commits, settings):
    notices.give_mailboxes(market.it)
    commits(services.place_order, actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    commits(market.work, 3)
    _expiring_in(market, -1)
    with notices.SmartHost(settings) as smart_host:
        assert commits(services.expire_attestations) == 1
        smart_host.relay()
    assert smart_host.subjects_to(market.provider_user) == ["Your ANCS G-cloud label expired"]
    assert _about_labels(market.it) == ["Carthage Cloud is suspended"]


def test_a_label_renewed_already_is_not_warned_of(market, commits):
    """A provider whose renewed label was accepted is not asked to renew it."""
    label = _expiring_in(market, 20)
    today = timezone.localdate()
    services.review_attestation(actor=market.reviewer, accept=True, attestation=(
        services.submit_attestation(
            actor=market.provider_user, label=Label.G_CLOUD, issuer="ANCS",
            scope="Hébergement en nuage", reference="G-2027", valid_from=today,
            expires_on=today + dt.timedelta(days=400), document=b"%PDF-1.4 renewed",
            document_name="label.pdf")))
    assert commits(services.warn_expiring_attestations) == 0
    label.refresh_from_db()
    assert label.expiry_warned_days is None


def test_the_ledger_counts_the_customers_actually_written_to(market, commits, settings):
    """A customer who turned label notices off is not counted as told."""
    from sahab.mail.models import NoticeKind
    from sahab.mail.services import choose_notices

    notices.give_mailboxes(market.it)
    commits(services.place_order, actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    commits(market.work, 3)
    choose_notices(actor=market.it, user=market.it,
                   wanted=set(NoticeKind.values) - {NoticeKind.LABELS})
    _expiring_in(market, 20)
    with notices.SmartHost(settings):
        assert commits(services.warn_expiring_attestations) == 1
    ledger.integrate_pending()
    [entry] = Entry.objects.filter(type="cloud.attestation.expiry_warned")
    assert json.loads(bytes(entry.body))["data"]["customers_told"] == 0
    assert _about_labels(market.it) == []
