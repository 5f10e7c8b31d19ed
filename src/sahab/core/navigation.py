"""The per-pillar navigation: each app registers its entries when it is ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    order: int = 100
    # None: shown to everybody; else a predicate on the user.
    visible_to: Callable | None = None


_ITEMS: list[NavItem] = []


def register(item: NavItem) -> None:
    """Add a navigation entry (called from an app's ``AppConfig.ready``)."""
    if item not in _ITEMS:
        _ITEMS.append(item)


def items_for(user) -> list[dict]:
    """The entries the given user may see, in display order."""
    visible = [i for i in _ITEMS if i.visible_to is None or i.visible_to(user)]
    return [{"label": i.label, "url": reverse(i.url_name), "name": i.url_name}
            for i in sorted(visible, key=lambda i: i.order)]
