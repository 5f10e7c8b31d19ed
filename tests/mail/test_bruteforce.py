"""Guessing mail passwords: SMTP AUTH slows down, closes the connection, and locks the
client address and the login out for a while — across every SMTP process, since the
counts are in the database."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from django.utils import timezone

from sahab.mail import authguard
from sahab.mail.models import AuthFailure
from tests.mail.conftest import client_tls, free_port, smtp_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_delays(settings):
    settings.MAIL_AUTH_DELAY_SECONDS = 0.02  # the schedule, not the seconds, is tested


def guess(port: int, login: str, passwords: list[str], source: str = "127.0.0.1") -> list:
    """Try the passwords on one connection; the replies until the server hangs up."""
    replies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(source, 0)) as client:
        client.starttls(context=client_tls())
        client.ehlo()
        for password in passwords:
            client.user, client.password = login, password
            try:
                client.auth("PLAIN", client.auth_plain)  # one mechanism: one try a password
                replies.append(235)
                break
            except smtplib.SMTPAuthenticationError as refused:
                replies.append(refused.smtp_code)
            except smtplib.SMTPServerDisconnected:
                replies.append("closed")
                break
            if replies[-1] == 421:
                break
    return replies


def test_thirty_wrong_passwords_on_one_connection_are_cut_short(committed_world, smtp_server):
    """The finding: SMTP AUTH took 30 wrong passwords in 1.5 s without slowing down or
    disconnecting."""
    w = committed_world
    replies = guess(smtp_server.submission_port, w.alice_box.address,
                    [f"guess-{n:02d}" for n in range(30)])
    assert replies == [535, 535, 421]  # the third failure closes the connection
    assert [authguard.delay(n) for n in (1, 2, 3)] == [0.02, 0.04, 0.08]  # growing waits
    assert AuthFailure.objects.get(key=f"login:{w.alice_box.address}").count == 3


def test_an_address_that_keeps_guessing_is_locked_out_even_with_the_right_password(
        committed_world, smtp_server, settings):
    w = committed_world
    login, password = w.alice_box.address, w.passwords[w.alice_box.address]
    tries = 0
    while tries < settings.MAIL_AUTH_FAILURES_PER_CLIENT:  # new connections, same address
        tries += len(guess(smtp_server.submission_port, w.bob_box.address,
                           [f"guess-{tries}-{n}" for n in range(3)], source="127.0.0.2"))
    # the address is locked out: even alice's right password is refused from it
    assert guess(smtp_server.submission_port, login, [password], source="127.0.0.2") == [421]
    # other addresses are not; and bob's login itself is locked out everywhere
    assert guess(smtp_server.submission_port, login, [password], source="127.0.0.3") == [235]
    bob = w.passwords[w.bob_box.address]
    assert guess(smtp_server.submission_port, w.bob_box.address, [bob],
                 source="127.0.0.4") == [421]


@pytest.mark.slow
def test_the_counts_are_shared_by_every_smtp_process(committed_world, smtp_server, sahab_home,
                                                     settings):
    w = committed_world
    login, password = w.bob_box.address, w.passwords[w.bob_box.address]
    tries = 0
    while tries < settings.MAIL_AUTH_FAILURES_PER_LOGIN:  # spread over several addresses
        tries += len(guess(smtp_server.submission_port, login,
                           [f"guess-{tries}-{n}" for n in range(3)],
                           source=f"127.0.1.{tries + 1}"))
    ports = free_port(), free_port()
    other = smtp_subprocess(sahab_home, *ports)  # another process, same database
    try:
        assert guess(ports[1], login, [password], source="127.0.2.1") == [421]
    finally:
        other.terminate()
        other.wait(30)
    # the owner gets in again once the window has passed
    AuthFailure.objects.update(first_at=timezone.now() - dt.timedelta(
        seconds=settings.MAIL_AUTH_WINDOW_SECONDS + 1))
    assert guess(smtp_server.submission_port, login, [password], source="127.0.2.1") == [235]
