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
from sahab.mail import delivery, dovecot, letters, maildir, outbound, routing, services
from sahab.mail.models import Alias, Mailbox, OutboundMessage
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


def test_a_units_administrator_gives_no_address_of_the_ministrys_domain(world):
    """The finding: the mail administrator of a directorate without a domain of its own
    made ``postmaster@sante.test`` an alias of their own mailbox (the ministry's
    postmaster, abuse and DMARC mail, and the right to send as it), and a second registry
    office that could take the ministry's registered letters. The addresses of a domain
    are given by the mail administrators of the administration that holds it, and a
    domain has one registry office."""
    unit = factories.administration(code="MS-DR", kind="directorate", parent=world.sante,
                                    name_fr="Direction régionale")
    unit_admin = factories.agent(administration=unit, roles=[Role.MAIL_ADMIN])
    own = services.provision_agent_mailbox(unit_admin)
    services.set_password(actor=unit_admin.user, mailbox=own)
    with pytest.raises(PermissionDenied):
        services.create_alias(actor=unit_admin.user, administration=unit,
                              local_part="postmaster", members=[own])
    with pytest.raises(PermissionDenied):
        services.create_shared_mailbox(actor=unit_admin.user, administration=unit,
                                       local_part="zz-bureau-ordre", display_name="BO",
                                       registry=True)
    with pytest.raises(PermissionDenied):
        services.create_shared_mailbox(actor=unit_admin.user, administration=unit,
                                       local_part="cabinet", display_name="Cabinet")
    table = routing.load()
    assert "postmaster@sante.test" not in table.senders[own.address]
    assert Alias.objects.filter(address="postmaster@sante.test").count() == 0
    # the ministry's own administrator gives addresses for the unit, but no second
    # registry office, whatever its display name
    ministry_admin = factories.agent(administration=world.sante, roles=[Role.MAIL_ADMIN])
    services.create_shared_mailbox(actor=ministry_admin.user, administration=unit,
                                   local_part="dr-accueil", display_name="Accueil")
    with pytest.raises(Conflict):
        services.create_shared_mailbox(actor=ministry_admin.user, administration=world.sante,
                                       local_part="zz-bureau-ordre", display_name="Autre",
                                       registry=True)
    assert letters.registry_of(unit) == world.registry_sante


def test_a_mail_administrator_does_not_switch_off_an_administrators_mailbox(world):
    """The finding: a mail administrator who may not set the password of their ministry
    administrator's personal mailbox could still disable it, sending the links that reset
    that administrator's sign-in to the account's e-mail address (and their mail nowhere).
    Switching another agent's personal mailbox needs the same reach as its password."""
    ministry = factories.agent(administration=world.sante, roles=[Role.ADMINISTRATION_ADMIN])
    mail_admin = factories.agent(administration=world.sante, roles=[Role.MAIL_ADMIN])
    box = services.provision_agent_mailbox(ministry)
    with pytest.raises(PermissionDenied) as refused:
        services.set_mailbox_active(actor=mail_admin.user, mailbox=box, active=False)
    assert refused.value.code == "personal_mailbox_switch_out_of_reach"
    box.refresh_from_db()
    assert box.active
    # an agent without roles: as before; the ministry administrator switches theirs
    assert not services.set_mailbox_active(actor=mail_admin.user, mailbox=world.bob_box,
                                           active=False).active
    mail_box = services.provision_agent_mailbox(mail_admin)
    assert not services.set_mailbox_active(actor=ministry.user, mailbox=mail_box,
                                           active=False).active


