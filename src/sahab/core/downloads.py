"""Any table of the portal as CSV or JSON (``?format=csv`` / ``?format=json``)."""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpResponse

FORMATS = ("csv", "json")


def wants_download(request) -> str | None:
    fmt = request.GET.get("format")
    return fmt if fmt in FORMATS else None


def table_response(fmt: str, name: str, rows: list[dict]) -> HttpResponse:
    if fmt == "json":
        response = HttpResponse(json.dumps(rows, ensure_ascii=False, indent=1),
                                content_type="application/json")
    else:
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sahab-{name}.{fmt}"'
    response["Access-Control-Allow-Origin"] = "*"
    return response
