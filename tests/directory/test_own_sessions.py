"""A person sees where they are signed in and ends any session, or all the others, with
their password typed again (ASVS 3.3.4); every change of what signs them in is mailed to
them (ASVS 2.5.5), and nobody can turn that mail off."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from sahab.core.errors import NotFound
from sahab.directory import services
from sahab.directory.models import SignIn
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.mail import services as mail
from tests import factories, notices

pytestmark = pytest.mark.django_db
PASSWORD = "un mot de passe solide"


def signed_in(user, browser: str) -> Client:
    web = Client(HTTP_USER_AGENT=browser)
    assert web.post("/accounts/login/", {"username": user.username,
                                          "password": PASSWORD}).status_code == 302
    return web


@pytest.fixture
def user(sahab_home):
    user = factories.agent().user
    user.set_password(PASSWORD)
    user.save()
    return user


def test_the_account_page_lists_each_session_and_ends_one_with_the_password(user):
    laptop, phone = signed_in(user, "Firefox portable"), signed_in(user, "Chromium mobile")
    page = laptop.get("/accounts/").content.decode()
    assert "Firefox portable" in page and "Chromium mobile" in page
    assert page.count('name="sign_in"') == 1  # this session is not offered to end
    assert SignIn.objects.filter(user=user).count() == 2
    # the session keys are bearer secrets: the page never shows them
    for key in Session.objects.values_list("session_key", flat=True):
        assert key not in page

    the_phone = SignIn.objects.get(browser="Chromium mobile")
    refused = laptop.post("/accounts/sessions/end/", {"sign_in": the_phone.pk,
                                                      "password": "pas le bon"})
    assert refused.status_code == 302
    assert phone.get("/accounts/").status_code == 200  # still signed in
    laptop.post("/accounts/sessions/end/", {"sign_in": the_phone.pk, "password": PASSWORD})
    assert phone.get("/accounts/").status_code == 302  # sent to the sign-in page
    assert laptop.get("/accounts/").status_code == 200
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    assert Entry.objects.filter(type="directory.user.sessions_ended").count() == 1


def test_every_other_session_ends_at_once_and_nobody_ends_another_users(user):
    laptop = signed_in(user, "Firefox")
    others = [signed_in(user, f"Navigateur {n}") for n in range(3)]
    intruder = factories.agent().user
    intruder.set_password(PASSWORD)
    intruder.save()
    with pytest.raises(NotFound):
        services.end_sessions(user=intruder, password=PASSWORD, current_key=None,
                              sign_in_id=SignIn.objects.filter(user=user).first().pk)
    assert SignIn.objects.filter(user=user).count() == 4
    laptop.post("/accounts/sessions/end/", {"password": PASSWORD})
    assert all(web.get("/accounts/").status_code == 302 for web in others)
    assert laptop.get("/accounts/").status_code == 200
    assert SignIn.objects.filter(user=user).count() == 1


def test_each_change_of_what_signs_a_person_in_is_mailed_to_them(user, commits):
    mail.choose_notices(actor=user, user=user, wanted=[])  # every kind turned off: still sent
    commits(services.change_password, user=user, old_password=PASSWORD,
            new_password="un autre mot de passe")
    assert notices.subjects_to(user) == ["sahab: Your password was changed"]
    [(_, message)] = notices.sent()
    assert "If you did not do this" in message.get_content()


def test_sessions_that_ended_on_their_own_are_not_listed_and_are_forgotten_by_the_worker(
        user, django_assert_max_num_queries):
    from django.utils import timezone

    from sahab.directory import sessions

    laptop = signed_in(user, "Firefox")
    for n in range(5):
        signed_in(user, f"Navigateur {n}")
    expired = SignIn.objects.filter(browser__startswith="Navigateur").values_list(
        "session_key", flat=True)[:3]
    Session.objects.filter(session_key__in=list(expired)).update(
        expire_date=timezone.now() - timezone.timedelta(seconds=1))
    with django_assert_max_num_queries(2):  # not one query per session
        listed = sessions.active_sessions(user)
    assert len(listed) == 3
    assert SignIn.objects.filter(user=user).count() == 6  # a page view deletes nothing
    assert sessions.forget_ended_sessions() == 3
    assert SignIn.objects.filter(user=user).count() == 3
    assert not Session.objects.filter(expire_date__lte=timezone.now()).exists()
    assert laptop.get("/accounts/").status_code == 200
