"""/ocds/: releases and records as OCDS packages, paged, and streamed bulk downloads."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_GET

from sahab.core.problems import problem_response
from sahab.procurement import bulkfiles, ocds
from sahab.procurement.models import Release

PAGE = 100


def _page(request) -> int | None:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 10 and int(raw) > 0 else None


def _json(data: dict) -> JsonResponse:
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False})
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=30"
    return response


@require_GET
def index(request):
    base = request.build_absolute_uri("/ocds/")
    return _json({
        "publisher": ocds.publisher(), "license": ocds.package_metadata("")["license"],
        "ocid_prefix": settings.OCDS_PREFIX,
        "extensions": ocds.EXTENSIONS,
        "organization_identifiers": ocds.IDENTIFIER_SCHEMES,
        "releases": f"{base}releases", "records": f"{base}records",
        "bulk": {"releases": f"{base}releases.json.gz", "records": f"{base}records.json.gz"},
        # what each bulk URL sends now (absent: streamed live, no file written yet)
        "bulk_files": {built.kind: {"sha256": built.sha256, "bytes": built.size,
                                    "items": built.items, "releases_up_to": built.up_to,
                                    "ledger_index": built.ledger_index,
                                    "written_at": built.built_at.isoformat()}
                       for built in bulkfiles.written()},
    })


@require_GET
def releases(request):
    page = _page(request)
    if page is None:
        return problem_response(422, "Invalid input", "page is a positive integer.")
    qs = Release.objects.order_by("ledger_index")
    rows = list(qs.values_list("data", flat=True)[(page - 1) * PAGE:page * PAGE + 1])
    package = ocds.package_metadata(request.build_absolute_uri())
    package["releases"] = rows[:PAGE]
    if len(rows) > PAGE:
        package["links"] = {"next": request.build_absolute_uri(f"?page={page + 1}")}
    return _json(package)


@require_GET
def records(request):
    page = _page(request)
    if page is None:
        return problem_response(422, "Invalid input", "page is a positive integer.")
    ocids = list(Release.objects.order_by("ocid").values_list("ocid", flat=True).distinct()
                 [(page - 1) * PAGE:page * PAGE + 1])
    package = ocds.package_metadata(request.build_absolute_uri())
    package["records"] = [ocds.compile_record(ocds.releases_of(o)) for o in ocids[:PAGE]]
    if len(ocids) > PAGE:
        package["links"] = {"next": request.build_absolute_uri(f"?page={page + 1}")}
    return _json(package)


@require_GET
def record(request, ocid: str):
    releases_ = ocds.releases_of(ocid)
    if not releases_:
        return problem_response(404, "Not found", f"No contracting process {ocid}.")
    package = ocds.package_metadata(request.build_absolute_uri())
    package["records"] = [ocds.compile_record(releases_)]
    return _json(package)


@require_GET
def bulk(request, kind: str):
    """The whole data set as a gzip file: the one the worker last wrote, or, before it
    wrote one, streamed from the database (constant memory)."""
    built = bulkfiles.current(kind)
    if built is None:
        response = StreamingHttpResponse(
            bulkfiles.gzipped_package(kind, ocds.package_items(kind),
                                      request.build_absolute_uri()),
            content_type="application/gzip")
    else:
        etag, modified = f'"{built.sha256}"', built.built_at.timestamp()
        response = get_conditional_response(request, etag=etag, last_modified=modified)
        if response is None:
            response = FileResponse(built.path().open("rb"), content_type="application/gzip")
            response["Repr-Digest"] = bulkfiles.repr_digest(built.sha256)
            # the ledger entry that recorded this digest, and the file's extent
            response["Sahab-Ledger-Index"] = str(built.ledger_index)
            response["Sahab-Releases-Up-To"] = str(built.up_to)
        response["ETag"] = etag
        response["Last-Modified"] = http_date(modified)
        response["Cache-Control"] = "public, max-age=300"
    # A gzip file, not a compressed transfer of JSON: clients save what they receive.
    response["Content-Disposition"] = f'attachment; filename="sahab-{kind}.json.gz"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def extension(request, name: str, filename: str):
    """sahab's own OCDS extensions (``ocds.OWN_EXTENSIONS``): their metadata and schemas."""
    from django.http import Http404

    if name not in ocds.OWN_EXTENSIONS or filename not in ("extension.json",
                                                           "release-schema.json"):
        raise Http404
    import json

    return _json(json.loads((ocds.OWN_EXTENSIONS_DIR / name / filename).read_text()))
