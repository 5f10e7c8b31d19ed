"""Receipts of registered letters as documents: their text and their offline check.

Imports nothing of Django, so that ``sahab mail verify-receipt`` runs anywhere.
"""

from __future__ import annotations

from sahab.ledger import note

RECEIPT_HEADER = "sahab registered mail receipt v1"


def receipt_text(fields: dict[str, str]) -> str:
    """One ``key value`` line per field; a value that would read as more than one line
    (any of the breaks ``str.splitlines`` knows) is refused: it could add a field."""
    for key, value in fields.items():
        if " " in key or len(f"{key} {value}".splitlines()) != 1:
            raise ValueError(f"a receipt field is one line: {key!r}")
    return RECEIPT_HEADER + "\n" + "".join(f"{k} {v}\n" for k, v in fields.items())


def verify_receipt(document: str | bytes, vkey: str) -> dict[str, str]:
    """The fields of a receipt whose signature holds; raises ``note.NoteError`` otherwise.

    Needs nothing but the document and the key: works offline.
    """
    data = document.encode() if isinstance(document, str) else document
    parsed, _signatures = note.open_note(data, [note.parse_vkey(vkey)])
    lines = parsed.text.decode().split("\n")[:-1]  # the text ends with a newline
    if not lines or lines[0] != RECEIPT_HEADER:
        raise note.NoteError("not a sahab registered mail receipt")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        if key in fields or len(line.splitlines()) != 1:
            raise note.NoteError(f"the field {key!r} is not read the same way by every reader")
        fields[key] = value
    return fields
