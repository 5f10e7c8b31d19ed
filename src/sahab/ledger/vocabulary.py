"""The ledger's event vocabulary: every entry type of every pillar, with its data fields.

Each pillar declares its entry types in one enumeration (``<pillar>/events.py``), a
subclass of :class:`LedgerEvent`; services record them through
:func:`sahab.ledger.services.record`, which refuses anything that is not a member, and
refuses data fields the member does not declare. ``docs/ledger-events.md`` is generated
from these enumerations (``sahab ledger events``) and a test keeps it current, so that
auditors read what each entry means from the same source the code records it with.

Each member also has a short title ("Tender published"), which pages show citizens in
their language instead of the type; :func:`event_title` finds it from a type.
"""

from __future__ import annotations

import functools
import importlib
from enum import StrEnum

from django.utils.translation import gettext, gettext_lazy

# The pillars that declare a vocabulary, in the order the documentation lists them.
PILLARS = ("directory", "procurement", "cloud", "mail", "exchange", "ledger")


def translatable(message: str) -> str:
    """Marks an event's title for the catalogues, as ``gettext_noop`` does, without
    needing settings: the documentation is written by a tool that runs without an
    installation."""
    return message


class LedgerEvent(StrEnum):
    """One entry type: its value is the ``type`` written in the entry.

    Members are declared as ``NAME = ("pillar.thing.happened", "What it records.",
    ("field", ...), _("Thing happened"))``, where ``_`` is :func:`translatable`: the title
    is a message of the catalogues, translated when it is shown (``label``), and stays
    English in the documentation (``label_en``). (``title`` would hide ``str.title``.)"""

    summary: str
    fields: tuple[str, ...]
    label_en: str

    def __new__(cls, value: str, summary: str = "", fields: tuple[str, ...] = (),
                label: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.summary = summary
        member.fields = tuple(fields)
        member.label_en = label
        return member

    @property
    def label(self):
        """The title in the active language (lazily: it may be read before a request)."""
        return gettext_lazy(self.label_en) if self.label_en else self.value

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


@functools.cache
def _by_type() -> dict[str, LedgerEvent]:
    return {event.value: event for vocabulary in vocabularies() for event in vocabulary}


def event_of(type_string: str) -> LedgerEvent | None:
    """The member whose entries have this type; a procurement step's type (the event
    without its ``procurement.`` prefix, e.g. ``tender.published``) finds its member too."""
    known = _by_type()
    return known.get(type_string) or known.get(f"procurement.{type_string}")


def event_title(type_string: str) -> str:
    """The title of an entry type in the active language; an unknown type (an entry
    written before its event was renamed, say) is shown as it is."""
    event = event_of(str(type_string))
    if event is None or not event.label_en:
        return str(type_string)
    return gettext(event.label_en)


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
                  "| type | title | what it records | data fields |",
                  "| --- | --- | --- | --- |"]
        for event in sorted(vocabulary, key=lambda e: e.value):
            fields = ", ".join(f"`{f}`" for f in event.fields) or "—"
            lines.append(f"| `{event.value}` | {event.label_en} | {event.summary} | {fields} |")
        lines.append("")
    return "\n".join(lines)
