"""Checks on uploaded documents: size, a content that matches its name, and the
antivirus the operator configured (``SAHAB_UPLOAD_SCANNER``)."""

from __future__ import annotations

import hashlib
import logging
import shlex
import subprocess
from pathlib import PurePath

import filetype
from django.conf import settings

from sahab.core.errors import Conflict, CoreError, InvalidInput

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# Characters that have no place in a file name and could break a header or a path.
_NAME_FORBIDDEN = '"<>:*?|;'
# Extension → the media types its content may have (sniffed from the bytes, not trusted
# from the client). Office files are ZIP containers.
ALLOWED = {
    ".pdf": {"application/pdf"},
    ".png": {"image/png"},
    ".jpg": {"image/jpeg"},
    ".jpeg": {"image/jpeg"},
    ".docx": {"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              "application/zip"},
    ".xlsx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              "application/zip"},
    ".odt": {"application/vnd.oasis.opendocument.text", "application/zip"},
    ".ods": {"application/vnd.oasis.opendocument.spreadsheet", "application/zip"},
    ".zip": {"application/zip"},
}


def check_document(name: str, content: bytes) -> tuple[str, str]:
    """Refuse oversized, empty or disguised files; returns (media type, SHA-256)."""
    clean = PurePath(name or "").name
    if not clean or clean != name or len(name) > 200 or any(c in name for c in "\\\x00"):
        raise InvalidInput(CoreError.DOCUMENT_NAME_NOT_PLAIN, name=repr(name))
    if name.startswith(".") or any(ord(c) < 32 or ord(c) == 127 or c in _NAME_FORBIDDEN
                                   for c in name):
        raise InvalidInput(CoreError.DOCUMENT_NAME_FORBIDDEN, forbidden=_NAME_FORBIDDEN,
                           name=repr(name))
    if not content:
        raise InvalidInput(CoreError.DOCUMENT_EMPTY, name=name)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(CoreError.DOCUMENT_TOO_LARGE, name=name,
                           mb=MAX_DOCUMENT_BYTES // (1024 * 1024))
    suffix = PurePath(name).suffix.lower()
    if suffix not in ALLOWED:
        raise InvalidInput(CoreError.DOCUMENT_TYPE_REFUSED, name=name,
                           allowed=", ".join(sorted(ALLOWED)))
    kind = filetype.guess(content)
    media_type = kind.mime if kind else "application/octet-stream"
    if media_type not in ALLOWED[suffix]:
        raise InvalidInput(CoreError.DOCUMENT_CONTENT_MISMATCH, name=name, suffix=suffix,
                           media_type=media_type)
    scan(name, content)
    return media_type, hashlib.sha256(content).hexdigest()


def scan(name: str, content: bytes) -> None:
    """Pass the file to the operator's antivirus, when one is configured (e.g.
    ``clamdscan --no-summary --fdpass -``): its exit code 0 means clean, 1 infected; any
    other answer, or none in time, refuses the file too (ASVS 12.4.2: fail closed)."""
    command = settings.UPLOAD_SCANNER
    if not command:
        return
    try:
        done = subprocess.run(shlex.split(command), input=content, capture_output=True,
                              timeout=settings.UPLOAD_SCANNER_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("the antivirus could not scan %s: %s", name, exc)
        done = None
    if done is not None and done.returncode == 1:
        log.warning("the antivirus refused %s: %s", name, done.stdout[:300])
        raise InvalidInput(CoreError.DOCUMENT_INFECTED, name=name)
    if done is None or done.returncode != 0:
        if done is not None:
            log.error("the antivirus failed on %s (exit %s): %s", name, done.returncode,
                      done.stderr[:300])
        raise Conflict(CoreError.ANTIVIRUS_UNAVAILABLE, name=name)
