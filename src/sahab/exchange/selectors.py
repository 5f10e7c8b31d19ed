"""Reads of the exchange pillar: who sees which grants, and the exchange statistics."""

from __future__ import annotations

import datetime as dt
import statistics as stats

from django.db.models import Q, QuerySet
from django.utils import timezone

from sahab.directory import selectors as directory
from sahab.exchange.models import Grant, Message


def sees_everything(user) -> bool:
    """Platform admins and auditors see every administration's exchanges."""
    if directory.is_platform_admin(user):
        return True
    return "auditor" in directory.roles_of(user)


def _own_path(user) -> str | None:
    agent = directory.agent_of(user)
    return agent.administration.path if agent else None


def grants_visible_to(user) -> QuerySet[Grant]:
    """The grants the user's administration (or its units) asked for or gives."""
    grants = Grant.objects.select_related("client__administration",
                                          "service__subsystem__administration")
    if sees_everything(user):
        return grants
    path = _own_path(user)
    if path is None:
        return grants.none()
    return grants.filter(Q(client__administration__path__startswith=path) |
                         Q(service__subsystem__administration__path__startswith=path))


def _percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(stats.quantiles(values, n=100, method="inclusive")[p - 1], 3)


def statistics(user, *, days: int = 7) -> list[dict]:
    """Calls, errors and latency percentiles per service and client over ``days``."""
    since = timezone.now() - dt.timedelta(days=days)
    messages = Message.objects.filter(started_at__gte=since)
    if not sees_everything(user):
        agent = directory.agent_of(user)
        if agent is None:
            return []
        pattern = _codes_regex([a.code for a in directory.subtree(agent.administration)])
        messages = messages.filter(Q(client__regex=pattern) | Q(service__regex=pattern))
    groups: dict[tuple[str, str], list] = {}
    for service, client, status, duration in messages.values_list(
            "service", "client", "status", "duration_ms").iterator(chunk_size=5000):
        groups.setdefault((service, client), []).append((status, duration))
    rows = []
    for (service, client), calls in sorted(groups.items()):
        durations = [d for _, d in calls]
        rows.append({"service": service, "client": client, "calls": len(calls),
                     "errors": sum(1 for s, _ in calls if s >= 400),
                     "p50_ms": _percentile(durations, 50), "p95_ms": _percentile(durations, 95)})
    return rows


def _codes_regex(codes: list[str]) -> str:
    import re

    return r"^TN/GOV/(" + "|".join(re.escape(c) for c in codes) + r")/"
