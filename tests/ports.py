"""Free ports for the servers the tests start, chosen where nothing else takes them.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` lies in the ephemeral range,
the same range it draws the source ports of outgoing connections from. Between the moment
a test picks such a port and the moment a server binds it (``sahab demo`` runs in
between, for a minute under load), any of the thousands of connections the other test
suite opens to PostgreSQL can take it, and the server then dies with "address in use".
Ports below the ephemeral range are only ever taken by servers that ask for them."""

from __future__ import annotations

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


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now, below the ephemeral range."""
    top = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(max(1024, top - 12000), top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a machine whose low ports are all taken: any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
