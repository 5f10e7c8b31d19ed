"""Web sessions (ASVS V3 and 4.2.2): cookies, a new key at sign-in, sign-out, idle and
absolute timeouts, other sessions ended by a password change, CSRF and Origin checks."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse

from sahab.directory import services
from sahab.directory.models import ApiToken, Role
from sahab.directory.selectors import SYSTEM
from tests import factories
from tests.core.test_configuration import product_settings
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

HOME = "/accounts/"


def sign_in(client, user, **extra):
    response = client.post(reverse("directory:login"),
                           {"username": user.username, "password": PASSWORD}, **extra)
    assert response.status_code == 302, response.content
    return response


def signed_in(client) -> bool:
    return client.get(HOME).status_code == 200


def test_over_https_the_cookies_are_secure_http_only_same_site_and_host_bound(
        client, settings, tmp_path):
    """3.4.1 to 3.4.5: an https platform sets its session and CSRF cookies Secure, bound to
    the host (``__Host-``: no Domain, path /), SameSite=Lax; the session one HttpOnly."""
    product = product_settings(tmp_path, SAHAB_PUBLIC_URL="https://sahab.example/")
    assert product["SESSION_COOKIE_SECURE"] and product["CSRF_COOKIE_SECURE"]
    assert product["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert product["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_NAME",
                 "CSRF_COOKIE_NAME"):
        setattr(settings, name, product[name])
    agent = factories.agent()
    client.get(reverse("directory:login"), secure=True)
    sign_in(client, agent.user, secure=True)
    session = client.cookies["__Host-sessionid"]
    csrf = client.cookies["__Host-csrftoken"]
    for cookie in (session, csrf):
        assert cookie["secure"] is True and cookie["samesite"] == "Lax"
        assert cookie["path"] == "/" and cookie["domain"] == ""
    assert session["httponly"] is True
    assert client.get(HOME, secure=True).status_code == 200
    # over plain http the names carry no prefix that browsers would refuse
    plain = product_settings(tmp_path, SAHAB_PUBLIC_URL="http://127.0.0.1:8000/")
    assert not plain["SESSION_COOKIE_SECURE"] and plain["SESSION_COOKIE_NAME"] == "sessionid"


def test_signing_in_gives_a_new_session_key(client):
    """3.2.1: the key a visitor had before signing in (e.g. planted by an attacker) is
    dead afterwards."""
    agent = factories.agent()
    before = client.session
    before["probe"] = 1
    before.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key
    sign_in(client, agent.user)
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before.session_key
    assert not SessionStore().exists(before.session_key)
    planted = Client()
    planted.cookies[settings.SESSION_COOKIE_NAME] = before.session_key
    assert not signed_in(planted)


def test_signing_out_ends_the_session_on_the_server(client):
    """3.3.1: a copy of the cookie is worth nothing once its owner signed out."""
    agent = factories.agent()
    sign_in(client, agent.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    copy = Client()
    copy.cookies[settings.SESSION_COOKIE_NAME] = key
    assert signed_in(copy)
    client.post(reverse("directory:logout"))
    assert not SessionStore().exists(key)
    assert not signed_in(copy) and not signed_in(client)


def test_an_idle_session_ends_after_thirty_minutes(client):
    """3.3.2: each request restarts the idle delay; thirty minutes without one end it."""
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_REFRESH_SECONDS == 60
    agent = factories.agent()
    with time_machine.travel(dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False) as t:
        sign_in(client, agent.user)
        for _ in range(3):  # active for an hour and a half
            t.shift(dt.timedelta(minutes=29))
            assert signed_in(client)
        t.shift(dt.timedelta(minutes=31))
        response = client.get(HOME)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("directory:login"))
        t.shift(dt.timedelta(seconds=1))
        assert not signed_in(client)


def _session_writes(client, url: str = HOME) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return sum(1 for q in queries if "django_session" in q["sql"]
               and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT")))


def test_reading_pages_writes_the_session_at_most_once_a_minute(client):
    """Reading costs no write: a signed-in person's pages write the session again only
    when its last write is a minute old (the idle delay is exact to within a minute)."""
    agent = factories.agent()
    with time_machine.travel(dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False) as t:
        sign_in(client, agent.user)  # a write: it counts as the first refresh
        assert [_session_writes(client) for _ in range(3)] == [0] * 3
        t.shift(dt.timedelta(seconds=59))
        assert _session_writes(client) == 0
        t.shift(dt.timedelta(seconds=1))
        assert _session_writes(client) == 1
        assert _session_writes(client) == 0


def test_a_page_is_answered_when_only_the_sessions_refresh_cannot_be_written(
        client, monkeypatch):
    """A refresh that meets a busy database (SQLite's lock held past its timeout by a long
    write elsewhere) loses only the refresh: the page is answered, not a 400."""
    from django.db import OperationalError

    agent = factories.agent()
    with time_machine.travel(dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False) as t:
        sign_in(client, agent.user)
        assert signed_in(client)
        t.shift(dt.timedelta(minutes=5))

        def locked(self, *args, **kwargs):
            raise OperationalError("database is locked")

        monkeypatch.setattr(SessionStore, "save", locked)
        response = client.get(HOME)
        assert response.status_code == 200 and agent.user.username.encode() in \
            response.content
        monkeypatch.undo()
        assert signed_in(client)  # the session is still there, refreshed by the next page


def test_a_change_to_the_session_that_cannot_be_written_is_not_passed_over(client,
                                                                          monkeypatch):
    """Only a refresh may be lost: a request that changed the session (here the second
    factor's new secret, shown once and kept in the session) and could not save it does
    not pretend it did."""
    from django.contrib.sessions.backends.base import UpdateError

    agent = factories.agent()
    sign_in(client, agent.user)
    assert signed_in(client)

    def gone(self, *args, **kwargs):
        raise UpdateError

    monkeypatch.setattr(SessionStore, "save", gone)
    client.raise_request_exception = False
    assert client.get(reverse("directory:totp")).status_code == 400


def test_a_session_in_use_ends_twelve_hours_after_signing_in(client):
    """3.3.2: a session never idle still ends twelve hours after its sign-in, and the
    agent signs in again to go on."""
    assert settings.SESSION_MAX_AGE_SECONDS == 12 * 3600
    agent = factories.agent()
    with time_machine.travel(dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC), tick=False) as t:
        sign_in(client, agent.user)
        for _ in range(12 * 3 - 1):  # a request every twenty minutes
            t.shift(dt.timedelta(minutes=20))
            assert signed_in(client)
        t.shift(dt.timedelta(minutes=20))  # twelve hours since signing in
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert not signed_in(client)
        assert not SessionStore().exists(key)
        sign_in(client, agent.user)
        assert signed_in(client)


def test_changing_the_password_ends_the_other_sessions(client):
    """3.3.3: after a password change only the session that changed it stays signed in."""
    agent = factories.agent()
    other = Client()
    sign_in(client, agent.user)
    sign_in(other, agent.user)
    response = client.post(reverse("directory:password"),
                           {"old_password": PASSWORD, "new_password": "a-new-Passphrase-42"})
    assert response.status_code == 302
    assert signed_in(client)
    assert not signed_in(other)


def test_a_password_change_needs_the_current_password(client):
    """3.7.1: a session left open does not let somebody else change the password."""
    agent = factories.agent()
    sign_in(client, agent.user)
    response = client.post(reverse("directory:password"),
                           {"old_password": "not-the-password", "new_password": "x-Y-z-98765"})
    assert response.status_code == 400
    agent.user.refresh_from_db()
    assert agent.user.check_password(PASSWORD)


def test_web_forms_refuse_a_post_without_the_csrf_token():
    """4.2.2: a form posted from another site (no token) changes nothing."""
    agent = factories.agent(roles=[Role.ADMINISTRATION_ADMIN])
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("directory:login"), {
        "username": agent.user.username, "password": PASSWORD}).status_code == 403
    client.force_login(agent.user)
    response = client.post(reverse("directory:password"),
                           {"old_password": PASSWORD, "new_password": "a-new-Passphrase-42"})
    assert response.status_code == 403
    assert client.post(reverse("directory:token_create"), {"name": "x"}).status_code == 403
    agent.user.refresh_from_db()
    assert agent.user.check_password(PASSWORD)
    assert not ApiToken.objects.filter(user=agent.user).exists()


def test_a_foreign_origin_is_refused_and_an_origin_grants_nothing():
    """14.5.2: the Origin header never lets a request in; a foreign one makes a form post
    fail even with a valid token."""
    agent = factories.agent()
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("directory:login"))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    form = {"username": agent.user.username, "password": PASSWORD,
            "csrfmiddlewaretoken": token}
    refused = client.post(reverse("directory:login"), form,
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and not signed_in(client)
    accepted = client.post(reverse("directory:login"), form,
                           headers={"Origin": "http://testserver"})
    assert accepted.status_code == 302 and signed_in(client)
    anonymous = Client()
    for origin in ("http://testserver", "https://evil.example"):
        assert anonymous.get("/api/me", headers={"Origin": origin}).status_code == 401


def test_a_deactivated_agent_is_signed_out_everywhere(client):
    """3.3.4 (in part): an administrator ends every session of an agent by deactivating
    them; there is no list of one's own sessions yet (docs/security.md)."""
    agent = factories.agent()
    other = Client()
    sign_in(client, agent.user)
    sign_in(other, agent.user)
    services.set_agent_active(actor=SYSTEM, agent=agent, active=False)
    assert not signed_in(client) and not signed_in(other)


def test_a_change_that_meets_a_busy_database_gets_a_503_not_a_500(client, monkeypatch):
    """SQLite's write lock held past the busy timeout by another writer: the change was
    rolled back whole; the answer says so and when to try again, for people and for
    machines."""
    from django.db import OperationalError

    from sahab.directory import views

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    agent = factories.agent()
    sign_in(client, agent.user)
    monkeypatch.setattr(views, "render", locked)
    page = client.get(HOME)
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"nothing was saved" in page.content
    monkeypatch.undo()
    monkeypatch.setattr(services, "issue_api_token", locked)
    problem = client.post("/api/tokens", {"name": "x"},
                          content_type="application/json")
    assert problem.status_code == 503 and problem["Retry-After"] == "5"
    assert problem["Content-Type"] == "application/problem+json"
