"""Checks of user input shared by the pillars' services: amounts in dinars and texts."""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation

from sahab.core.errors import CoreError, InvalidInput

MAX_AMOUNT = Decimal("1000000000000")  # a trillion dinars: anything above is a typo


def money(value, what: str) -> Decimal:
    """A positive amount in dinars with at most three decimals (millimes)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(CoreError.AMOUNT_INVALID, what=what) from None
    if not amount.is_finite() or amount <= 0 or amount >= MAX_AMOUNT:
        raise InvalidInput(CoreError.AMOUNT_OUT_OF_RANGE, what=what, max=f"{MAX_AMOUNT:,}")
    if amount != amount.quantize(Decimal("0.001")):
        raise InvalidInput(CoreError.AMOUNT_TOO_PRECISE, what=what)
    return amount


def text(value, what: str, max_length: int, *, required: bool = True) -> str:
    """A stripped text of at most ``max_length`` characters (non-empty when required)."""
    cleaned = (value or "").strip() if isinstance(value, str) or value is None else None
    if cleaned is None or (required and not cleaned) or len(cleaned) > max_length:
        raise InvalidInput(CoreError.TEXT_REQUIRED if required else CoreError.TEXT_TOO_LONG,
                           what=what, max_length=max_length)
    return cleaned


def base64_content(value: str, what: str) -> bytes:
    """The bytes of a base64 field of a JSON payload."""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error is a ValueError
        raise InvalidInput(CoreError.NOT_BASE64, what=what) from None
