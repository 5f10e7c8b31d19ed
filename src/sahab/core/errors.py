"""Domain errors raised by services and turned into HTTP, form or CLI errors in one place each."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal that the user can understand and act on; never a server fault."""

    status = 400
    title = "Invalid request"

    def __init__(self, detail: str, *, field_errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field_errors = field_errors or {}


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class PermissionDenied(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class TooManyAttempts(DomainError):
    status = 429
    title = "Too many attempts"


def from_validation_error(exc) -> InvalidInput:
    """Wrap a Django ``ValidationError`` (model or field level) as ``InvalidInput``."""
    if hasattr(exc, "message_dict"):
        fields = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    else:
        fields = {"__all__": [str(m) for m in exc.messages]}
    detail = "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v)
                       for k, v in fields.items())
    return InvalidInput(detail, field_errors=fields)
