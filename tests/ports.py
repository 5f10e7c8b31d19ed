"""Free ports for the servers the tests start, chosen where nothing else takes them.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` lies in the ephemeral range,
the same range it draws the source ports of outgoing connections from. Between the moment
a test picks such a port and the moment a server binds it (``sahab demo`` runs in
between, for a minute under load), any of the thousands of connections the other test
suite opens to PostgreSQL can take it, and the server then dies with "address in use".
Ports below the ephemeral range are only ever taken by servers that ask for them.

Two more ways a server found its port taken, both by the tests themselves: a platform
picks a dozen ports in a row, each free when picked and released at once, so two of them
could be the same number (its SMTP and IMAP listeners then fight for one port); and the
two databases' suites, run side by side by ``make test``, drew from the same range. So a
process never hands out a port twice, and each suite draws from its own half."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server accepts connections on ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# every port this process handed out: a server may not have bound it yet
_given: set[int] = set()


def _range() -> tuple[int, int]:
    """Where this process draws ports from: below the ephemeral range, in the half of
    its database's suite when it is one of the two that run side by side."""
    top = _ephemeral_start()
    low = max(1024, top - 12000)
    middle = (low + top) // 2
    suite = os.environ.get("SAHAB_TEST_DB")
    return (low, middle) if suite == "sqlite" else (middle, top) if suite == "postgres" \
        else (low, top)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now, below the ephemeral range, and
    never one this process handed out before."""
    low, top = _range()
    for _ in range(200):
        port = random.randrange(low, top)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    while True:  # a machine whose low ports are all taken: any free port, never twice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
