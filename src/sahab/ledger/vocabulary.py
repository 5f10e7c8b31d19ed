"""The ledger's event vocabulary: every entry type of every pillar, with its data fields.

Each pillar declares its entry types in one enumeration (``<pillar>/events.py``), a
subclass of :class:`LedgerEvent`; services record them through
:func:`sahab.ledger.services.record`, which refuses anything that is not a member, and
refuses data fields the member does not declare. ``docs/ledger-events.md`` is generated
from these enumerations (``sahab ledger events``) and a test keeps it current, so that
auditors read what each entry means from the same source the code records it with.
"""

from __future__ import annotations

import importlib
from enum import StrEnum

# The pillars that declare a vocabulary, in the order the documentation lists them.
PILLARS = ("directory", "procurement", "cloud", "mail", "exchange", "ledger")


class LedgerEvent(StrEnum):
    """One entry type: its value is the ``type`` written in the entry.

    Members are declared as ``NAME = ("pillar.thing.happened", "What it records.",
    ("field", ...))``."""

    summary: str
    fields: tuple[str, ...]

    def __new__(cls, value: str, summary: str = "", fields: tuple[str, ...] = ()):
        member = str.__new__(cls, value)
        member._value_ = value
        member.summary = summary
        member.fields = tuple(fields)
        return member

    def allows(self, field: str) -> bool:
        return field in self.fields


def vocabularies() -> list[type[LedgerEvent]]:
    """Every pillar's enumeration, in documentation order."""
    modules = [f"sahab.{pillar}.events" for pillar in PILLARS]
    for module in modules:
        importlib.import_module(module)
    return sorted(LedgerEvent.__subclasses__(),
                  key=lambda cls: (modules.index(cls.__module__)
                                   if cls.__module__ in modules else len(modules), cls.__name__))


def markdown() -> str:
    """``docs/ledger-events.md``: one table per pillar."""
    lines = ["# Ledger events", "",
             "Every entry of sahab's public ledger has one of these types. This page is "
             "generated from the code", "(`sahab ledger events > docs/ledger-events.md`); "
             "a test fails when it is out of date.", "",
             "Every entry also carries `at` (when it was recorded), `actor` (`system`, "
             "`anonymous` or `user:<id>`:", "people never appear by name) and `subject` "
             "(what it is about, e.g. `tender:<reference>`).", ""]
    for vocabulary in vocabularies():
        pillar = vocabulary.__module__.split(".")[1]
        lines += [f"## {pillar.capitalize()}", "",
                  " ".join((vocabulary.__doc__ or "").split()), "",
                  "| type | what it records | data fields |", "| --- | --- | --- |"]
        for event in sorted(vocabulary, key=lambda e: e.value):
            fields = ", ".join(f"`{f}`" for f in event.fields) or "—"
            lines.append(f"| `{event.value}` | {event.summary} | {fields} |")
        lines.append("")
    return "\n".join(lines)
