"""Mail domains are vetted: only platform administrators assign them, only from the
state's list, and DKIM keys are made then — never for a name typed by a ministry."""

from __future__ import annotations

import pytest

from sahab.core.errors import InvalidInput, PermissionDenied
from sahab.directory import services as directory
from sahab.directory.models import Administration, AdministrationKind, Role
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.mail import services
from sahab.mail.models import Mailbox, MailDomain
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def ministry(sahab_home):
    mf = factories.administration(code="MF", mail_domain="finances.gov.tn")
    admin = factories.agent(administration=mf, roles=[Role.ADMINISTRATION_ADMIN])
    return mf, admin.user


def test_a_ministry_admin_cannot_give_a_unit_the_presidencys_domain(ministry):
    """The finding: an administration admin set mail_domain=presidence.tn on a unit, got
    DKIM keys for it and sent mail other ministries saw as dkim=pass header.d=presidence.tn."""
    mf, mf_admin = ministry
    entries = Entry.objects.count()
    with pytest.raises(PermissionDenied):
        directory.create_administration(
            actor=mf_admin, code="MF-CAB", kind=AdministrationKind.UNIT, parent=mf,
            name_fr="Cabinet", name_ar="الديوان", mail_domain="presidence.tn")
    assert not Administration.objects.filter(code="MF-CAB").exists()

    unit = directory.create_administration(
        actor=mf_admin, code="MF-CAB", kind=AdministrationKind.UNIT, parent=mf,
        name_fr="Cabinet", name_ar="الديوان")
    with pytest.raises(PermissionDenied):
        directory.update_administration(actor=mf_admin, administration=unit,
                                        mail_domain="presidence.tn")
    unit.refresh_from_db()
    assert unit.mail_domain is None
    assert not MailDomain.objects.filter(name="presidence.tn").exists()
    # no keys, hence no mailbox and no signature for that name: an agent of the unit
    # gets a mailbox of the ministry's own domain
    clerk = factories.agent(administration=unit)
    assert services.provision_agent_mailbox(clerk).address.endswith("@finances.gov.tn")
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    assert Entry.objects.count() > entries  # the unit and the agent, nothing else


def test_a_platform_admin_assigns_only_domains_of_the_state(ministry):
    mf, _ = ministry
    platform = factories.platform_admin().user
    with pytest.raises(InvalidInput) as refused:
        directory.create_administration(
            actor=platform, code="PRES", kind=AdministrationKind.PRESIDENCY, name_fr="Présidence",
            name_ar="رئاسة", mail_domain="presidence.tn")
    assert "mail_domain" in refused.value.field_errors
    assert not MailDomain.objects.filter(name="presidence.tn").exists()

    unit = directory.create_administration(
        actor=platform, code="MF-CAB", kind=AdministrationKind.UNIT, parent=mf,
        name_fr="Cabinet", name_ar="الديوان", mail_domain="cabinet.finances.gov.tn")
    domain = MailDomain.objects.get(name="cabinet.finances.gov.tn")
    assert domain.administration == unit and domain.dkim_ed25519_public
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    created = Entry.objects.filter(type="mail.domain.created",
                                   subject="mail:domain:cabinet.finances.gov.tn").get()
    assert created.actor == f"user:{platform.pk}"


def test_a_domain_written_into_the_database_directly_gets_no_keys(ministry):
    mf, _ = ministry
    unit = directory.create_administration(
        actor=factories.platform_admin().user, code="MF-CAB", kind=AdministrationKind.UNIT,
        parent=mf, name_fr="Cabinet", name_ar="الديوان")
    Administration.objects.filter(pk=unit.pk).update(mail_domain="presidence.gov.tn")
    agent = factories.agent(administration=unit)
    assert services.provision_agent_mailbox(agent) is None
    assert not MailDomain.objects.filter(name="presidence.gov.tn").exists()
    assert not Mailbox.objects.filter(address__endswith="@presidence.gov.tn").exists()
