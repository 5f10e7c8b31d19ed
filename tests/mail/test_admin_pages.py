"""Mail administration at the size of a state: the domains one administers as a
searchable, paged list; one page per domain whose DNS check says which records are
published, missing or wrong; forms that refuse bad input and objects of other domains."""

from __future__ import annotations

import pytest
from django.test import Client

from sahab.directory.models import Agent, Role
from sahab.mail import dnscheck, services
from sahab.mail.models import Mailbox, MailDomain
from tests import factories


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_ms(world) -> Agent:
    return Agent.objects.get(user__username="admin.ms")


@pytest.fixture
def platform_admin(world):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.test", "pw")


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_an_administration_admin_lists_only_the_domains_of_its_subtree(world, admin_ms):
    page = _text(client_for(admin_ms.user).get("/mail/admin/"))
    assert "sante.test" in page and "finances.test" not in page
    assert client_for(world.bob.user).get("/mail/admin/").status_code == 404
    assert client_for(admin_ms.user).get("/mail/admin/finances.test/").status_code == 404


def test_the_domain_list_is_searched_and_paged(world, platform_admin):
    for n in range(30):
        factories.administration(code=f"D{n:02d}", mail_domain=f"direction{n:02d}.test",
                                 name_fr=f"Direction {n:02d}")
    client = client_for(platform_admin)
    first = _text(client.get("/mail/admin/"))
    assert first.count('href="/mail/admin/') == 25
    assert "Page 1" in first and "direction00.test" in first
    second = _text(client.get("/mail/admin/", {"page": 2}))
    assert second.count('href="/mail/admin/') == 32 - 25 and "sante.test" in second
    found = _text(client.get("/mail/admin/", {"q": "direction07"}))
    assert found.count('href="/mail/admin/') == 1 and "direction07.test" in found
    by_code = _text(client.get("/mail/admin/", {"q": "ms"}))
    assert "sante.test" in by_code


def test_the_list_counts_mailboxes_and_their_use(world, admin_ms):
    Mailbox.objects.filter(address=world.bob_box.address).update(used_bytes=3 * 1024 * 1024)
    page = _text(client_for(admin_ms.user).get("/mail/admin/"))
    boxes = Mailbox.objects.filter(domain__name="sante.test").count()
    row = page.split("sante.test</a>")[1].split("</tr>")[0]
    assert f'<td class="num">{boxes}</td>' in row and "3.0\xa0MB" in row


def test_the_mailboxes_of_a_domain_are_searched_and_paged(world, admin_ms):
    for n in range(55):
        agent = factories.agent(administration=world.sante, username=f"agent{n:02d}")
        services.provision_agent_mailbox(agent)
    client = client_for(admin_ms.user)
    page = _text(client.get("/mail/admin/sante.test/"))
    assert page.count('name="quota_mb"') == 50 and "Page 1" in page
    rest = _text(client.get("/mail/admin/sante.test/", {"page": 2}))
    total = Mailbox.objects.filter(domain__name="sante.test").count()
    assert rest.count('name="quota_mb"') == total - 50
    found = _text(client.get("/mail/admin/sante.test/", {"q": world.bob_box.address}))
    assert found.count('name="quota_mb"') == 1


def test_the_fullest_mailboxes_are_ranked_by_their_share_of_the_quota(world, admin_ms,
                                                                      django_assert_max_num_queries):
    from sahab.mail.selectors import fullest_mailboxes

    boxes = []
    for n in range(20):
        agent = factories.agent(administration=world.sante, username=f"user{n:02d}")
        box = services.provision_agent_mailbox(agent)
        boxes.append(box.address)
        # a big mailbox nearly empty, a small one nearly full: the share ranks, not bytes
        Mailbox.objects.filter(pk=box.pk).update(quota_bytes=(n + 1) * 1_000_000,
                                                 used_bytes=(20 - n) * 10_000)
    Mailbox.objects.filter(address=world.bob_box.address).update(quota_bytes=0,
                                                                 used_bytes=5)
    domain = MailDomain.objects.get(name="sante.test")
    with django_assert_max_num_queries(1):
        ranked = fullest_mailboxes(domain, limit=3)
    # no quota: 5 / 1 first; then 200,000 / 1,000,000 and 190,000 / 2,000,000
    assert [b.address for b in ranked] == [world.bob_box.address, boxes[0], boxes[1]]
    page = _text(client_for(admin_ms.user).get("/mail/admin/sante.test/"))
    assert world.bob_box.address in page


def test_dangerous_actions_look_dangerous_and_ask_first(world, admin_ms):
    page = _text(client_for(admin_ms.user).get("/mail/admin/sante.test/"))
    disable = page.split("/disable\"")[1].split("</form>")[0]
    assert "data-confirm=" in disable and 'class="link danger"' in disable