def test_a_mail_administrator_does_not_take_over_an_administrators_mailbox(world):
    """The finding: a mail administrator reset the mail password of the platform
    administrator's (or the administration administrator's) mailbox, read it over IMAP —
    and with it the link that resets their sign-in. An agent's mailbox is reset by whoever
    may manage the agent; a mail administrator resets those of agents who administer
    nothing."""
    platform = factories.agent(administration=world.sante, roles=[Role.PLATFORM_ADMIN])
    ministry = factories.agent(administration=world.sante, roles=[Role.ADMINISTRATION_ADMIN])
    peer = factories.agent(administration=world.sante, roles=[Role.MAIL_ADMIN])
    mail_admin = factories.agent(administration=world.sante, roles=[Role.MAIL_ADMIN])
    boxes = {a: services.provision_agent_mailbox(a) for a in (platform, ministry, peer)}
    for agent, box in boxes.items():
        with pytest.raises(PermissionDenied):
            services.set_password(actor=mail_admin.user, mailbox=box)
        box.refresh_from_db()
        assert box.password_digest == "", agent
    # an ordinary agent's mailbox, a registry office: as before
    assert services.set_password(actor=mail_admin.user, mailbox=world.bob_box)
    assert services.set_password(actor=mail_admin.user, mailbox=world.registry_sante)
    # the administration administrator resets the mail administrator's; a platform
    # administrator anyone's
    assert services.set_password(actor=ministry.user, mailbox=boxes[peer])
    with pytest.raises(PermissionDenied):
        services.set_password(actor=ministry.user, mailbox=boxes[platform])
    assert services.set_password(actor=platform.user, mailbox=boxes[ministry])


def test_the_owner_is_told_when_someone_else_sets_their_mailbox_password(world, commits):
    """The finding: a mail administrator set the password of an agent's personal mailbox,
    and only the ledger knew: the agent was not told, and the administrator, reading the
    mailbox over IMAP, could read anything that came. The owner is now mailed at once, and
    the account page, which the administrator cannot sign in to, says it from the ledger
    even if that mail was deleted; the owner's own change, and the platform's (the
    operator's demo or command line), say nothing."""
    from django.test import Client

    from sahab.mail import selectors
    from tests import notices

    bob = world.bob.user
    mail_admin = factories.agent(administration=world.sante, roles=[Role.MAIL_ADMIN])
    assert selectors.password_set_by_someone_else(bob) is None  # set by the platform
    commits(services.set_password, actor=bob, mailbox=world.bob_box,
            password="un mot de passe de bob")
    assert selectors.password_set_by_someone_else(bob) is None
    told = "sahab: The password of your mailbox was set by someone else"
    assert told not in [m["Subject"] for m in notices.inbox(bob)]
    commits(services.set_password, actor=mail_admin.user, mailbox=world.bob_box)
    assert told in [m["Subject"] for m in notices.inbox(bob)]
    # the administrator deletes the mail from the box: the account page still says it
    for message in maildir.messages(world.bob_box.maildir, "INBOX"):
        message.path.unlink()
    set_at = selectors.password_set_by_someone_else(bob)
    assert set_at is not None
    web = Client(HTTP_ACCEPT_LANGUAGE="en")
    web.force_login(bob)
    assert "was last set by someone else" in web.get("/accounts/").content.decode()
    # and once integrated into the tree, the same
    from sahab.ledger import services as ledger

    ledger.integrate()
    assert selectors.password_set_by_someone_else(bob) == set_at
    # a database writer plants, beyond the signed log, a later row in which bob set it
    # himself: no entry of the log, it hides nothing
    from sahab.directory import selectors as directory
    from sahab.ledger.models import Entry

    Entry.objects.create(index=10**12, body=b"{}", type="mail.mailbox.password_set",
                         subject=f"mail:mailbox:{world.bob_box.pk}",
                         actor=directory.actor_id(bob), at=set_at + dt.timedelta(hours=1))
    assert selectors.password_set_by_someone_else(bob) == set_at
    assert "was last set by someone else" in web.get("/accounts/").content.decode()
    commits(services.set_password, actor=bob, mailbox=world.bob_box,
            password="encore un mot de passe")
    assert selectors.password_set_by_someone_else(bob) is None
    assert "was last set by someone else" not in web.get("/accounts/").content.decode()
