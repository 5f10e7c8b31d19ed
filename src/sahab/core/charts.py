"""Bar charts drawn in HTML and CSS (templates/_bars.html): readable without
JavaScript, right-to-left in Arabic, always next to the table of their figures."""

from __future__ import annotations


def bars(rows: list[dict], label: str, value: str, *,
         scale: float | None = None) -> list[dict]:
    """Rows for the bar charts: label, value and the width of the bar in percent.

    Bars are drawn against ``scale`` when it is given (100 for percentages, so that 4 %
    reads as a short bar), else against the largest value; widths stay within 0 and 100.
    """
    top = scale or max((float(r[value]) for r in rows), default=0) or 1
    return [{"label": r[label], "value": r[value],
             "percent": max(0, min(100, round(100 * float(r[value]) / top)))}
            for r in rows]
