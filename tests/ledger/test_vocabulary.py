"""One typed event vocabulary: every entry type of every pillar is a member of its pillar's
enumeration, recorded through one helper, documented in docs/ledger-events.md."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

from sahab.ledger import services, vocabulary
from sahab.ledger.events import LedgerOwnEvent

SRC = Path(__file__).resolve().parents[2] / "src" / "sahab"
DOC = SRC.parents[1] / "docs" / "ledger-events.md"
RECORDERS = {"record", "_record", "_step"}  # the helper, and the pillars' thin wrappers


def _calls(name: str):
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield path.relative_to(SRC), node


def test_the_documentation_is_generated_from_the_vocabularies():
    assert DOC.read_text() == vocabulary.markdown() + "\n", (
        "docs/ledger-events.md is out of date: sahab ledger events > docs/ledger-events.md")


def test_every_type_is_unique_and_named_after_its_pillar():
    seen = {}
    for cls in vocabulary.vocabularies():
        pillar = cls.__module__.split(".")[1]
        for event in cls:
            assert event.value.startswith(pillar + ".") or event.value == f"{pillar}.message"
            assert event.value not in seen, f"{event.value} in {cls} and {seen[event.value]}"
            assert event.summary, f"{event.value} says nothing about what it records"
            seen[event.value] = cls


def test_every_event_has_a_short_title_of_its_own():
    titles = {}
    for cls in vocabulary.vocabularies():
        for event in cls:
            assert event.label_en, f"{event.value} has no title to show instead of its type"
            assert len(event.label_en) <= 60 and not event.label_en.endswith(".")
            assert event.label_en not in titles, (
                f"{event.value} and {titles[event.label_en]} read the same")
            titles[event.label_en] = event.value


def test_every_title_reads_in_french_and_in_arabic():
    """The titles are what citizens read on the pages: each one is in the catalogues."""
    untranslated = []
    for cls in vocabulary.vocabularies():
        for event in cls:
            with translation.override("fr"):
                french = str(event.label)
            with translation.override("ar"):
                arabic = vocabulary.event_title(event.value)
            if french == event.label_en:
                untranslated.append(f"{event.value} fr: {french}")
            if not re.search("[\u0621-\u064a]", arabic):
                untranslated.append(f"{event.value} ar: {arabic}")
    assert untranslated == []


@translation.override("en")
def test_a_title_is_found_from_the_type_or_the_step_and_unknown_types_stay_as_they_are():
    assert vocabulary.event_title("procurement.tender.published") == "Tender published"
    assert vocabulary.event_title("tender.published") == "Tender published"
    assert vocabulary.event_title("evaluation.adopted") == "Evaluation report adopted"
    assert vocabulary.event_title("cloud.order.placed") == "Cloud order placed"
    assert vocabulary.event_title("tender.teleported") == "tender.teleported"
    assert vocabulary.event_title("") == ""


def test_no_pillar_writes_a_bare_string_type_or_around_the_helper():
    """Outside the ledger's own module, entries are written by ``record`` (or a pillar's
    wrapper of it) with a vocabulary member; ``append``/``Record`` take members too."""
    offenders = []
    for path, node in _calls("append"):
        kwargs = {k.arg for k in node.keywords}
        if "type" in kwargs and str(path) != "ledger/services.py":
            offenders.append(f"{path}:{node.lineno} appends around record()")
    for path, node in _calls("Record"):
        first = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg == "type"), None)
        if isinstance(first, ast.Constant | ast.JoinedStr):
            offenders.append(f"{path}:{node.lineno} records a bare string type")
    for name in RECORDERS:
        for path, node in _calls(name):
            for argument in [*node.args[:2], *(k.value for k in node.keywords)]:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str) and \
                        "." in argument.value and argument.value.split(".")[0] in (
                            *vocabulary.PILLARS, "tender", "bid", "order", "agent"):
                    offenders.append(f"{path}:{node.lineno} passes {argument.value!r}")
    assert offenders == []


def test_every_literal_data_field_is_declared():
    """Where a call site spells its data out (a dict literal or keyword arguments), each
    field is one its member declares — so the documentation lists what entries carry."""
    members = {f"{cls.__name__}.{event.name}": event for cls in vocabulary.vocabularies()
               for event in cls}
    undeclared = []
    for name in RECORDERS:
        for path, node in _calls(name):
            events = [ast.unparse(a) for a in ast.walk(node)
                      if isinstance(a, ast.Attribute) and ast.unparse(a) in members]
            if not events:
                continue
            fields = [k.arg for k in node.keywords if k.arg]
            fields += [k.value for a in node.args if isinstance(a, ast.Dict)
                       for k in a.keys if isinstance(k, ast.Constant)]
            for event in events:
                undeclared += [f"{path}:{node.lineno} {event}.{f}" for f in fields
                               if f not in ("at", "publish") and not members[event].allows(f)]
    assert undeclared == []


@pytest.mark.django_db
def test_record_refuses_strings_and_undeclared_fields_before_writing_anything():
    size = services.tree_size()
    with pytest.raises(TypeError, match="not an event"):
        services.record("ledger.witness.changed", "witness:x", "system", url="http://x")
    with pytest.raises(TypeError, match="declares no field price"):
        services.record(LedgerOwnEvent.WITNESS_CHANGED, "witness:x", "system", price=1)
    assert services.tree_size() == size
    appended = services.record(LedgerOwnEvent.WITNESS_CHANGED, "witness:x", "system",
                               active=False)
    from sahab.ledger.models import Entry

    entry = Entry.objects.get(index=appended.index)
    assert (entry.type, entry.subject, entry.actor) == (
        "ledger.witness.changed", "witness:x", "system")
