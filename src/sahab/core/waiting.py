"""What waits for a person, gathered from every pillar for the account page's "waiting for
you" list. Each pillar registers one function that answers for a user with the same rules
its services check, so that the list offers exactly what the person may do."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waiting:
    """One thing to do: what, where to do it, and since when (or until when)."""

    label: str
    url: str
    since: dt.datetime | dt.date | None = None


_SOURCES: list[Callable[[object], list[Waiting]]] = []


def register(source: Callable[[object], list[Waiting]]) -> None:
    """Add a pillar's source (called from its AppConfig.ready)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def for_user(user) -> list[Waiting]:
    """Everything that waits for ``user``, the oldest first."""
    items: list[Waiting] = []
    for source in _SOURCES:
        items.extend(source(user))
    return sorted(items, key=lambda w: (w.since is None, str(w.since or "")))
