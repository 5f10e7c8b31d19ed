"""No request forgery through broker URLs (issue: "Server-side request forgery"): the
platform's outbound-URL policy (sahab.core.outbound) before anything is fetched, the
connection pinned to the address checked, and one error text whatever happened."""

from __future__ import annotations

import socket
import threading

import pytest
from django.urls import reverse

from sahab.cloud import services
from sahab.cloud.models import Broker, Provider
from sahab.core import keys, outbound
from sahab.core.errors import InvalidInput, PermissionDenied
from sahab.directory.selectors import SYSTEM
from sahab.ledger.models import Entry
from tests import factories
from tests.cloud.conftest import make_provider
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


class Listener:
    """A TCP port on 127.0.0.1 that records connections and answers garbage."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.sendall(b"\x00not http at all\r\n")

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    port = Listener()
    yield port
    port.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def keyed(sahab_home):
    keys.ensure_ledger_key()
    keys.ensure_secrets_key()
    return sahab_home


def test_an_anonymous_visitor_cannot_make_the_platform_fetch_an_internal_port(
        client, keyed, listener):
    """The finding: an anonymous visitor registered a company, applied as a cloud
    provider, set its broker URL to http://127.0.0.1:5432; the platform fetched it at
    once and the error text told an open port from a closed one."""
    response = client.post(reverse("directory:register_company"), {
        "name": "Sonde", "matricule_fiscal": "7654321B/A/M/000", "email": "c@sonde.tn",
        "is_cloud_provider": "on", "admin_username": "sonde", "admin_first_name": "S",
        "admin_last_name": "S", "admin_email": "s@sonde.tn", "admin_password": PASSWORD})
    assert response.status_code == 302
    applied = client.post("/api/cloud/provider/application", {"locations": "Tunis"},
                          content_type="application/json")
    assert applied.status_code == 201
    entries = Entry.objects.count()
    for port in (5432, listener.port):
        refused = client.put("/api/cloud/provider/broker",
                             {"url": f"http://127.0.0.1:{port}", "username": "u",
                              "password": "p"}, content_type="application/json")
        assert refused.status_code == 403
        assert "qualified provider" in refused.json()["detail"]
    assert not Broker.objects.exists() and Entry.objects.count() == entries
    assert listener.connections == 0


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5432", "https://127.0.0.1:5432/", "https://localhost/osb",
    "https://10.1.2.3/osb", "https://169.254.169.254/latest/meta-data", "https://[::1]/osb",
    "https://[::ffff:127.0.0.1]/", "https://0.0.0.0/", "https://100.64.0.1/",
    "http://broker.example.com/osb", "https://user:pw@broker.example.com/",
    "https://does-not-exist.invalid/osb", "ftp://broker.example.com/",
])
def test_a_qualified_provider_cannot_set_an_internal_or_plain_broker_url(keyed, url, settings):
    settings.CLOUD_ALLOW_HTTP_BROKERS = False
    reviewer = factories.platform_admin().user
    provider, user = make_provider(name="Hannibal", reviewer=reviewer)
    with pytest.raises(InvalidInput) as refused:
        services.register_broker(actor=user, url=url, username="u", password="p")
    assert refused.value.detail == outbound.UNREACHABLE
    assert not Broker.objects.filter(provider=provider).exists()


def test_an_open_port_and_a_closed_one_read_the_same(keyed, listener, settings):
    """Even for a host a platform administrator allowed, the failure does not tell an
    open port from a closed one, nor name an exception class."""
    settings.OUTBOUND_INTERNAL_HOSTS = ["127.0.0.1"]
    settings.OUTBOUND_ALLOW_HTTP = settings.CLOUD_ALLOW_HTTP_BROKERS = True
    reviewer = factories.platform_admin().user
    _, user = make_provider(name="Kairouan", reviewer=reviewer)
    errors = []
    for port in (listener.port, closed_port()):
        broker = services.register_broker(actor=user, url=f"http://127.0.0.1:{port}/",
                                          username="u", password="p")
        errors.append(services.refresh_catalog(broker).catalog_error)
    assert errors == [outbound.UNREACHABLE, outbound.UNREACHABLE]
    assert listener.connections >= 1  # the allowed host was really called


def test_a_url_written_into_the_database_is_checked_again_before_each_call(
        keyed, listener, settings):
    """A broker row changed behind the services (or a name that now resolves to the
    loopback) is refused at call time: no connection is made."""
    settings.OUTBOUND_ALLOW_HTTP = settings.CLOUD_ALLOW_HTTP_BROKERS = True
    provider, _ = make_provider(name="Utique", reviewer=factories.platform_admin().user)
    broker = services.register_broker(actor=SYSTEM, provider=provider,
                                      url="https://93.184.216.34/", username="u",
                                      password="p")
    Broker.objects.filter(pk=broker.pk).update(url=f"http://127.0.0.1:{listener.port}/")
    broker.refresh_from_db()
    assert services.refresh_catalog(broker).catalog_error == outbound.UNREACHABLE
    assert listener.connections == 0


def test_a_name_is_resolved_once_and_the_call_goes_to_that_address(monkeypatch):
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))],
                    [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: next(answers))
    target = outbound.check_url("https://broker.example.com/osb")
    assert target.addresses == ("93.184.216.34",)
    assert target.pinned_url() == "https://93.184.216.34:443/osb"
    assert outbound.sni_extensions(target) == {"sni_hostname": "broker.example.com"}
    with pytest.raises(outbound.OutboundRefused):  # the rebound answer is refused
        outbound.check_url("https://broker.example.com/osb")


def test_unqualified_providers_brokers_are_not_called_by_the_timer(keyed, monkeypatch):
    provider, _ = make_provider(name="Dougga", reviewer=factories.platform_admin().user)
    services.register_broker(actor=SYSTEM, provider=provider, url="https://93.184.216.34/",
                             username="u", password="p")
    Provider.objects.filter(pk=provider.pk).update(status=Provider.Status.REFUSED)
    called = []
    monkeypatch.setattr(services, "refresh_catalog", called.append)
    assert services.refresh_all_catalogs() == 0 and called == []


def test_witness_urls_follow_the_same_policy():
    from sahab.ledger import services as ledger

    assert ledger.check_witness_url("http://127.0.0.1:8081/add-checkpoint")
    assert ledger.check_witness_url("https://witness.example.org/add-checkpoint")
    for bad in ("http://witness.example.org/", "https://u:p@witness.example.org/",
                "gopher://witness.example.org/"):
        with pytest.raises(InvalidInput):
            ledger.check_witness_url(bad)


def test_register_broker_refuses_before_any_check_for_an_unqualified_provider(keyed):
    _, user = make_provider(name="Thuburbo", reviewer=factories.platform_admin().user,
                            qualify=False)
    with pytest.raises(PermissionDenied, match="qualified provider"):
        services.register_broker(actor=user, url="https://broker.example.com/", username="u",
                                 password="p")
