"""Bar charts drawn in HTML and CSS (templates/_bars.html): readable without
JavaScript, right-to-left in Arabic, always next to the table of their figures."""

from __future__ import annotations

from decimal import Decimal

from django.utils import formats


def bars(rows: list[dict], label: str, value: str, *,
         scale: float | None = None) -> list[dict]:
    """Rows for the bar charts: label, value (and ``shown``, as the page's language writes
    numbers, like the table beside it) and the width of the bar in percent.

    Bars are drawn against ``scale`` when it is given (100 for percentages, so that 4 %
    reads as a short bar), else against the largest value; widths stay within 0 and 100.
    """
    top = scale or max((float(r[value]) for r in rows), default=0) or 1
    return [{"label": r[label], "value": r[value], "shown": _shown(r[value]),
             "percent": max(0, min(100, round(100 * float(r[value]) / top)))}
            for r in rows]


def _shown(value) -> str:
    """``7673500.000`` as ``7 673 500,000`` in French: the figure keeps its decimals."""
    return formats.number_format(Decimal(str(value)), use_l10n=True, force_grouping=True)
