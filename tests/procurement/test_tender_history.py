"""A tender's history reads well in every language: each step of "Every step, in the public
ledger" by its title, in the order the ledger recorded their times, the type kept for
auditors in the row's title attribute."""

import datetime as dt
import html
import re

import time_machine
from django.test import Client
from django.utils import timezone

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry

STEP = re.compile(r'<span title="([a-z_]+\.[a-z_.]+)">([^<]+)</span>')


def history(reference: str, language: str) -> list[tuple[str, str]]:
    """The (type, title) of each row of the tender's step table, as shown."""
    page = Client().get(f"/tenders/{reference}/", HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 200
    return [(kind, html.unescape(title)) for kind, title in STEP.findall(page.content.decode())]


def test_the_steps_read_as_titles_in_arabic_and_french_not_as_codes(published_tender):
    reference = published_tender.reference
    page = Client().get(f"/tenders/{reference}/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert "نشر طلب العروض" in page and "إعداد طلب العروض" in page
    assert ">tender.published<" not in page and "<code>tender." not in page
    assert ("tender.published", "نشر طلب العروض") in history(reference, "ar")
    french = history(reference, "fr")
    assert ("tender.drafted", "Appel d'offres préparé") in french
    assert ("tender.published", "Appel d'offres publié") in french
    assert all(title != kind for kind, title in french)


def test_the_steps_are_listed_in_the_order_of_their_recorded_times(world, published_tender):
    """A step written later under a clock set back (say, corrected by NTP) is recorded
    earlier: the history follows the times the ledger proves, not the order of the rows."""
    reference = published_tender.reference
    _, company = world["companies"][0]
    with time_machine.travel(timezone.now() - dt.timedelta(hours=2), tick=False):
        asked = company.call("post", f"/tenders/{reference}/questions",
                             {"text": "Les serveurs sont-ils livrés montés en baie ?"})
    assert asked.status_code == 201, asked.content
    ledger.integrate_pending()  # the worker's sequencer gives the question its index
    steps = list(published_tender.steps.all())
    times = dict(Entry.objects.filter(index__in=[s.ledger_index for s in steps])
                 .values_list("index", "at"))
    in_ledger_order = [s.type for s in steps]
    in_time_order = [s.type for s in sorted(steps, key=lambda s: times[s.ledger_index])]
    assert in_ledger_order[-1] == "question.asked" and in_time_order[0] == "question.asked"
    assert [kind for kind, _ in history(reference, "fr")] == in_time_order
