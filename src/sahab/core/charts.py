"""Bar charts drawn in HTML and CSS (templates/_bars.html): readable without
JavaScript, right-to-left in Arabic, always next to the table of their figures."""

from __future__ import annotations


def bars(rows: list[dict], label: str, value: str) -> list[dict]:
    """Rows for the bar charts: label, value and the width of the bar in percent."""
    top = max((float(r[value]) for r in rows), default=0) or 1
    return [{"label": r[label], "value": r[value], "percent": round(100 * float(r[value]) / top)}
            for r in rows]
