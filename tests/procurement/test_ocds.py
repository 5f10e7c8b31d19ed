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
from django.test import Client

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


EXTENSIONS_DIR = Path(__file__).parent / "extensions"


@pytest.fixture(scope="module")
def extension_server(tmp_path_factory):
    """The declared extensions' schemas (the standard's shipped in tests/, sahab's own
    from the package, under own/), served on 127.0.0.1."""
    import functools
    import http.server
    import shutil
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path_factory.mktemp("extensions")
    shutil.copytree(EXTENSIONS_DIR, served, dirs_exist_ok=True)
    shutil.copytree(ocds.OWN_EXTENSIONS_DIR, served / "own")
    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


_EXTENSION_BASE = None


def _local_extensions(urls: list[str]) -> list[str]:
    """Each declared extension URL, answered by the local copy of the same commit."""
    local = []
    own = f"{settings.PUBLIC_URL.rstrip('/')}/ocds/extensions/"
    for url in urls:
        if url.startswith(own):  # sahab's own, published by sahab (from the package)
            name = url.removeprefix(own).split("/")[0]
            assert name in ocds.OWN_EXTENSIONS, url
            local.append(f"{_EXTENSION_BASE}/own/{name}/extension.json")
            continue
        name, commit = url.split("/")[4:6]
        assert ocds.EXTENSION_COMMITS[name] == commit, url
        assert (EXTENSIONS_DIR / name / "release-schema.json").exists(), name
        local.append(f"{_EXTENSION_BASE}/{name}/extension.json")
    return local


def _cove(package: dict) -> dict:
    from libcoveocds.api import ocds_json_output
    from libcoveocds.config import LibCoveOCDSConfig

    config = LibCoveOCDSConfig({"standard_zip": STANDARD_ZIP.as_uri(), "context": "api"})
    offline = {**package, "extensions": _local_extensions(package["extensions"])}
    return ocds_json_output("", json_data=offline, lib_cove_ocds_config=config,
                            schema_version="1.1")


def _package(kind: str, items: list) -> dict:
    return {**ocds.package_metadata(f"http://testserver/ocds/{kind}"), kind: items}


def test_ocds_publication_of_the_demo_year(demo, client, tmp_path, extension_server, capsys):
    """One demo load, every check: validation, records, metadata, ids, endpoints, CLI."""
    global _EXTENSION_BASE
    _EXTENSION_BASE = extension_server
    check_the_release_package_validates_with_the_standards_validator()
    check_compiled_records_validate_and_equal_the_merge_tooling()
    check_packages_declare_publisher_license_and_extensions()
    check_release_ids_are_unique_and_every_change_is_a_new_release()
    check_ocds_endpoints_page_and_stream(client)
    check_cli_export_writes_a_valid_package(tmp_path)
    check_time_never_runs_backwards_and_records_show_the_latest_state()
    check_bids_lots_enquiries_complaints_standstill_and_frameworks_are_published()
    check_parties_carry_documented_identifiers_addresses_and_contacts()
    check_red_flags_from_the_public_file_equal_the_dashboard(client, tmp_path, capsys)


def check_red_flags_from_the_public_file_equal_the_dashboard(client, tmp_path, capsys):
    """An outside monitor with only the public bulk file gets sahab's flags, flag by flag."""
    from django.core.cache import cache

    from sahab.procurement import redflags
    from sahab.procurement.cli import read_compiled_releases

    public = tmp_path / "downloaded.json.gz"
    public.write_bytes(b"".join(client.get("/ocds/releases.json.gz").streaming_content))
    capsys.readouterr()
    assert cli.main(["redflags", "--from-ocds", str(public)]) == 0
    printed = json.loads(capsys.readouterr().out)
    cache.clear()
    dashboard = redflags.current()
    assert printed == json.loads(json.dumps(redflags.as_cardinal(dashboard)))
    from_file = redflags.compute(read_compiled_releases(public))

    def seen(flags):
        return [(f.code, f.group, f.key, f.value, f.references, f.explanation) for f in flags]

    assert seen(from_file) == seen(dashboard)
    assert {f.code for f in dashboard} >= {"R003", "R018", "R028", "R036", "R044", "R058",
                                           "S01", "S03"}
    # the record package gives the same flags too
    records = tmp_path / "records.json"
    assert cli.main(["ocds", "export", "--records", "--out", str(records), "--quiet"]) == 0
    assert seen(redflags.compute(read_compiled_releases(records))) == seen(dashboard)
    page = client.get("/tenders/red-flags/").content.decode()
    assert all(f.code in page for f in dashboard)
    assert cli.main(["redflags", "--from-ocds", str(tmp_path / "missing.json")]) == 2


