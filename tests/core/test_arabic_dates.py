"""Arabic pages write dates as Tunisians do: Maghrebi month names, day before month,
a 24-hour clock (Django's generic Arabic falls back to American order)."""

import datetime as dt

from django.utils import formats, translation

WHEN = dt.datetime(2026, 2, 3, 14, 5)


def _in_arabic(format_name: str) -> str:
    with translation.override("ar"):
        return formats.date_format(WHEN, format_name)


def test_an_arabic_date_names_the_month_as_written_in_tunisia():
    assert _in_arabic("DATE_FORMAT") == "3 فيفري 2026"
    with translation.override("ar"):
        months = [formats.date_format(WHEN.replace(month=m), "F") for m in range(1, 13)]
    assert months == ["جانفي", "فيفري", "مارس", "أفريل", "ماي", "جوان", "جويلية", "أوت",
                      "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"]


def test_an_arabic_short_date_puts_the_day_first_and_the_clock_on_24_hours():
    assert _in_arabic("SHORT_DATETIME_FORMAT") == "03/02/2026 14:05"
    assert _in_arabic("DATETIME_FORMAT") == "3 فيفري 2026، 14:05"
