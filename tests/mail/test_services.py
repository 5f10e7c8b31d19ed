"""Mail directory services: mailboxes made for new agents, rights, aliases and lists,
Dovecot's users file, and the outbound queue with its smart host, retries and bounces."""

from __future__ import annotations

import datetime as dt

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, PermissionDenied
from sahab.directory.models import Role
from sahab.directory.selectors import SYSTEM
from sahab.mail import delivery, dovecot, maildir, outbound, routing, services
from sahab.mail.models import Mailbox, OutboundMessage
from tests import factories
from tests.mail.conftest import free_port


def test_a_new_agent_gets_a_mailbox_once_committed(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        agent = factories.agent(administration=world.sante, username="nouvelle.agente")
    mailbox = Mailbox.objects.get(agent=agent)
    assert mailbox.address.endswith("@sante.test") and mailbox.kind == "personal"
    # a unit without its own domain uses its ministry's
    unit = factories.administration(kind="directorate", parent=world.sante)
    with django_capture_on_commit_callbacks(execute=True):
        inner = factories.agent(administration=unit)
    assert Mailbox.objects.get(agent=inner).domain.name == "sante.test"


def test_only_mail_administrators_manage_their_own_domains(world):
    with pytest.raises(PermissionDenied):
        services.create_shared_mailbox(actor=world.bob.user, administration=world.sante,
                                       local_part="accueil", display_name="Accueil")
    mail_admin = factories.agent(administration=world.finances, roles=[Role.MAIL_ADMIN])
    services.create_shared_mailbox(actor=mail_admin.user, administration=world.finances,
                                   local_part="accueil", display_name="Accueil")
    with pytest.raises(PermissionDenied):
        services.set_mailbox_active(actor=mail_admin.user, mailbox=world.bob_box, active=False)
    with pytest.raises(Conflict):
        services.create_shared_mailbox(actor=SYSTEM, administration=world.finances,
                                       local_part="accueil", display_name="Accueil 2")
    with pytest.raises(InvalidInput):
        services.create_shared_mailbox(actor=SYSTEM, administration=world.finances,
                                       local_part="Accueil Général!", display_name="x")
    with pytest.raises(InvalidInput):
        services.set_password(actor=world.alice.user, mailbox=world.alice_box, password="short")
    with pytest.raises(PermissionDenied):
        services.set_password(actor=world.alice.user, mailbox=world.bob_box)


def test_lists_reach_every_member_and_aliases_may_be_sent_as(world):
    services.create_alias(actor=SYSTEM, administration=world.sante, local_part="dsi",
                          members=[world.bob_box, world.registry_sante], is_list=True)
    services.create_alias(actor=SYSTEM, administration=world.finances, local_part="dg",
                          members=[world.alice_box])
    table = routing.load()
    assert "dg@finances.test" in table.senders[world.alice_box.address]
    assert "dsi@sante.test" not in table.senders.get(world.bob_box.address, set())
    data = b"From: dg@finances.test\r\nTo: dsi@sante.test\r\nSubject: liste\r\n\r\nhello\r\n"
    accepted = delivery.accept(delivery.Submission("dg@finances.test", ["dsi@sante.test"],
                                                   data), table, sign=True)
    assert set(accepted.delivered) == {world.bob_box.address, world.registry_sante.address}
    with pytest.raises(InvalidInput):
        services.create_alias(actor=SYSTEM, administration=world.sante, local_part="two",
                              members=[world.bob_box, world.registry_sante], is_list=False)


def test_dovecot_users_file_follows_the_database(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.set_password(actor=SYSTEM, mailbox=world.bob_box)
    lines = dovecot.passwd_path().read_text().splitlines()
    bob = next(line for line in lines if line.startswith(world.bob_box.address + ":"))
    assert ":{ARGON2ID}$argon2id$" in bob
    homes = dovecot.userdb_path().read_text()
    assert f"{world.bob_box.address}:::::{world.bob_box.home}::" in homes
    assert f"quota_rule=*:bytes={world.bob_box.quota_bytes}" in homes
    # the registry (no password) is in the userdb, and its ACL names the delegated clerk
    assert world.registry_sante.address in homes
    assert world.registry_sante.address not in dovecot.passwd_path().read_text()
    clerk = world.clerk.mailbox.address
    assert (world.registry_sante.maildir / "dovecot-acl").read_text() == f"user={clerk} lrs\n"
    assert f"shared/shared-boxes/user/{clerk}/{world.registry_sante.address}\n1\n" in \
        dovecot.shared_dict_path().read_text()
    with django_capture_on_commit_callbacks(execute=True):
        services.set_mailbox_active(actor=SYSTEM, mailbox=world.bob_box, active=False)
    assert world.bob_box.address not in dovecot.passwd_path().read_text()
    conf = dovecot.write_config(port=free_port()).read_text()
    assert "passwd-file" in conf and "ssl = required" in conf and "127.0.0.1" in conf


class Collector:
    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


def test_outbound_queue_sends_through_the_smart_host(world, settings):
    table = routing.load()
    data = b"From: x@finances.test\r\nSubject: out\r\n\r\nhello\r\n"
    delivery.accept(delivery.Submission(world.alice_box.address, ["partner@example.org"], data),
                    table, sign=True)
    [row] = OutboundMessage.objects.all()
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.MAIL_SMART_HOST = f"127.0.0.1:{controller.port}"
        assert outbound.process_queue() == 1
    finally:
        controller.stop()
    row.refresh_from_db()
    assert row.state == "sent"
    [(sender, recipients, content)] = collector.received
    assert sender == world.alice_box.address and recipients == ["partner@example.org"]
    assert b"DKIM-Signature" in content
    assert not (delivery.spool_dir() / row.spool_name).exists()


def test_outbound_mail_is_retried_then_returned_to_its_sender(world, settings):
    settings.MAIL_SMART_HOST = f"127.0.0.1:{free_port()}"  # nobody listens
    table = routing.load()
    delivery.accept(delivery.Submission(world.alice_box.address, ["partner@example.org"],
                                        b"Subject: lost\r\n\r\nhello\r\n"), table, sign=True)
    assert outbound.process_queue() == 0
    row = OutboundMessage.objects.get()
    assert row.attempts == 1 and row.next_attempt_at > timezone.now()
    later = timezone.now() + dt.timedelta(hours=settings.MAIL_BOUNCE_HOURS + 1)
    assert outbound.process_queue(now=later) == 1
    row.refresh_from_db()
    assert row.state == "bounced"
    [notice] = maildir.messages(world.alice_box.maildir, "INBOX")
    text = notice.path.read_bytes()
    assert b"Undelivered mail: partner@example.org" in text and b"Subject: lost" in text