def check_time_never_runs_backwards_and_records_show_the_latest_state():
    """Within every ocid, ordering releases by date gives ledger order, strictly; and the
    record compiled by the standard's merge tooling shows the newest release's state."""
    from sahab.ledger.models import Entry

    by_ocid: dict[str, list[Release]] = {}
    for release in Release.objects.order_by("ledger_index"):
        by_ocid.setdefault(release.ocid, []).append(release)
    assert len(by_ocid) > 20
    at = dict(Entry.objects.values_list("index", "at"))
    for ocid_, releases in by_ocid.items():
        dates = [r.data["date"] for r in releases]
        assert dates == sorted(dates) and len(set(dates)) == len(dates), ocid_
        for r in releases:  # dated by its ledger entry (to the millisecond, or just after)
            assert ocds.release_date(at[r.ledger_index]) <= r.data["date"]
        record = ocds.compile_record([r.data for r in sorted(releases,
                                                             key=lambda r: r.data["date"])])
        latest = releases[-1].data
        compiled = record["compiledRelease"]
        assert compiled["tender"]["status"] == latest["tender"]["status"], ocid_
        for part in ("awards", "contracts"):
            assert {x["id"]: x["status"] for x in compiled.get(part, [])} == \
                {x["id"]: x["status"] for x in latest.get(part, [])}, ocid_
    complete = Tender.objects.filter(state="complete")
    assert complete.exists()
    for tender in complete:
        record = ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))
        assert record["compiledRelease"]["tender"]["status"] == "complete"


def _compiled(title_start: str) -> dict:
    tender = Tender.objects.get(title__startswith=title_start)
    return ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))["compiledRelease"]


