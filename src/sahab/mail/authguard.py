"""Wrong mail passwords: slower and slower answers, then the door.

In the manner of Postfix's error limits and Dovecot's auth penalty, for SMTP AUTH and
IMAP alike:

- on one connection, each failure is answered after a growing delay
  (``SAHAB_MAIL_AUTH_DELAY_SECONDS`` times 1, 2, 4…) and the connection is closed after
  ``SAHAB_MAIL_AUTH_FAILURES_PER_CONNECTION`` failures;
- a client address with ``SAHAB_MAIL_AUTH_FAILURES_PER_CLIENT`` failures, or a login with
  ``SAHAB_MAIL_AUTH_FAILURES_PER_LOGIN`` failures, within ``SAHAB_MAIL_AUTH_WINDOW_SECONDS``,
  is refused — even with the right password — until the window has passed.

The counts live in the database (``AuthFailure``), so every SMTP process, every front end
and Dovecot (through its auth policy, ``dovecot_policy``) share them. A right password
clears its login's count, never the client's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sahab.mail.models import AuthFailure


def _keys(client: str, login: str) -> tuple[str, str]:
    return f"client:{client}"[:400], f"login:{login.strip().lower()}"[:400]


@dataclass(frozen=True)
class Standing:
    client_failures: int
    login_failures: int

    @property
    def locked(self) -> bool:
        return (self.client_failures >= settings.MAIL_AUTH_FAILURES_PER_CLIENT
                or self.login_failures >= settings.MAIL_AUTH_FAILURES_PER_LOGIN)


def _window_start() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.MAIL_AUTH_WINDOW_SECONDS)


def standing(client: str, login: str = "") -> Standing:
    """The failures of this client address and of this login in the current window."""
    client_key, login_key = _keys(client, login)
    counts = dict(AuthFailure.objects.filter(
        key__in=[client_key, login_key], first_at__gte=_window_start())
        .values_list("key", "count"))
    return Standing(counts.get(client_key, 0), counts.get(login_key, 0) if login else 0)


def _count(key: str) -> None:
    now = timezone.now()
    for _attempt in range(3):
        if AuthFailure.objects.filter(key=key, first_at__gte=_window_start()).update(
                count=F("count") + 1, last_at=now):
            return
        # no row, or one from an earlier window: start a new window
        AuthFailure.objects.filter(key=key, first_at__lt=_window_start()).delete()
        try:
            with transaction.atomic():
                AuthFailure.objects.create(key=key, count=1, first_at=now, last_at=now)
            return
        except IntegrityError:  # another process counted the first failure meanwhile
            continue


def failed(client: str, login: str) -> Standing:
    """Count one wrong password of ``login`` from ``client``."""
    for key in _keys(client, login) if login else _keys(client, "")[:1]:
        _count(key)
    return standing(client, login)


def succeeded(login: str) -> None:
    """The owner got in: their own count starts again (the client's does not)."""
    AuthFailure.objects.filter(key=_keys("", login)[1]).delete()


def delay(failures_on_connection: int) -> float:
    """Seconds to wait before answering the n-th failure of a connection."""
    return settings.MAIL_AUTH_DELAY_SECONDS * 2 ** max(0, failures_on_connection - 1)


def forget_expired() -> int:
    """Housekeeping: drop counts of past windows."""
    return AuthFailure.objects.filter(last_at__lt=_window_start()).delete()[0]
