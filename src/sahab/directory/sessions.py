"""How long a web session lasts (docs/security.md, "Sessions").

Idle sessions end through Django's own store: a request of a signed-in user saves the
session again when its last save is older than ``SESSION_REFRESH_SECONDS``
(``sahab.core.dbrouting.SessionMiddleware``), and a session not saved for
``SESSION_COOKIE_AGE`` seconds has expired in the session store. A session in use ends
``SESSION_MAX_AGE_SECONDS`` after its sign-in, whatever happens: the time of the sign-in
is kept in the session, and this middleware signs the user out once it is past.
"""

from __future__ import annotations

import contextlib
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout, user_logged_in, user_logged_out
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils.module_loading import import_string

from sahab.core import dbrouting

SIGNED_IN_AT = "sahab_signed_in_at"


@receiver(user_logged_in, dispatch_uid="sahab.directory.sessions.signed_in")
def _remember_the_sign_in(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    request.session[SIGNED_IN_AT] = int(time.time())
    if request.session.session_key is None:
        request.session.save()  # the key the account page lists and may end
    from sahab.directory.models import SignIn

    SignIn.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={"user": user, "address": request.META.get("REMOTE_ADDR") or None,
                  "browser": request.META.get("HTTP_USER_AGENT", "")[:200]})


@receiver(user_logged_out, dispatch_uid="sahab.directory.sessions.signed_out")
def _forget_the_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and getattr(request, "session", None) is not None:
        from sahab.directory.models import SignIn

        SignIn.objects.filter(session_key=request.session.session_key).delete()


def _store():
    """The session store class of ``SESSION_ENGINE``."""
    return import_string(settings.SESSION_ENGINE + ".SessionStore")


def _alive(session_keys: list[str]) -> set[str]:
    """Which of ``session_keys`` still have a live session: one query with the database
    store (the default), one lookup per key with any other."""
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session
        from django.utils import timezone

        return set(Session.objects.filter(session_key__in=session_keys,
                                          expire_date__gt=timezone.now())
                   .values_list("session_key", flat=True))
    store = _store()
    return {key for key in session_keys if store().exists(key)}


def active_sessions(user) -> list:
    """``user``'s sessions still alive in the session store, the newest first. Rows of
    sessions that ended on their own are left to ``forget_ended_sessions``."""
    from sahab.directory.models import SignIn

    sign_ins = list(SignIn.objects.filter(user=user))
    alive = _alive([s.session_key for s in sign_ins])
    return [s for s in sign_ins if s.session_key in alive]


def end_session(session_key: str) -> None:
    """End one session in the session store, wherever it is used."""
    from sahab.directory.models import SignIn

    _store()(session_key).delete()
    SignIn.objects.filter(session_key=session_key).delete()


def end_all_sessions(user) -> int:
    """End every web session of ``user`` (those its sign-ins name), wherever they are used;
    returns how many there were."""
    from sahab.directory.models import SignIn

    keys = list(SignIn.objects.filter(user=user).values_list("session_key", flat=True))
    for key in keys:
        end_session(key)
    return len(keys)


def forget_ended_sessions() -> int:
    """Clear expired sessions from the store and the sign-ins of sessions that ended;
    returns how many sign-ins were forgotten (run by the worker every hour)."""
    from sahab.directory.models import SignIn

    with contextlib.suppress(NotImplementedError):  # cookie-based stores expire alone
        _store().clear_expired()
    ended = 0
    keys = list(SignIn.objects.values_list("session_key", flat=True))
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        gone = set(batch) - _alive(batch)
        ended += SignIn.objects.filter(session_key__in=gone).delete()[0]
    return ended


def expired(session) -> bool:
    """Whether a signed-in ``session`` is past its absolute lifetime (or never had one)."""
    signed_in_at = session.get(SIGNED_IN_AT)
    return (not isinstance(signed_in_at, int)
            or time.time() - signed_in_at >= settings.SESSION_MAX_AGE_SECONDS)


class SessionLifetimeMiddleware:
    """Sign out a session that has lasted longer than ``SESSION_MAX_AGE_SECONDS``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        try:
            over = session is not None and SESSION_KEY in session and expired(session)
        except DatabaseError as exc:  # the session store is the main database
            unavailable = dbrouting.answer_unreachable(request, exc)
            if unavailable is None:
                raise
            return unavailable
        if over:
            logout(request)
        return self.get_response(request)
