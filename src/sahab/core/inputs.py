"""Checks of user input shared by the pillars' services: amounts in dinars and texts."""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation

from sahab.core.errors import InvalidInput

MAX_AMOUNT = Decimal("1000000000000")  # a trillion dinars: anything above is a typo


def money(value, what: str) -> Decimal:
    """A positive amount in dinars with at most three decimals (millimes)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(f"{what} is not an amount.") from None
    if not amount.is_finite() or amount <= 0 or amount >= MAX_AMOUNT:
        raise InvalidInput(f"{what} must be more than 0 and less than {MAX_AMOUNT:,} dinars.")
    if amount != amount.quantize(Decimal("0.001")):
        raise InvalidInput(f"{what} has more than three decimals (millimes).")
    return amount


def text(value, what: str, max_length: int, *, required: bool = True) -> str:
    """A stripped text of at most ``max_length`` characters (non-empty when required)."""
    cleaned = (value or "").strip() if isinstance(value, str) or value is None else None
    if cleaned is None or (required and not cleaned) or len(cleaned) > max_length:
        raise InvalidInput(f"{what} is required, {max_length} characters at most."
                           if required else f"{what} is {max_length} characters at most.")
    return cleaned


def base64_content(value: str, what: str) -> bytes:
    """The bytes of a base64 field of a JSON payload."""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error is a ValueError
        raise InvalidInput(f"{what} is not base64.") from None
