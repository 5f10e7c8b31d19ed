"""Every refusal the SMTP server advertises, through a real client: 451 when the server
itself fails (never 250), 452 for a full mailbox with the sender rate limit on, and 450
once a sender has used up its minute. The rest of the suite turns the rate limit off; these
tests turn it back on."""

from __future__ import annotations

import shutil
import smtplib

import pytest

from sahab.directory.selectors import SYSTEM
from sahab.mail import maildir, services
from tests.mail.conftest import RATE_LIMIT, client_tls, wait_for
from tests.mail.test_smtp import letter, stored


def logged_in(server, login: str, password: str) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.submission_port, timeout=10)
    client.starttls(context=client_tls())
    client.login(login, password)
    return client


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_fails_inside_the_server_is_answered_451_never_250(
        committed_world, smtp_server):
    """The finding: a failure to write the copy answered 250, so the client forgot a
    message nobody had stored. The client must hear 451 4.3.0 and retry."""
    w = committed_world
    box = w.bob_box.maildir
    maildir.ensure_maildir(box.parent)
    # The disk refuses the write: tmp/ is not a directory any more.
    shutil.rmtree(box / "tmp")
    (box / "tmp").write_bytes(b"")
    data = letter(w.alice_box.address, w.bob_box.address, subject="Perdu ?")
    with logged_in(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address]) as c:
        c.mail(w.alice_box.address)
        assert c.rcpt(w.bob_box.address)[0] == 250
        code, reply = c.data(data)
        assert (code, reply.split(b" ", 1)[0]) == (451, b"4.3.0"), reply
    assert stored(w.bob_box) == []
    # Once the disk is repaired, the client's retry is delivered, once.
    (box / "tmp").unlink()
    (box / "tmp").mkdir(mode=0o700)
    with logged_in(smtp_server, w.alice_box.address, w.passwords[w.alice_box.address]) as c:
        assert c.sendmail(w.alice_box.address, [w.bob_box.address], data) == {}
    assert len(stored(w.bob_box)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_full_mailbox_is_refused_452_with_the_rate_limit_on(committed_world,
                                                              rate_limited_smtp_server):
    """452 4.2.2 at RCPT when the client announced the size, at DATA otherwise; the rate
    limit is on and does not hide the refusal (nor does the refusal bypass the limit)."""
    server = rate_limited_smtp_server
    w = committed_world
    services.set_quota(actor=SYSTEM, mailbox=w.bob_box, quota_bytes=1024 * 1024)
    wait_for(lambda: server.live.table.mailboxes[w.bob_box.address].quota == 1024 * 1024)
    big = letter(w.alice_box.address, w.bob_box.address, body="x" * 1_100_000)
    login = w.alice_box.address
    with logged_in(server, login, w.passwords[login]) as client:
        client.ehlo()
        assert client.mail(login, [f"SIZE={len(big)}"])[0] == 250
        code, reply = client.rcpt(w.bob_box.address)
        assert code == 452 and reply.startswith(b"4.2.2 ") and b"mailbox full" in reply
        client.rset()
        assert client.mail(login)[0] == 250
        assert client.rcpt(w.bob_box.address)[0] == 250
        code, reply = client.data(big)
        assert code == 452 and reply.startswith(b"4.2.2 ") and b"mailbox full" in reply
        client.rset()
        assert client.sendmail(login, [w.bob_box.address],
                               letter(login, w.bob_box.address, body="court")) == {}
        # three messages begun this minute: the limit is really on in this test
        assert RATE_LIMIT == 3 and client.mail(login)[0] == 450
    assert len(stored(w.bob_box)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_sender_over_its_rate_is_refused_450_and_others_are_not(committed_world,
                                                                  rate_limited_smtp_server):
    server = rate_limited_smtp_server
    w = committed_world
    alice, bob = w.alice_box.address, w.bob_box.address
    with logged_in(server, alice, w.passwords[alice]) as client:
        for n in range(RATE_LIMIT):
            assert client.sendmail(alice, [bob], letter(alice, bob, subject=f"n°{n}")) == {}
        code, reply = client.mail(alice)
        assert code == 450 and reply.startswith(b"4.7.1 "), reply
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(alice, [bob], letter(alice, bob, subject="de trop"))
        assert refused.value.smtp_code == 450
    # a new connection does not reset the count: the limit is the sender's, not the session's
    with logged_in(server, alice, w.passwords[alice]) as client:
        assert client.mail(alice)[0] == 450
    assert len(stored(w.bob_box)) == RATE_LIMIT
    # another sender has its own minute
    with logged_in(server, bob, w.passwords[bob]) as client:
        assert client.sendmail(bob, [alice], letter(bob, alice)) == {}
    assert len(stored(w.alice_box)) == 1


def test_the_rate_window_is_a_sliding_minute():
    """At most ``limit`` messages in any 60 seconds: the oldest counts until a full minute
    has passed, not a second less nor more."""
    from sahab.mail.smtp import RateLimiter

    limiter = RateLimiter(3)
    assert [limiter.allow("a@x.test", now=t) for t in (0.0, 10.0, 20.0, 30.0)] == \
        [True, True, True, False]
    assert limiter.allow("b@x.test", now=30.0)  # each sender its own
    assert not limiter.allow("a@x.test", now=60.0)  # the message of 0.0 is a minute old
    assert limiter.allow("a@x.test", now=60.5)  # and now it has left the window
    assert not limiter.allow("a@x.test", now=60.5)
