"""Each process's compiled release, kept in the transaction of its releases: the red flags
and the records file read it instead of merging every process again."""

import datetime as dt

import ocdsmerge
import pytest

from sahab.procurement import ocds, redflags
from sahab.procurement.models import CompiledRelease, Release

from .conftest import publish, tender_payload


def _merged(ocid: str, up_to: int | None = None) -> dict:
    releases = Release.objects.filter(ocid=ocid).order_by("ledger_index")
    if up_to is not None:
        releases = releases.filter(ledger_index__lte=up_to)
    return ocdsmerge.Merger(ocds.release_schema()).create_compiled_release(
        list(releases.values_list("data", flat=True)))


def _published_twice(world):
    """A tender published, then amended: two releases of one process."""
    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(officer, ref).status_code == 200
    first = Release.objects.order_by("-ledger_index").first()
    tender = first.tender
    later = (tender.submission_deadline + dt.timedelta(days=5)).isoformat()
    amended = officer.call("post", f"/tenders/{ref}/amendments",
                           {"rationale": "Délai prolongé.", "submission_deadline": later})
    assert amended.status_code == 201, amended.content
    assert Release.objects.filter(ocid=first.ocid).count() >= 2
    return first


def test_every_step_keeps_its_process_compiled_as_the_merge_tooling_compiles_it(world):
    first = _published_twice(world)
    kept = CompiledRelease.objects.get(ocid=first.ocid)
    assert kept.up_to == Release.objects.filter(ocid=first.ocid).order_by(
        "-ledger_index").values_list("ledger_index", flat=True).first()
    assert kept.data == _merged(first.ocid)
    assert [a["rationale"] for a in kept.data["tender"]["amendments"]] == ["Délai prolongé."]
    assert ocds.compiled_are_current()
    assert list(ocds.iter_compiled_releases()) == [
        r["compiledRelease"] for r in ocds.iter_records()]


def test_a_record_up_to_an_earlier_release_is_merged_from_those_releases(world):
    first = _published_twice(world)
    (record,) = [r for r in ocds.iter_records(up_to=first.ledger_index)
                 if r["ocid"] == first.ocid]
    assert len(record["releases"]) == 1
    assert record["compiledRelease"] == _merged(first.ocid, first.ledger_index)
    assert "amendments" not in record["compiledRelease"]["tender"]


def test_compiling_everything_again_gives_what_the_steps_kept(world):
    _published_twice(world)
    kept = dict(CompiledRelease.objects.values_list("ocid", "data"))
    assert ocds.compile_all() == len(kept)
    assert dict(CompiledRelease.objects.values_list("ocid", "data")) == kept


def test_a_release_written_around_the_steps_is_not_missed_by_the_red_flags(world):
    """A release inserted without its compiled release (a bulk load, a hand edit) makes the
    kept ones stale: the red flags merge from the releases instead of reading them."""
    first = _published_twice(world)
    changed = dict(first.data, date="2099-01-01T00:00:00Z", id=first.release_id + "-x",
                   tender=dict(first.data["tender"], title="Inséré à la main"))
    Release.objects.create(ocid=first.ocid, release_id=first.release_id + "-x",
                           tender=first.tender, date=first.date, tags=first.tags,
                           data=changed, ledger_index=first.ledger_index + 10_000)
    assert not ocds.compiled_are_current()
    (compiled,) = [c for c in redflags.compiled_releases() if c["ocid"] == first.ocid]
    assert compiled == _merged(first.ocid)
    assert compiled["tender"]["title"] == "Inséré à la main"


@pytest.fixture(autouse=True)
def _world_home(sahab_home):
    return sahab_home
