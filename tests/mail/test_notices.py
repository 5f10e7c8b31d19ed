"""The platform's own notices are whole messages: the reader's inbox dates and threads
them like any other mail."""

import email.utils

import pytest
from django.conf import settings

from sahab.mail import maildir, notices, webmail
from tests.notices import sent

pytestmark = pytest.mark.django_db


def test_a_notice_carries_its_date_and_message_id(sahab_home):
    notices.send(sender=settings.NOTICES_MAIL_FROM, to="agent@example.test",
                 subject="La commande CL-1 est prête", body="Elle est prête.")
    [(to, message)] = sent()
    assert to == "agent@example.test"
    assert email.utils.parsedate_to_datetime(message["Date"]) is not None
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(">")
    assert len(message.get_all("Date")) == 1 and len(message.get_all("Message-ID")) == 1


def test_a_notice_delivered_here_is_dated_and_from_a_verified_sender(world):
    """The platform's sender is not a hosted domain, so nothing signs the notice: the
    reader must still see that the platform wrote it, not an "unverified sender"."""
    notices.send(sender=settings.NOTICES_MAIL_FROM, to=world.bob_box.address,
                 subject="La commande CL-1 est prête", body="Elle est prête.")
    [stored] = maildir.messages(world.bob_box.maildir, "INBOX")
    assert webmail.summary(stored).date is not None
    assert webmail.read(stored.path.read_bytes()).auth == "verified"
