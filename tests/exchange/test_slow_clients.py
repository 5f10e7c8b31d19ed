"""Neither a stranger nor a member system holds the gateway's connections by sending
slowly: the request's head, then its body, arrive in a bounded time."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from sahab.exchange import gateway as gateway_module
from sahab.exchange.models import Message


def _connect(intranet) -> socket.socket:
    parts = urlsplit(intranet.gateway.url)
    connection = socket.create_connection((parts.hostname, parts.port))
    connection.settimeout(30)
    return connection


def _read_all(connection: socket.socket) -> bytes:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def test_a_connection_that_never_finishes_its_request_head_is_closed(intranet, monkeypatch):
    """Finding: a connection that sent `GET /r1/… HTTP/1.1` and one header, then nothing,
    was still open 100 s later: anyone could hold every connection the gateway can take."""
    monkeypatch.setattr(gateway_module, "HEAD_TIMEOUT_SECONDS", 1.0)
    connection = _connect(intranet)
    connection.sendall(b"GET /r1/TN/GOV/MI/ETAT-CIVIL/personnes/x HTTP/1.1\r\nHost: a\r\n")
    started = time.monotonic()
    assert _read_all(connection) == b""  # closed, nothing answered
    assert time.monotonic() - started < 10
    assert intranet.gateway.gateway.refused_anonymous >= 1
    # a request that arrives in time is answered as ever, on a kept-alive connection too
    assert intranet.call("persons/1").status_code == 200


def test_a_body_that_does_not_arrive_within_the_services_timeout_is_refused(intranet):
    """Finding: a granted client that announced 100 bytes and sent 3 held its connection
    (and 10 MB of the gateway's memory at most, per connection) for as long as it liked."""
    connection = _connect(intranet)
    connection.sendall((f"POST /r1/{intranet.service.identifier}/persons/1 HTTP/1.1\r\n"
                        f"Host: a\r\nAuthorization: Bearer {intranet.token}\r\n"
                        f"X-Road-Client: {intranet.client.identifier}\r\n"
                        "Content-Length: 100\r\n\r\nabc").encode())
    started = time.monotonic()
    answer = connection.recv(65536)
    assert time.monotonic() - started < 10  # the service's timeout is 2 s
    assert answer.startswith(b"HTTP/1.1 408") and b"Client.RequestTimeout" in answer
    record = Message.objects.get()
    assert record.status == 408 and record.error == "Client.RequestTimeout"


def test_a_client_that_hangs_up_in_its_body_is_logged_without_a_gateway_failure(intranet,
                                                                              caplog):
    """Finding: the gateway logged a traceback and a 500 InternalError for it."""
    connection = _connect(intranet)
    connection.sendall((f"POST /r1/{intranet.service.identifier}/persons/1 HTTP/1.1\r\n"
                        f"Host: a\r\nAuthorization: Bearer {intranet.token}\r\n"
                        f"X-Road-Client: {intranet.client.identifier}\r\n"
                        "Content-Length: 100\r\n\r\nabc").encode())
    time.sleep(0.3)
    connection.close()
    for _ in range(50):
        if Message.objects.exists():
            break
        time.sleep(0.1)
    record = Message.objects.get()
    assert record.status == 400 and record.error == "Client.BadRequest"
    assert "the gateway failed" not in caplog.text
