"""Any table of the portal as CSV or JSON (``?format=csv`` / ``?format=json``), and the
two rules every download follows (OWASP ASVS 5.3, 12.5):

- a CSV cell that a spreadsheet would run as a formula (``= + - @``, tab, CR) is
  neutralised with a leading apostrophe, unless it is a plain number;
- the file name goes into ``Content-Disposition`` through Django's own encoder, so that
  no quote, CR or LF in a stored name can rewrite the header.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value):
    """``value``, or, for text a spreadsheet would evaluate, the text behind an apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and \
            not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_safe_row(row: dict) -> dict:
    return {key: csv_safe(value) for key, value in row.items()}


def attach(response: HttpResponse, filename: str, *, as_attachment: bool = True) -> HttpResponse:
    """Set ``Content-Disposition`` for ``filename``, encoded by Django (RFC 6266/5987)."""
    # control characters (CR, LF, tab) would make the header invalid: a name stored before
    # uploads were checked still downloads, under a name without them
    filename = "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in filename or "")
    response["Content-Disposition"] = content_disposition_header(as_attachment,
                                                                 filename or "download")
    return response

FORMATS = ("csv", "json")


def wants_download(request) -> str | None:
    fmt = request.GET.get("format")
    return fmt if fmt in FORMATS else None


def table_response(fmt: str, name: str, rows: list[dict]) -> HttpResponse:
    """A table that is already in memory, as one CSV or JSON file ``sahab-<name>``."""
    return _labelled(HttpResponse("".join(encoded_table(fmt, rows)),
                                  content_type=_CONTENT_TYPES[fmt]), name, fmt)


def streamed_table_response(fmt: str, name: str, rows: Iterable[dict]
                            ) -> StreamingHttpResponse:
    """A table of any length, encoded as its rows come (from a database cursor, say):
    the server never holds the whole file."""
    return _labelled(StreamingHttpResponse(encoded_table(fmt, rows),
                                           content_type=_CONTENT_TYPES[fmt]), name, fmt)


_CONTENT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def encoded_table(fmt: str, rows: Iterable[dict]) -> Iterator[str]:
    """``rows`` as CSV (a header from the first row's keys; no rows, no header) or as a
    JSON array, piece by piece."""
    if fmt == "json":
        yield "["
        for n, row in enumerate(rows):
            yield ("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False)
        yield "\n]"
        return
    out = io.StringIO()
    writer = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(csv_safe_row(row))
        if out.tell() > 64 * 1024:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _labelled(response, name: str, fmt: str):
    attach(response, f"sahab-{name}.{fmt}")
    response["Access-Control-Allow-Origin"] = "*"
    return response