def test_the_dns_check_says_which_records_are_published_missing_or_wrong(
        world, admin_ms, dns_zone):
    domain = world.bob_box.domain
    records = services.dns_records(domain)
    expected = {(name, type_): value for name, type_, value in records}
    dkim_name = next(n for n, t, v in records if "ed25519" in v)
    # the MX and the DKIM key as asked (with other spacing and tag order), an SPF record
    # that differs, a site-verification TXT beside it, and nothing else
    dns_zone.add("sante.test", "MX", expected["sante.test", "MX"].upper())
    key = expected[dkim_name, "TXT"]
    version, *tags = [part.strip() for part in key.split(";")]  # v= stays first (RFC 6376)
    reordered = ";  ".join([version, *reversed(tags)])
    dns_zone.add(dkim_name, "TXT", reordered)
    dns_zone.add("sante.test", "TXT", "v=spf1 mx ~all")
    dns_zone.add("sante.test", "TXT", "google-site-verification=abc")
    checks = {(c.name, c.type): c for c in dnscheck.check_domain(domain)}
    assert checks["sante.test", "MX"].status == dnscheck.PUBLISHED
    assert checks[dkim_name, "TXT"].status == dnscheck.PUBLISHED
    spf = checks["sante.test", "TXT"]
    assert spf.status == dnscheck.WRONG and spf.found == ["v=spf1 mx ~all"]
    assert checks["_dmarc.sante.test", "TXT"].status == dnscheck.MISSING
    assert checks["autoconfig.sante.test", "CNAME"].status == dnscheck.MISSING

    page = _text(client_for(admin_ms.user).get("/mail/admin/sante.test/", {"check": "1"}))
    missing = sum(c.status in ("missing", "wrong") for c in checks.values())
    assert f"{missing} records are missing or wrong." in page
    assert page.count('class="status-published"') == 2
    assert "v=spf1 mx ~all" in page


def test_every_record_published_as_asked_passes(world, dns_zone):
    domain = world.bob_box.domain
    for name, type_, value in services.dns_records(domain):
        dns_zone.add(name, type_, value)
    assert {c.status for c in dnscheck.check_domain(domain)} == {dnscheck.PUBLISHED}


def test_without_dns_lookups_nothing_is_claimed(world, settings):
    settings.MAIL_DNS = "false"
    statuses = {c.status for c in dnscheck.check_domain(world.bob_box.domain)}
    assert statuses == {dnscheck.UNCHECKED}


def test_a_check_that_looked_nothing_up_does_not_say_the_records_are_published(
        world, admin_ms, settings):
    settings.MAIL_DNS = "false"
    page = _text(client_for(admin_ms.user).get("/mail/admin/sante.test/", {"check": "1"}))
    assert "Nothing could be checked: DNS lookups are off" in page
    assert "Every record that could be checked is published." not in page


def test_a_resolver_that_does_not_answer_leaves_records_unchecked(world, settings):
    from sahab.mail import resolver
    from tests.e2e.conftest import free_port

    settings.MAIL_DNS = f"127.0.0.1:{free_port()}"  # nothing listens there
    resolver_timeout = resolver.TIMEOUT
    resolver.TIMEOUT = 0.2
    try:
        check = dnscheck.check_record("sante.test", "MX", "10 mail.sahab.test.")
    finally:
        resolver.TIMEOUT = resolver_timeout
        settings.MAIL_DNS = "false"
        resolver.configure()
    assert check.status == dnscheck.UNCHECKED


def test_forms_refuse_bad_input_and_objects_of_other_domains(world, admin_ms):
    client = client_for(admin_ms.user)
    quota = world.bob_box.quota_bytes
    for value in ("", "abc", "0", "-5", "1e99"):
        page = client.post("/mail/admin/sante.test/quota",
                           {"mailbox": world.bob_box.pk, "quota_mb": value}, follow=True)
        assert page.status_code == 200 and "Quota (MB)" in page.content.decode()
    world.bob_box.refresh_from_db()
    assert world.bob_box.quota_bytes == quota
    # a mailbox of finances.test named through the page of sante.test is not found there
    page = client.post("/mail/admin/sante.test/disable", {"mailbox": world.alice_box.pk},
                       follow=True)
    assert "Mailbox:" in page.content.decode()
    # and the page of finances.test belongs to others: the service refuses
    page = client.post("/mail/admin/finances.test/disable", {"mailbox": world.alice_box.pk},
                       follow=True)
    assert "Only the mail administrators" in page.content.decode()
    world.alice_box.refresh_from_db()
    assert world.alice_box.active
    assert client.post("/mail/admin/sante.test/explode", {}).status_code == 404


def test_each_form_does_its_one_thing(world, admin_ms):
    client = client_for(admin_ms.user)
    done = client.post("/mail/admin/sante.test/quota",
                       {"mailbox": world.bob_box.pk, "quota_mb": "700"})
    assert done.status_code == 302 and done["Location"] == "/mail/admin/sante.test/"
    world.bob_box.refresh_from_db()
    assert world.bob_box.quota_bytes == 700 * 1024 * 1024
    client.post("/mail/admin/sante.test/disable", {"mailbox": world.bob_box.pk})
    world.bob_box.refresh_from_db()
    assert not world.bob_box.active
    client.post("/mail/admin/sante.test/shared", {
        "administration": "MS", "local_part": "dsi", "display_name": "DSI"})
    shared = Mailbox.objects.get(address="dsi@sante.test")
    assert shared.kind == Mailbox.Kind.SHARED
    client.post("/mail/admin/sante.test/delegate", {
        "mailbox": shared.pk, "agent": world.bob.pk, "can_send": "1"})
    assert shared.delegations.get().can_send
    page = client.post("/mail/admin/sante.test/password", {"mailbox": shared.pk}, follow=True)
    assert "shown once" in page.content.decode()


def test_percentages_are_drawn_on_their_own_scale():
    from sahab.core.charts import bars

    rows = [{"k": "a", "v": 4}, {"k": "b", "v": 10}]
    assert [b["percent"] for b in bars(rows, "k", "v")] == [40, 100]
    assert [b["percent"] for b in bars(rows, "k", "v", scale=100)] == [4, 10]
    assert bars([{"k": "x", "v": 130}], "k", "v", scale=100)[0]["percent"] == 100


def test_a_mail_admin_role_sees_the_same_pages(world):
    mail_admin = factories.agent(administration=world.finances, username="postmaster.mf",
                                 roles=[Role.MAIL_ADMIN])
    page = _text(client_for(mail_admin.user).get("/mail/admin/"))
    assert "finances.test" in page and "sante.test" not in page
