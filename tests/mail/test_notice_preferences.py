"""Each person chooses which of the platform's notices they are mailed, for themself only,
on the account page; the choice is on the ledger."""

import pytest
from django.test import Client

from sahab.core.errors import InvalidInput, PermissionDenied
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.mail import notices, services
from sahab.mail.models import NoticeKind, NoticePreference
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_choice_turns_the_other_kinds_off_and_is_recorded(sahab_home):
    user = factories.agent().user
    services.choose_notices(actor=user, user=user, wanted=[NoticeKind.APPROVALS])
    assert services.muted_notices(user) == set(NoticeKind.values) - {"approvals"}
    assert notices.wanting([user], NoticeKind.APPROVALS) == [user]
    assert notices.wanting([user], NoticeKind.COMPLAINTS) == []
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    entry = Entry.objects.filter(type="mail.notices.chosen").latest("index")
    assert entry.subject == f"user:{user.pk}"


def test_nobody_silences_the_notices_of_someone_else(sahab_home):
    """An administrator (or anyone) who could mute an approver's notices could let an
    order or a complaint go unseen: the choice is the person's own."""
    user = factories.agent().user
    admin = factories.agent(roles=["platform_admin"]).user
    before = Entry.objects.count()
    with pytest.raises(PermissionDenied):
        services.choose_notices(actor=admin, user=user, wanted=[])
    with pytest.raises(InvalidInput, match="unknown-kind"):
        services.choose_notices(actor=user, user=user, wanted=["unknown-kind"])
    assert not NoticePreference.objects.exists() and Entry.objects.count() == before


def test_the_account_page_shows_and_saves_the_choice(sahab_home):
    user = factories.agent().user
    web = Client()
    web.force_login(user)
    page = web.get("/accounts/").content.decode()
    assert page.count('name="wanted"') == len(NoticeKind.values)
    assert page.count("checked") >= len(NoticeKind.values)  # every notice, by default
    response = web.post("/mail/notices/", {"wanted": ["services", "labels"]})
    assert response.status_code == 302
    assert services.muted_notices(user) == {"approvals", "complaints", "tenders"}
    web.post("/mail/notices/", {"wanted": ["nonsense"]})
    assert services.muted_notices(user) == {"approvals", "complaints", "tenders"}