def check_bids_lots_enquiries_complaints_standstill_and_frameworks_are_published():
    # an evaluation rejection is a disqualified bid; the others are valid
    stocks = _compiled("Logiciel de gestion des stocks")
    statuses = {d["tenderers"][0]["name"]: d["status"] for d in stocks["bids"]["details"]}
    assert statuses == {"Nabeul Conseil": "disqualified", "Bizerte Logiciels": "valid",
                        "Kairouan Systèmes": "valid"}
    # a bid's value is its price for the lot it relates to, never a sum over lots
    framework = _compiled("Accord-cadre d'hébergement")
    carthage = {d["relatedLots"][0]: d["value"]["amount"] for d in framework["bids"]["details"]
                if d["tenderers"][0]["name"] == "Carthage Cloud"}
    assert carthage == {"1": 820000.0, "2": 1100000.0, "3": 560000.0}
    assert {lot["status"] for lot in framework["tender"]["lots"]} == {"complete"}
    cancelled = _compiled("Travaux de voirie")
    assert [lot["status"] for lot in cancelled["tender"]["lots"]] == ["cancelled"]
    # questions and their answers
    servers = _compiled("Acquisition de serveurs")
    assert servers["tender"]["enquiries"][0]["answer"].startswith("Oui")
    assert servers["tender"]["hasEnquiries"] is True
    # the opening report, complaints and decisions, the standstill
    documents = {d["id"]: d for d in servers["tender"]["documents"]}
    assert documents["opening-report"]["url"].endswith("/opening/report")
    assert "opening-report.json-v1" not in documents
    licences = _compiled("Licences bureautiques")
    complaint = next(d for d in licences["tender"]["documents"]
                     if d["documentType"] == "complaints")
    assert "rejeté" in complaint["description"]
    # each complaint with its admissibility, suspension, decision and ledger indexes
    rejected, inadmissible = licences["tender"]["complaints"]
    assert rejected["type"] == "award" and rejected["relatedLots"] == ["1"]
    assert rejected["admissibility"]["outcome"] == "admitted"
    assert rejected["decision"]["outcome"] == "rejected"
    assert rejected["suspension"]["startDate"] < rejected["suspension"]["endDate"]
    assert all(isinstance(rejected[k]["ledgerIndex"], int)
               for k in ("admissibility", "decision"))
    assert inadmissible["status"] == "inadmissible" and "decision" not in inadmissible
    assert inadmissible["admissibility"]["outcome"] == "inadmissible"
    cabling = _compiled("Câblage des bureaux")
    upheld = cabling["tender"]["complaints"][0]
    assert upheld["status"] == "upheld" and upheld["remedy"] == "reevaluate"
    statuses = sorted(a["status"] for a in cabling["awards"])
    assert statuses == ["active", "cancelled"]
    assert licences["tender"]["milestones"][0]["code"] == "standstill"
    assert licences["tender"]["milestones"][0]["status"] == "met"
    # an amendment (rectificatif) with its rationale and what changed, in its own release
    renewal = _compiled("Renouvellement du parc informatique")
    [amendment] = renewal["tender"]["amendments"]
    assert amendment["id"] == "1" and "Clavier bilingue" in amendment["rationale"]
    assert "date limite de remise des offres" in amendment["description"]
    assert amendment["releaseID"] != amendment["amendsReleaseID"]
    tender = Tender.objects.get(title__startswith="Renouvellement du parc informatique")
    assert "tenderAmendment" in [r["tag"][0] for r in ocds.releases_of(ocds.ocid(tender))]
    check_committees_votes_and_explanations_are_published()
    # a call-off points to its framework agreement
    call_off = _compiled("Hébergement du portail")
    assert call_off["relatedProcesses"][0]["relationship"] == ["framework"]
    assert call_off["relatedProcesses"][0]["identifier"] == framework["ocid"]
    assert "techniques" not in call_off["tender"]
    # every payment names who paid and who was paid
    transactions = [t for c in servers["contracts"] for t in c["implementation"]["transactions"]]
    assert transactions and all(t["payer"]["id"].startswith("TN-SAHAB-") and
                                t["payee"]["id"].startswith("TN-RNE-") for t in transactions)


def check_committees_votes_and_explanations_are_published():
    """The committee, its votes and the explanations of abnormally low prices, each step
    with its ledger index; the committee only once a report is adopted."""
    from sahab.ledger.models import Entry
    from sahab.procurement.models import EvaluationReport, Explanation

    asked = Explanation.objects.filter(status="accepted").select_related(
        "bid_lot__bid__tender", "bid_lot__lot").first()
    tender = asked.bid_lot.bid.tender
    compiled = ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))["compiledRelease"]
    [explanation] = [e for e in compiled["tender"]["priceExplanations"]
                     if e["id"] == str(asked.pk)]
    assert explanation["status"] == "accepted" and explanation["rationale"] == asked.decision
    assert explanation["relatedBid"] in {d["id"] for d in compiled["bids"]["details"]}
    assert "answer" not in explanation  # its hash only: the text may hold trade secrets
    answered = json.loads(bytes(Entry.objects.get(index=explanation["answerLedgerIndex"]).body))
    assert answered["type"] == "procurement.explanation.answered"
    assert answered["data"]["sha256"] == explanation["answerSha256"]
    committee = compiled["tender"]["evaluationCommittee"]
    report = next(r for r in compiled["tender"]["evaluationReports"] if r["status"] == "adopted")
    assert report["sha256"] == tender.evaluation_reports.get(status="adopted").sha256
    approvals = [v for v in report["votes"] if v["approved"]]
    assert len(approvals) >= committee["quorum"] >= 2
    assert {v["id"] for v in report["votes"]} <= {m["id"] for m in committee["members"]}
    assert [m["role"] for m in committee["members"]].count("chair") == 1
    adopted = json.loads(bytes(Entry.objects.get(index=report["adoptionLedgerIndex"]).body))
    assert adopted["type"] == "procurement.evaluation.adopted"
    # while a report waits for the quorum, nobody outside learns who evaluates
    waiting = EvaluationReport.objects.filter(status="proposed").exclude(
        tender__evaluation_reports__status="adopted").first()
    if waiting is not None and waiting.tender.releases.exists():
        latest = ocds.releases_of(ocds.ocid(waiting.tender))[-1]
        assert "evaluationCommittee" not in latest["tender"]


