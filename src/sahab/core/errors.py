"""Domain errors raised by services and turned into HTTP, form or CLI errors in one place each.

A refusal names its reason with an :class:`ErrorCode`, a member of its pillar's
enumeration (``<pillar>/errors.py``), and passes the values its message names::

    raise Conflict(ExchangeError.GRANT_NOT_REQUESTED)
    raise NotFound(LedgerError.NO_ENTRY, index=index)

The code (the member's name in lower case) is stable: API clients match on it and the
problem's ``type`` ends with it. The message template is translated (French, Arabic,
English) with ``%(name)s`` parameters, so that each language places the values where its
grammar wants them; ``exc.detail`` renders it in the language active when it is read,
that is the request's. A plain string is still accepted, with the class's generic code
(``conflict``, ``not_found``…), for the pillars whose messages are not coded yet.
"""

from __future__ import annotations

import importlib
from enum import Enum

from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

# The pillars that declare error codes, in the order the documentation lists them.
PILLARS = ("core", "directory", "procurement", "cloud", "mail", "exchange", "ledger", "portal",
           "ops")


class ErrorCode(Enum):
    """One reason for a refusal. Members are declared as ``NAME = _("Template %(value)s.")``;
    the code is ``name`` in lower case, the pillar the package of the enumeration."""

    template: str

    def __new__(cls, template):
        member = object.__new__(cls)
        member._value_ = len(cls.__members__)  # members are told apart by name, not value
        member.template = template
        return member

    @property
    def code(self) -> str:
        return self.name.lower()

    @classmethod
    def pillar(cls) -> str:
        return cls.__module__.split(".")[1]

    def render(self, **params) -> str:
        """The message in the active language."""
        return render(self.template, params)


def render(template, params: dict) -> str:
    text = str(template)
    return text % params if params else text


class DomainError(Exception):
    """A refusal that the user can understand and act on; never a server fault."""

    status = 400
    title = "Invalid request"
    generic_code = "invalid_request"

    def __init__(self, error: ErrorCode | str, /, *,
                 field_errors: dict[str, list[str]] | None = None, **params):
        self.error = error if isinstance(error, ErrorCode) else None
        self.template = error.template if self.error else error
        self.params = params
        self.field_errors = field_errors or {}
        super().__init__(self.code)

    @property
    def code(self) -> str:
        return self.error.code if self.error else self.generic_code

    @property
    def detail(self) -> str:
        """The message in the language active now (the request's, the CLI's)."""
        return render(self.template, self.params)

    def __str__(self) -> str:
        return self.detail


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"
    generic_code = "invalid_input"


class PermissionDenied(DomainError):
    status = 403
    title = "Forbidden"
    generic_code = "permission_denied"


class NotFound(DomainError):
    status = 404
    title = "Not found"
    generic_code = "not_found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    generic_code = "conflict"


class TooManyAttempts(DomainError):
    status = 429
    title = "Too many attempts"
    generic_code = "too_many_attempts"


ERROR_CLASSES = (DomainError, InvalidInput, PermissionDenied, NotFound, Conflict,
                 TooManyAttempts)


class CoreError(ErrorCode):
    """Shared by every pillar: documents, amounts, texts and the objects every API names."""

    INVALID_FIELDS = _("The data is not valid: %(errors)s")
    NO_ADMINISTRATION = _("No administration has the code %(code)s.")
    DOCUMENT_NAME_NOT_PLAIN = _("A document needs a plain file name, not %(name)s.")
    DOCUMENT_NAME_FORBIDDEN = _(
        "A document name has no quotes, line breaks or other control characters, and none "
        "of %(forbidden)s: %(name)s is refused.")
    DOCUMENT_EMPTY = _("%(name)s is empty.")
    DOCUMENT_TOO_LARGE = _("%(name)s is larger than %(mb)s MB.")
    DOCUMENT_TYPE_REFUSED = _("%(name)s: only %(allowed)s files are accepted.")
    DOCUMENT_CONTENT_MISMATCH = _(
        "%(name)s is not a real %(suffix)s file (its content is %(media_type)s).")
    DOCUMENT_INFECTED = _("%(name)s was refused by the antivirus.")
    ANTIVIRUS_UNAVAILABLE = _(
        "%(name)s could not be checked by the antivirus; nothing was saved. Try again later.")
    AMOUNT_INVALID = _("%(what)s is not an amount.")
    AMOUNT_OUT_OF_RANGE = _("%(what)s must be more than 0 and less than %(max)s dinars.")
    AMOUNT_TOO_PRECISE = _("%(what)s has more than three decimals (millimes).")
    TEXT_REQUIRED = _("%(what)s is required, %(max_length)s characters at most.")
    TEXT_TOO_LONG = _("%(what)s is %(max_length)s characters at most.")
    NOT_BASE64 = _("%(what)s is not base64.")
    UNKNOWN_FIELDS = _("Unknown fields: %(fields)s.")
    SIGNING_KEY_NAME_REFUSED = _("No signing key may be named %(name)s.")
    SIGNING_PKCS11_UNAVAILABLE = _(
        "Signing with a PKCS#11 token is not available on this platform yet.")
    SIGNER_WITHOUT_CERTIFICATE = _("This signer has no signing certificate.")
    SIGNING_CERTIFICATE_MISSING = _("No signing certificate for %(name)s (%(file)s).")
    SIGNING_CERTIFICATE_UNREADABLE = _("%(file)s could not be read.")
    SIGNATURE_COUNT = _(
        "The document carries %(count)s signatures: one is expected, or two for a "
        "countersigned contract.")


def read_when_rendered(value):
    """A parameter computed when the message is rendered, in the reader's language, e.g.
    ``administration=read_when_rendered(lambda: administration.name)``."""
    return lazy(value, str)()


def from_validation_error(exc) -> InvalidInput:
    """Wrap a Django ``ValidationError`` (model or field level) as ``InvalidInput``."""
    if hasattr(exc, "message_dict"):
        fields = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    else:
        fields = {"__all__": [str(m) for m in exc.messages]}
    errors = "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v)
                       for k, v in fields.items())
    return InvalidInput(CoreError.INVALID_FIELDS, errors=errors, field_errors=fields)


def enumerations() -> list[type[ErrorCode]]:
    """Every pillar's enumeration, in documentation order."""
    modules = [f"sahab.{pillar}.errors" for pillar in PILLARS]
    for module in modules:
        importlib.import_module(module)
    found = [cls for cls in ErrorCode.__subclasses__() if cls.__module__ in modules]
    return sorted(found, key=lambda cls: (modules.index(cls.__module__), cls.__name__))


def every_code() -> dict[str, ErrorCode]:
    return {member.code: member for cls in enumerations() for member in cls}


def generic_codes() -> dict[str, type[DomainError]]:
    """The codes of refusals given as a plain string, one per class."""
    return {cls.generic_code: cls for cls in ERROR_CLASSES}
