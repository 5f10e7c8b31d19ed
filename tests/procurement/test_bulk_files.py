"""The OCDS bulk files: written by the worker, served as files, their digest on the ledger."""

import gzip
import hashlib
import json

import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.test import Client

from sahab import cli
from sahab.ledger import services as ledger
from sahab.procurement import bulkfiles, ocds, tasks
from sahab.procurement.models import OcdsBulkFile, Release

from .conftest import publish, tender_payload


def _get(path: str, **headers):
    return Client().get(path, **headers)


def _body(response) -> bytes:
    if isinstance(response, StreamingHttpResponse | FileResponse):
        return b"".join(response.streaming_content)
    return response.content


def _package(response) -> dict:
    return json.loads(gzip.decompress(_body(response)))


def _publish_another(world) -> None:
    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(title="Réseau")).json()["reference"]
    assert publish(officer, ref).status_code == 200


def _recorded(built: OcdsBulkFile) -> dict:
    """What the ledger says was published, as a verifier reads it: proven in the tree."""
    return ledger.proven_entries([built.ledger_index], signed=False)[built.ledger_index]["data"]


def test_before_any_file_is_written_the_download_streams_from_the_database(
        published_tender):
    response = _get("/ocds/releases.json.gz")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert not response.has_header("Repr-Digest")
    assert len(_package(response)["releases"]) == Release.objects.count() > 0


def test_the_written_file_is_sent_with_the_digest_the_ledger_recorded(
        published_tender, django_assert_max_num_queries, settings):
    built = bulkfiles.build("releases")
    with django_assert_max_num_queries(1):  # the file's row: no release is read
        response = _get("/ocds/releases.json.gz")
    assert isinstance(response, FileResponse)
    body = _body(response)
    sha = hashlib.sha256(body).hexdigest()
    assert sha == built.sha256 == _recorded(built)["sha256"]
    assert response["Repr-Digest"] == bulkfiles.repr_digest(sha)
    assert response["ETag"] == f'"{sha}"'
    assert int(response["Sahab-Ledger-Index"]) == built.ledger_index
    assert response["Content-Type"] == "application/gzip"
    assert 'filename="sahab-releases.json.gz"' in response["Content-Disposition"]
    package = json.loads(gzip.decompress(body))
    assert package["releases"] == list(Release.objects.order_by("ledger_index")
                                       .values_list("data", flat=True))
    assert package["uri"] == settings.PUBLIC_URL.rstrip("/") + "/ocds/releases.json.gz"
    assert _recorded(built)["items"] == len(package["releases"])
    # an unchanged file is not sent again
    again = _get("/ocds/releases.json.gz", HTTP_IF_NONE_MATCH=f'"{sha}"')
    assert again.status_code == 304 and not again.content


def test_the_file_stops_at_its_release_and_is_rewritten_only_after_new_releases(
        world, published_tender):
    first = bulkfiles.build("releases")
    old_path = first.path()
    _publish_another(world)
    assert Release.objects.count() > first.items
    # until the worker writes the next one, the download is the file as it was published
    assert len(_package(_get("/ocds/releases.json.gz"))["releases"]) == first.items
    size = ledger.tree_size()
    written = tasks.publish_bulk_files.call()
    releases = OcdsBulkFile.objects.get(kind="releases")
    assert written["releases"] == releases.up_to == bulkfiles.latest_release_index()
    assert releases.items == Release.objects.count() and releases.sha256 != first.sha256
    assert not old_path.exists() and releases.path().exists()
    # the worker's next turn finds nothing new: no file, no entry
    assert ledger.tree_size() == size + 2  # one for each kind
    tasks.publish_bulk_files.call()
    assert ledger.tree_size() == size + 2


def test_the_records_file_holds_the_records_the_database_compiles(world, published_tender):
    _publish_another(world)
    built = bulkfiles.build("records")
    records = _package(_get("/ocds/records.json.gz"))["records"]
    assert records == list(ocds.iter_records())
    assert built.items == len(records) == Release.objects.values("ocid").distinct().count()


def test_a_file_altered_on_disk_no_longer_matches_the_ledger(published_tender):
    """An operator with root edits the published file: what the visitors then get is not
    what the ledger recorded, which any of them can check."""
    built = bulkfiles.build("releases")
    package = json.loads(gzip.decompress(built.path().read_bytes()))
    package["releases"][0]["tender"]["title"] = "Tout autre chose"
    built.path().write_bytes(gzip.compress(json.dumps(package).encode()))
    served = _body(_get("/ocds/releases.json.gz"))
    assert hashlib.sha256(served).hexdigest() != _recorded(built)["sha256"]


def test_a_file_altered_on_disk_and_in_its_row_is_recorded_and_written_again(
        published_tender, caplog):
    """The operator who edits the published file also sets its row's digest to match, so
    the download's Repr-Digest agrees with the row. The worker compares the file with the
    ledger entry that published it instead: the alteration is recorded on the ledger and
    the file written again from the database."""
    built = bulkfiles.build("releases")
    package = json.loads(gzip.decompress(built.path().read_bytes()))
    package["releases"][0]["tender"]["title"] = "Tout autre chose"
    altered = gzip.compress(json.dumps(package).encode())
    built.path().write_bytes(altered)
    OcdsBulkFile.objects.filter(pk=built.pk).update(sha256=hashlib.sha256(altered).hexdigest(),
                                                    size=len(altered))
    before = ledger.tree_size()
    rebuilt = bulkfiles.build("releases")
    found = [json.loads(bytes(e.body)) for e in ledger.entries_about("ocds:releases")
             if e.index >= before]
    assert [e["type"] for e in found] == ["procurement.ocds.bulk_altered",
                                          "procurement.ocds.bulk_published"]
    assert found[0]["data"] == {
        "file": built.filename, "found_sha256": hashlib.sha256(altered).hexdigest(),
        "recorded_index": built.ledger_index, "recorded_sha256": built.sha256}
    served = _body(_get("/ocds/releases.json.gz"))
    assert hashlib.sha256(served).hexdigest() == _recorded(rebuilt)["sha256"]
    assert b"Tout autre chose" not in gzip.decompress(served)
    assert "not to the" in caplog.text
    assert bulkfiles.build("releases").pk == rebuilt.pk and ledger.tree_size() == before + 2


