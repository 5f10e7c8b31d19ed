"""How long a web session lasts (docs/security.md, "Sessions").

Idle sessions end through Django's own settings: each request of a signed-in user saves
the session again (``SESSION_SAVE_EVERY_REQUEST``), and a session not saved for
``SESSION_COOKIE_AGE`` seconds has expired in the session store. A session in use ends
``SESSION_MAX_AGE_SECONDS`` after its sign-in, whatever happens: the time of the sign-in
is kept in the session, and this middleware signs the user out once it is past.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout, user_logged_in
from django.dispatch import receiver

SIGNED_IN_AT = "sahab_signed_in_at"


@receiver(user_logged_in, dispatch_uid="sahab.directory.sessions.signed_in")
def _remember_the_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = int(time.time())


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
        if session is not None and SESSION_KEY in session and expired(session):
            logout(request)
        return self.get_response(request)
