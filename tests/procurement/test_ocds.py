"""OCDS publication from the demo year: validation with the standard's own validator,
records equal to the standard's merge tooling, immutable releases, paging, bulk."""

import gzip
import json
import socket
import zipfile
from pathlib import Path

import jsonschema
import ocdsmerge
import pytest
from django.conf import settings

from sahab import cli
from sahab.core import keys
from sahab.core.demo import load_demo
from sahab.procurement import ocds
from sahab.procurement.models import Release, Tender

# The OCDS 1.1.5 standard repository (as libcoveocds takes it), copied from shared/ocds.
STANDARD_ZIP = Path(__file__).parent / "standard-1__1__5.zip"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """The validator must work offline: any connection beyond this machine is a failure."""
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not host.startswith(("127.", "::1", "localhost", "/")):
            raise AssertionError(f"network access to {address} during an offline test")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def demo(db, sahab_home):
    """The demo year, loaded for each test that needs it (about seven seconds)."""
    from sahab.ledger import services as ledger

    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    ledger._signer.cache_clear()
    load_demo()


def _schema(name: str) -> dict:
    with zipfile.ZipFile(STANDARD_ZIP) as archive:
        member = next(n for n in archive.namelist() if n.endswith(f"schema/{name}"))
        return json.loads(archive.read(member))


def _local_registry():
    """References to the standard's schema URLs, answered from the local zip."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str):
        return Resource.from_contents(_schema(uri.rsplit("/", 1)[-1]),
                                      default_specification=DRAFT4)

    return Registry(retrieve=retrieve)


def _cove(package: dict) -> dict:
    from libcoveocds.api import ocds_json_output
    from libcoveocds.config import LibCoveOCDSConfig

    config = LibCoveOCDSConfig({"standard_zip": STANDARD_ZIP.as_uri(), "context": "api"})
    offline = {k: v for k, v in package.items() if k != "extensions"}  # cannot be fetched
    return ocds_json_output("", json_data=offline, lib_cove_ocds_config=config,
                            schema_version="1.1")


def _package(kind: str, items: list) -> dict:
    return {**ocds.package_metadata(f"http://testserver/ocds/{kind}"), kind: items}


def test_ocds_publication_of_the_demo_year(demo, client, tmp_path):
    """One demo load, every check: validation, records, metadata, ids, endpoints, CLI."""
    check_the_release_package_validates_with_the_standards_validator()
    check_compiled_records_validate_and_equal_the_merge_tooling()
    check_packages_declare_publisher_license_and_extensions()
    check_release_ids_are_unique_and_every_change_is_a_new_release()
    check_ocds_endpoints_page_and_stream(client)
    check_cli_export_writes_a_valid_package(tmp_path)


def check_the_release_package_validates_with_the_standards_validator():
    package = _package("releases", list(ocds.iter_releases()))
    assert len(package["releases"]) > 100
    result = _cove(package)
    assert result["validation_errors"] == []
    assert result.get("additional_closed_codelist_values", {}) == {}
    assert result.get("additional_checks", {}) == {}, result.get("additional_checks")


def check_compiled_records_validate_and_equal_the_merge_tooling():
    from sahab.procurement.models import PlanItem

    records = list(ocds.iter_records())
    untendered = PlanItem.objects.filter(tender__isnull=True).count()
    assert len(records) == Tender.objects.exclude(published_at=None).count() + untendered
    compiled = [r["compiledRelease"] for r in records]
    result = _cove(_package("releases", compiled))
    assert result["validation_errors"] == []
    merger = ocdsmerge.Merger(_schema("release-schema.json"))
    for record in records:
        assert record["compiledRelease"] == merger.create_compiled_release(record["releases"])
    # the record package against its schema, remote references resolved from the local zip
    validator = jsonschema.Draft4Validator(_schema("record-package-schema.json"),
                                           registry=_local_registry())
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator.iter_errors(_package("records", records))]
    assert errors == []


def check_packages_declare_publisher_license_and_extensions():
    package = ocds.package_metadata("http://testserver/ocds/releases")
    assert package["version"] == "1.1" and package["license"].startswith("https://")
    assert package["publisher"]["name"]
    assert all(e.startswith("https://raw.githubusercontent.com/open-contracting-extensions/")
               and e.endswith("/extension.json") for e in package["extensions"])
    assert {e.split("/")[4] for e in package["extensions"]} == {
        "ocds_lots_extension", "ocds_bid_extension"}


def check_release_ids_are_unique_and_every_change_is_a_new_release():
    ids = list(Release.objects.values_list("release_id", flat=True))
    assert len(ids) == len(set(ids))
    assert all(i.startswith(settings.OCDS_PREFIX + "-") for i in ids)
    planned = Tender.objects.get(title__startswith="Licences")
    record = ocds.compile_record(ocds.releases_of(ocds.ocid(planned)))
    assert [r["tag"] for r in record["releases"]][:2] == [["planning"], ["tender"]]
    assert record["compiledRelease"]["planning"]["budget"]["description"] == "Titre II"
    tender = Tender.objects.get(state="complete", procedure="open", title__startswith="Acq")
    tags = [t for r in tender.releases.all() for t in r.tags]
    assert tags[0] == "tender" and {"award", "contract", "implementation"} <= set(tags)
    first = tender.releases.first()
    assert "awards" not in first.data  # the first release is never rewritten by later steps


def check_ocds_endpoints_page_and_stream(client):
    index = client.get("/ocds/").json()
    assert index["ocid_prefix"] == settings.OCDS_PREFIX
    page = client.get("/ocds/releases").json()
    assert len(page["releases"]) == 100 and page["links"]["next"].endswith("?page=2")
    records = client.get("/ocds/records").json()
    ocid = records["records"][0]["ocid"]
    one = client.get(f"/ocds/records/{ocid}").json()
    assert one["records"][0]["compiledRelease"]["ocid"] == ocid
    assert client.get("/ocds/records/ocds-nothing-here").status_code == 404
    assert client.get("/ocds/releases?page=0").status_code == 422
    bulk = client.get("/ocds/releases.json.gz")
    data = json.loads(gzip.decompress(b"".join(bulk.streaming_content)))
    assert len(data["releases"]) == Release.objects.count()


def check_cli_export_writes_a_valid_package(tmp_path):
    out = tmp_path / "records.json.gz"
    assert cli.main(["ocds", "export", "--records", "--out", str(out), "--quiet"]) == 0
    data = json.loads(gzip.decompress(out.read_bytes()))
    assert data["records"] and data["version"] == "1.1"
    assert cli.main(["ocds", "export", "--out", "/nonexistent/dir/x.json", "--quiet"]) == 2
