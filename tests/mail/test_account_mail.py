"""Password reset by mail, for every account: the link arrives in the agent's own
mailbox through sahab's mail, works once, within its hour, and leaves the second factor
in place; nobody learns from the page whether an account exists."""

import email
import email.policy
import re

import pytest
from django.test import Client
from django.utils.http import urlsafe_base64_encode

from sahab.directory import services
from sahab.directory.events import DirectoryEvent
from sahab.directory.models import PasswordResetMail
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.mail.models import Mailbox

NEW = "Jasmin-Carthage-2027!"


def _inbox(box: Mailbox) -> list[email.message.EmailMessage]:
    paths = sorted((box.home / "Maildir" / "new").glob("*"),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in paths]


def _link(message) -> str:
    return re.search(r"/accounts/password/reset/\S+/", message.get_content()).group(0)


def _ask(client: Client, identifier: str):
    return client.post("/accounts/password/reset/", {"identifier": identifier})


@pytest.fixture
def reset_world(world, settings):
    settings.PUBLIC_URL = "http://testserver/"
    return world


def test_an_agent_sets_a_new_password_from_the_link_in_their_mailbox(reset_world, client):
    alice = reset_world.alice
    answer = _ask(client, alice.user.username)
    assert answer.status_code == 200 and "If an account matches" in answer.content.decode()
    [message] = _inbox(reset_world.alice_box)
    assert message["From"].startswith("comptes@") and message["Auto-Submitted"]

    opened = client.get(_link(message))  # the token leaves the address at once
    assert opened.status_code == 302 and opened.url.endswith("/set/")
    form = client.get(opened.url)
    assert form.status_code == 200 and "new_password" in form.content.decode()
    done = client.post(opened.url, {"new_password": NEW, "again": NEW})
    assert done.status_code == 302 and done.url.endswith("/accounts/login/")

    assert Client().post("/accounts/login/", {"username": alice.user.username,
                                              "password": NEW}).status_code == 302
    ledger.integrate_pending()  # the worker's tick: the entry was written pending
    entry = Entry.objects.filter(type=DirectoryEvent.USER_PASSWORD_RESET_BY_MAIL).get()
    assert entry.subject == f"user:{alice.user.pk}"
    assert NEW not in entry.body.decode(errors="replace")

    # the link works once
    again = Client()
    reused = again.get(_link(message), follow=True)
    assert reused.status_code == 400 and "not valid any more" in reused.content.decode()


def test_an_unknown_account_gets_the_same_answer_and_no_mail_is_sent(reset_world, client):
    known = _ask(client, reset_world.alice.user.username).content.decode()
    unknown = _ask(client, "nobody.here").content.decode()
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"|nonce="[^"]+"')
    assert strip.sub("", known) == strip.sub("", unknown)
    assert PasswordResetMail.objects.count() == 1


def test_the_mailbox_address_names_the_account_too(reset_world, client):
    _ask(client, reset_world.bob_box.address.upper())
    assert len(_inbox(reset_world.bob_box)) == 1


def test_an_account_gets_at_most_three_links_an_hour(reset_world, client):
    for _ in range(5):
        assert _ask(client, reset_world.alice.user.username).status_code == 200
    assert len(_inbox(reset_world.alice_box)) == services.RESET_MAILS_PER_HOUR == 3


def test_a_weak_or_mistyped_password_is_refused_and_the_link_still_works(reset_world,
                                                                         client):
    _ask(client, reset_world.alice.user.username)
    url = client.get(_link(_inbox(reset_world.alice_box)[-1])).url
    weak = client.post(url, {"new_password": "azertyuiop", "again": "azertyuiop"})
    assert weak.status_code == 400
    differ = client.post(url, {"new_password": NEW, "again": NEW + "x"})
    assert differ.status_code == 400 and "differ" in differ.content.decode()
    assert client.post(url, {"new_password": NEW, "again": NEW}).status_code == 302


def test_a_forged_or_foreign_link_sets_nothing(reset_world, client):
    _ask(client, reset_world.alice.user.username)
    link = _link(_inbox(reset_world.alice_box)[-1])
    _, uid, token = link.rstrip("/").rsplit("/", 2)
    bob_uid = urlsafe_base64_encode(str(reset_world.bob.user.pk).encode())
    for forged in (f"/accounts/password/reset/{bob_uid}/{token}/",  # Alice's token for Bob
                   f"/accounts/password/reset/{uid}/{token[:-2]}zz/",
                   "/accounts/password/reset/!!/x/"):
        answer = Client().get(forged, follow=True)
        assert answer.status_code == 400, forged
    with pytest.raises(Exception, match="not valid"):
        services.reset_password(uidb64=bob_uid, token=token, new_password=NEW)


def test_a_reset_leaves_the_second_factor_in_place(reset_world, client):
    from tests.directory.test_second_factor import with_totp

    with_totp(reset_world.alice)
    _ask(client, reset_world.alice.user.username)
    url = client.get(_link(_inbox(reset_world.alice_box)[-1])).url
    assert client.post(url, {"new_password": NEW, "again": NEW}).status_code == 302
    signed = Client().post("/accounts/login/", {"username": reset_world.alice.user.username,
                                                "password": NEW})
    assert signed.status_code == 302 and signed.url.endswith("/accounts/login/code/")
