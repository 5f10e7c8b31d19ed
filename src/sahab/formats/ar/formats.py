"""Arabic as written in Tunisia: day before month (``2 ديسمبر 2026``, ``02/12/2026``), a
24-hour clock. Django's generic Arabic has no date-and-time formats, so its pages fell
back to the American ``12/02/2026 7:46 ص`` — the wrong day for a Tunisian reader."""

DATE_FORMAT = "j F Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j F Y، H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
FIRST_DAY_OF_WEEK = 1  # Monday
# Numbers: Django's Arabic formats apply (this module is searched first, then Django's).