def check_parties_carry_documented_identifiers_addresses_and_contacts():
    servers = _compiled("Acquisition de serveurs")
    schemes = {p["identifier"]["scheme"] for p in servers["parties"]}
    assert schemes == {"TN-RNE", "TN-SAHAB"}
    for party in servers["parties"]:
        assert party["id"] == f"{party['identifier']['scheme']}-{party['identifier']['id']}"
        if party["identifier"]["scheme"] == "TN-RNE":
            mf = party["additionalIdentifiers"][0]
            assert mf["scheme"] == "TN-MF" and mf["id"].startswith(party["identifier"]["id"])
            assert party["address"]["countryName"] == "Tunisie"
    index = Client().get("/ocds/").json()
    assert set(index["organization_identifiers"]) == {"TN-RNE", "TN-MF", "TN-SAHAB"}


def check_the_release_package_validates_with_the_standards_validator():
    package = _package("releases", list(ocds.iter_releases()))
    assert len(package["releases"]) > 100
    result = _cove(package)
    assert result["validation_errors"] == []
    assert result["extensions"]["invalid_extension"] == {}
    assert len(result["extensions"]["extensions"]) == len(ocds.EXTENSIONS)
    assert not result.get("additional_fields"), result.get("additional_fields")
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
    standard = [e for e in package["extensions"]
                if e.startswith("https://raw.githubusercontent.com/open-contracting-extensions/")]
    own = [e for e in package["extensions"] if e not in standard]
    assert all(e.endswith("/extension.json") for e in package["extensions"])
    assert {e.split("/")[4] for e in standard} == {
        "ocds_lots_extension", "ocds_bid_extension", "ocds_enquiry_extension"}
    # sahab's own extensions, served by sahab as shipped in the package
    assert own == [f"{settings.PUBLIC_URL.rstrip('/')}/ocds/extensions/{extension}/"
                   "extension.json" for extension in ("complaints", "evaluation")]
    for extension in ("complaints", "evaluation"):
        for name in ("extension.json", "release-schema.json"):
            served = Client().get(f"/ocds/extensions/{extension}/{name}")
            assert served.status_code == 200
            assert served.json() == json.loads(
                (ocds.OWN_EXTENSIONS_DIR / extension / name).read_text())
    assert Client().get("/ocds/extensions/complaints/secret.json").status_code == 404


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
    # a gzip file that clients save as it is, not JSON sent compressed
    assert bulk["Content-Type"] == "application/gzip" and not bulk.has_header("Content-Encoding")
    data = json.loads(gzip.decompress(b"".join(bulk.streaming_content)))
    assert len(data["releases"]) == Release.objects.count()


def check_cli_export_writes_a_valid_package(tmp_path):
    out = tmp_path / "records.json.gz"
    assert cli.main(["ocds", "export", "--records", "--out", str(out), "--quiet"]) == 0
    data = json.loads(gzip.decompress(out.read_bytes()))
    assert data["records"] and data["version"] == "1.1"
    assert cli.main(["ocds", "export", "--out", "/nonexistent/dir/x.json", "--quiet"]) == 2