@pytest.mark.parametrize("name", ["{home}/keys/ledger-ed25519.pem", "/dev/zero",
                                  "../keys/ledger-ed25519.pem"])
def test_a_row_naming_another_file_is_never_opened(published_tender, sahab_home, name):
    """A database writer sets the row's file name to the log's private key, or to a file
    that never ends: the download streams from the database instead of sending it, and
    the worker writes the file again rather than reading it."""
    built = bulkfiles.build("releases")
    OcdsBulkFile.objects.filter(pk=built.pk).update(filename=name.format(home=sahab_home))
    response = _get("/ocds/releases.json.gz")
    assert isinstance(response, StreamingHttpResponse)
    assert len(_package(response)["releases"]) == Release.objects.count()
    rebuilt = bulkfiles.build("releases")
    assert rebuilt.path() is not None and rebuilt.filename.startswith("sahab-releases-")
    assert isinstance(_get("/ocds/releases.json.gz"), FileResponse)


def test_a_row_kept_up_to_date_by_hand_does_not_stop_the_next_file(world, published_tender):
    """A database writer keeps the row's last release at the newest one: the worker reads
    the extent from the ledger's last publication, so it still writes the new file."""
    built = bulkfiles.build("releases")
    _publish_another(world)
    newest = bulkfiles.latest_release_index()
    OcdsBulkFile.objects.filter(pk=built.pk).update(up_to=newest)
    rebuilt = bulkfiles.build("releases")
    assert rebuilt.ledger_index > built.ledger_index
    assert _recorded(rebuilt)["releases_up_to"] == newest


def test_a_file_this_server_cannot_read_is_streamed_from_the_database(published_tender,
                                                                      caplog):
    built = bulkfiles.build("releases")
    built.path().unlink()
    response = _get("/ocds/releases.json.gz")
    assert isinstance(response, StreamingHttpResponse) and not response.has_header("ETag")
    assert len(_package(response)["releases"]) == Release.objects.count()
    assert "missing" in caplog.text
    # the worker's next turn writes it again
    assert bulkfiles.build("releases").path().exists()


def test_the_index_describes_the_files_written(published_tender):
    assert _get("/ocds/").json()["bulk_files"] == {}
    written = {b.kind: b for b in bulkfiles.publish()}
    described = _get("/ocds/").json()["bulk_files"]
    assert set(described) == {"releases", "records"}
    assert described["records"]["sha256"] == written["records"].sha256
    assert described["releases"]["releases_up_to"] == written["releases"].up_to


def test_the_command_writes_both_files(published_tender, capsys):
    assert cli.main(["ocds", "publish-bulk", "--quiet"]) == 0
    out = capsys.readouterr().out
    for built in OcdsBulkFile.objects.all():
        assert built.sha256 in out and built.path().exists()


def test_the_command_says_when_the_folder_cannot_be_written(published_tender, settings,
                                                            tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.OCDS_BULK_DIR = str(blocker / "ocds")
    assert cli.main(["ocds", "publish-bulk", "--quiet"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert not OcdsBulkFile.objects.exists()


@pytest.mark.parametrize("kind", ["releases", "records"])
def test_an_empty_platform_publishes_empty_packages(db, sahab_home, kind):
    from sahab.core import keys

    keys.ensure_ledger_key()
    built = bulkfiles.build(kind)
    assert built.items == 0 and built.up_to == -1
    assert _package(_get(f"/ocds/{kind}.json.gz"))[kind] == []


@pytest.mark.django_db(transaction=True)
def test_a_build_beside_another_waits_for_it_and_keeps_its_file(world, published_tender):
    """Before: the command run beside the worker's turn could remove the file the other
    build had just made current (each removes the files older than its own), and the
    download fell back to streaming until the next turn. Now the second build waits for
    the first, then finds the file current."""
    import fcntl
    import os
    import threading

    from django.db import connection

    first = bulkfiles.build("releases")
    _publish_another(world)
    outcome: dict = {}

    def second_build():
        try:
            outcome["built"] = bulkfiles.build("releases")
        finally:
            connection.close()

    lock = os.open(bulkfiles.bulk_folder() / ".sahab-build.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # a build in progress
    try:
        waiting = threading.Thread(target=second_build, daemon=True)
        waiting.start()
        waiting.join(1)
        assert waiting.is_alive(), "the second build did not wait for the first"
        made_meanwhile = bulkfiles._build("releases", None)  # the build holding the lock
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    waiting.join(30)
    assert made_meanwhile.up_to > first.up_to
    assert outcome["built"].filename == made_meanwhile.filename  # found current, not redone
    assert ledger.entries_about("ocds:releases").count() == 2
    assert made_meanwhile.path().is_file() and first.path() is None
    assert isinstance(_get("/ocds/releases.json.gz"), FileResponse)
