"""The ports the tests' servers listen on: a platform's dozen listeners each get their
own, and the two databases' suites, side by side, never draw the same one."""

import random

from tests import ports


def test_a_port_is_never_handed_out_twice_even_when_the_draw_repeats(monkeypatch):
    """A platform picks its ports in a row; each was free when drawn and released at once,
    so the same draw twice gave one port to two listeners (its SMTP server then could
    not bind, and a restored platform never got ready)."""
    low, _top = ports._range()
    draws = iter([low + 7, low + 7, low + 7, low + 8])
    monkeypatch.setattr(random, "randrange", lambda *_: next(draws))
    monkeypatch.setattr(ports, "_given", set())
    assert [ports.free_port(), ports.free_port()] == [low + 7, low + 8]


def test_the_two_suites_draw_from_halves_that_do_not_meet(monkeypatch):
    monkeypatch.setenv("SAHAB_TEST_DB", "sqlite")
    sqlite = ports._range()
    monkeypatch.setenv("SAHAB_TEST_DB", "postgres")
    postgres = ports._range()
    assert sqlite[1] <= postgres[0] and sqlite[0] < sqlite[1] and postgres[0] < postgres[1]
    assert postgres[1] <= ports._ephemeral_start()  # below what outgoing connections use
    monkeypatch.delenv("SAHAB_TEST_DB")
    assert ports._range() == (sqlite[0], postgres[1])


def test_the_last_resort_port_is_not_handed_out_twice_either(monkeypatch):
    """When no low port can be bound, the kernel's choice is used; the kernel may give
    the same free port again, which another listener of the platform may not bind yet."""
    import socket

    class Kernel(socket.socket):
        """A kernel that hands out 40001 twice before 40002, and no low port at all."""
        chosen = iter([40001, 40001, 40002])

        def bind(self, address):
            if address[1] != 0:
                raise OSError("address in use")
            self.port = next(self.chosen)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports.socket, "socket", Kernel)
    monkeypatch.setattr(ports, "_given", set())
    assert [ports.free_port(), ports.free_port()] == [40001, 40002]
