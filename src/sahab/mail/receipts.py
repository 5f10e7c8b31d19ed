"""Receipts of registered letters as documents: their text and their offline check.

Imports nothing of Django, so that ``sahab mail verify-receipt`` runs anywhere.
"""

from __future__ import annotations

from sahab.ledger import note

RECEIPT_HEADER = "sahab registered mail receipt v1"


def receipt_text(fields: dict[str, str]) -> str:
    return RECEIPT_HEADER + "\n" + "".join(f"{k} {v}\n" for k, v in fields.items())


def verify_receipt(document: str | bytes, vkey: str) -> dict[str, str]:
    """The fields of a receipt whose signature holds; raises ``note.NoteError`` otherwise.

    Needs nothing but the document and the key: works offline.
    """
    data = document.encode() if isinstance(document, str) else document
    parsed, _signatures = note.open_note(data, [note.parse_vkey(vkey)])
    lines = parsed.text.decode().splitlines()
    if not lines or lines[0] != RECEIPT_HEADER:
        raise note.NoteError("not a sahab registered mail receipt")
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        fields[key] = value
    return fields
