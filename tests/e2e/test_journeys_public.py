"""The public's main journeys walked end to end on a phone (390 px), in French and in
Arabic, without signing in: a citizen follows one tender down to the ledger and the open
data, a journalist reads the dashboards, the red flags, a company, a buyer and the bulk
export. Nothing may be wider than the screen, nothing left in English, and every step
must finish — the pages are the product's promise of transparency."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from django.utils import translation

from tests.e2e.conftest import on_a_phone, phone_problems, translated_msgids

pytestmark = pytest.mark.slow

# Western digits, Arabic-Indic digits and the separators Arabic pages may use: a number
# read back from the page is the same number whatever the script it is written in.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def _said(language: str, text: str) -> str:
    with translation.override(language):
        return str(translation.gettext(text))


def _number(text: str) -> float:
    """The number a person reads in ``text`` (``1 234,5``, Arabic-Indic digits, ``12 %``)."""
    cleaned = text.translate(_DIGITS).replace("\u066b", ".").replace("\u066c", "")
    cleaned = re.sub(r"[\s\u00a0\u202f%]", "", cleaned).replace(",", ".")
    return float(re.search(r"-?\d+(?:\.\d+)?", cleaned).group())


def _bars(page, section_id: str) -> list[dict]:
    """The bars of the chart in the section headed ``section_id``: label, value shown and
    how much of its track the bar fills, in percent, as drawn by the browser."""
    return page.evaluate("""(id) => {
        const section = document.getElementById(id).closest('section');
        return [...section.querySelectorAll('.bar-row')].map(row => {
            const track = getComputedStyle(row).gridTemplateColumns.split(' ')
                .map(parseFloat)[1];
            const bar = row.querySelector('.bar').getBoundingClientRect().width;
            return {label: row.querySelector('.bar-label').innerText,
                    value: row.querySelector('.bar-value').innerText,
                    filled: 100 * bar / track};
        });
    }""", section_id)


INCLUDED = ("Included in the signed ledger: your browser followed the inclusion proof to the "
            "signed tree of {size} entries and checked the ledger's signature.")


def _broken_numbers(page) -> list[str]:
    """Figures of the page's tables broken over several lines (``2890`` / ``00.00`` /
    ``0`` reads as three numbers): a wide table scrolls in its box instead."""
    return page.evaluate("""() => [...document.querySelectorAll('main td.num')]
        .filter(td => {
            const range = document.createRange();
            range.selectNodeContents(td);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return tops.size > 1;
        }).map(td => td.innerText)""")


# --- the citizen ----------------------------------------------------------------------

@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_citizen_follows_a_tender_from_the_search_to_the_ledger_and_the_open_data(
        platform, browser, language, output_dir):
    """From the home page a citizen searches the tenders, opens one, reads its history
    (named steps, in date order), checks one step in the public ledger — the page itself
    verifies that the entry is in the signed log — and downloads the tender's OCDS
    record."""
    base, english = platform["url"], translated_msgids(language)
    problems: list[str] = []
    context, page = on_a_phone(browser, platform, language, None)
    page.goto(base + "/")
    problems += phone_problems(page, english)
    page.locator("dl.figures a[href='/tenders/']").click()
    page.wait_for_url("**/tenders/")
    problems += phone_problems(page, english)

    # the buyer field suggests buyers as one types (a country has too many to list)
    page.fill("#buyer", "ms-")
    suggestion = page.locator("#buyer-options option[value='MS-DAF']")
    suggestion.wait_for(state="attached")
    codes = page.locator("#buyer-options option").evaluate_all(
        "options => options.map(o => o.value)")
    assert codes and all(code.startswith("MS-") for code in codes)
    page.fill("#buyer", "")

    page.fill("#q", "serveurs")
    page.locator("#tender-search button[type=submit]").click()
    page.wait_for_url("**/tenders/?*q=serveurs*")
    rows = page.locator("#results tbody tr:has(a[href^='/tenders/'])")
    rows.first.wait_for()
    assert all("serveurs" in text.lower() for text in rows.all_inner_texts())
    problems += phone_problems(page, english)
    rows.first.locator("a[href^='/tenders/']").first.click()
    page.wait_for_url(re.compile(r".*/tenders/[^/?]+/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"tender-{language}.png"), full_page=True)

    deadline = page.locator("dl.pairs dt", has_text=_said(language, "Bids until")) \
        .locator("xpath=following-sibling::dd[1]").inner_text()
    months = "|".join(_MONTHS[language])
    assert re.fullmatch(rf"\d{{1,2}} ({months}) \d{{4}}\W+\d{{2}}:\d{{2}}", deadline.strip()), \
        f"not a date as written in {language}: {deadline}"

    history = page.locator("table", has=page.locator("th", has_text=_said(language, "Step")))
    steps = history.locator("tbody tr")
    assert steps.count() >= 3
    names = steps.locator("td:nth-child(1)").all_inner_texts()
    codes = steps.locator("td:nth-child(1) span").evaluate_all(
        "spans => spans.map(s => s.title)")
    assert "tender.published" in codes or "procurement.tender.published" in codes
    for name, code in zip(names, codes, strict=True):
        assert name.strip() and name.strip() != code, f"step {code} has no human name"
        assert not re.search(r"\b[a-z_]+\.[a-z_.]+\b", name), f"raw code shown: {name}"
    assert _said(language, "Tender published") in names
    times = [_local_time(t, language) for t in steps.locator("td:nth-child(2)").all_inner_texts()]
    assert times == sorted(times), f"steps out of date order: {times}"
    entries = [int(_number(t)) for t in steps.locator("td:nth-child(3)").all_inner_texts()]
    assert entries == sorted(entries), f"steps out of the ledger's order: {entries}"

    published = steps.filter(has_text=_said(language, "Tender published")).first
    published.locator("a[href^='/ledger/view/']").click()
    page.wait_for_url("**/ledger/view/*/")
    index = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert f"tender:{reference}" in page.inner_text("main")  # the entry of this tender
    verdict = page.locator("[data-inclusion] [data-state]")
    page.wait_for_function("() => document.querySelector('[data-inclusion] [data-state]')"
                           ".dataset.state !== 'checking'", timeout=15000)
    assert verdict.get_attribute("data-state") == "included", verdict.inner_text()
    size = int(re.search(r"\d+", verdict.inner_text().translate(_DIGITS)).group())
    assert size > index
    assert verdict.inner_text().strip() == _said(language, INCLUDED).replace("{size}", str(size))
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"ledger-entry-{language}.png"), full_page=True)

    page.go_back()
    page.wait_for_url(f"**/tenders/{reference}/")
    with page.expect_download() as download:
        page.locator("a[data-ocds-record]").click()
    record = json.loads(download.value.path().read_text(encoding="utf-8"))
    (ocid,) = {r["ocid"] for r in record["records"]}
    assert ocid.endswith(reference)
    assert record["records"][0]["compiledRelease"]["tender"]["title"]
    entry = httpx.get(f"{base}/ledger/entries/{index}").json()
    assert entry["entry"]["type"] == "procurement.tender.published"
    assert entry["entry"]["subject"] == f"tender:{reference}"
    assert not problems, "\n".join(problems)
    context.close()


_MONTHS = {"fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                  "septembre", "octobre", "novembre", "décembre"],
           "ar": ["جانفي", "فيفري", "مارس", "أفريل", "ماي", "جوان", "جويلية", "أوت",
                  "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"]}


def _local_time(text: str, language: str) -> dt.datetime:
    """A SHORT_DATETIME_FORMAT date as shown (``15/03/2026 09:30``) back to a datetime."""
    digits = [int(n) for n in re.findall(r"\d+", text.translate(_DIGITS))]
    if len(digits) >= 5 and digits[2] > 999:
        day, month, year, hour, minute = digits[:5]
        return dt.datetime(year, month, day, hour, minute)
    if len(digits) >= 5 and digits[0] > 999:
        year, month, day, hour, minute = digits[:5]
        return dt.datetime(year, month, day, hour, minute)
    raise AssertionError(f"not a date and time: {text!r}")


# --- the journalist -------------------------------------------------------------------

def _explanation_patterns(language: str) -> dict[str, re.Pattern]:
    """Each indicator's sentence in ``language``, its numbers and names left open (they
    are isolated from the text's direction by FSI … PDI)."""
    from sahab.procurement import redflags

    patterns = {}
    with translation.override(language):
        for code, text in redflags.EXPLAIN.items():
            literal = re.escape(str(text)).replace("%%", "%")
            patterns[code] = re.compile(re.sub(r"%\\\(\w+\\\)s", "\u2068[^\u2069]+\u2069",
                                               literal))
    return patterns


def _scrambled_numbers(page, cells) -> list[str]:
    """Numbers and tender references (``MF-DAF-2026-0003``) of ``cells`` whose characters
    are not drawn left to right on the screen: what a right-to-left paragraph does to a
    left-to-right run that is not isolated from it (digits swapped around a space, a
    hyphen jumping to the other end of the line)."""
    return cells.evaluate_all(r"""cells => {
        const wrong = [];
        const runs = /[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|\d[\d\s\u00a0\u202f.,\u066b\u066c]*\d/g;
        for (const cell of cells) {
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                for (const m of node.data.matchAll(runs)) {
                    const xs = [];
                    for (let i = m.index; i < m.index + m[0].length; i++) {
                        if (/\s/.test(node.data[i])) continue;
                        const range = document.createRange();
                        range.setStart(node, i);
                        range.setEnd(node, i + 1);
                        const rect = range.getBoundingClientRect();
                        xs.push([rect.left, Math.round(rect.top)]);
                    }
                    // left to right along each line (a run may wrap)
                    const bad = xs.some((p, i) => i > 0 && p[1] === xs[i - 1][1]
                                                  && p[0] <= xs[i - 1][0]);
                    if (bad) wrong.push(m[0] + ' in: ' + cell.innerText.slice(0, 120));
                }
            }
        }
        return wrong;
    }""")


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_journalist_reads_the_dashboards_the_red_flags_a_company_a_buyer_and_the_export(
        platform, browser, language, output_dir):
    """A journalist on her phone reads the procurement dashboards (percentages drawn on a
    0 to 100 scale, months without flags shown as zero), every red flag explained in her
    language with its numbers intact, a company's bids and contracts, a buyer's tenders,
    and finds the bulk export of the open data."""
    base, english = platform["url"], translated_msgids(language)
    problems: list[str] = []
    context, page = on_a_phone(browser, platform, language, None)
    page.goto(base + "/")
    page.locator("header a[href='/tenders/']").first.click()
    page.wait_for_url("**/tenders/")
    page.locator("main a[href='/tenders/dashboard/']").click()
    page.wait_for_url("**/tenders/dashboard/")
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"dashboards-{language}.png"), full_page=True)
    broken = _broken_numbers(page)

    shares = _bars(page, "noncomp")
    assert shares, "the non-competitive share has no bar"
    for bar in shares:
        value = _number(bar["value"])
        assert 0 <= value <= 100, bar
        assert abs(bar["filled"] - value) <= 1.5, f"{bar} is not drawn on a 0–100 % scale"
    for section in ("spend", "compet", "flagtime"):
        drawn = _bars(page, section)
        assert all(0 <= b["filled"] <= 100.5 for b in drawn), drawn
        if drawn:
            assert max(b["filled"] for b in drawn) >= 99, f"{section}: longest bar not full"

    spending = page.locator("#spend").locator("xpath=ancestor::section[1]").locator("tbody tr")
    years = set(spending.locator("td:nth-child(2)").all_inner_texts())
    if len(years) == 1:  # one year: each ministry's bar says what its row of the table says
        table = dict(zip(spending.locator("td:nth-child(1)").all_inner_texts(),
                         spending.locator("td:nth-child(3)").all_inner_texts(), strict=True))
        assert {b["label"]: b["value"] for b in _bars(page, "spend")} == table

    month_rows = page.locator("#flagtime").locator("xpath=ancestor::section[1]") \
        .locator("tbody tr")
    months = [_month(text, language) for text in
              month_rows.locator("td:nth-child(1)").all_inner_texts()]
    counts = [int(_number(t)) for t in month_rows.locator("td:nth-child(2)").all_inner_texts()]
    assert len(months) >= 2, months
    assert months == _month_range(months[0], months[-1]), f"months missing: {months}"
    assert [_month(b["label"], language) for b in _bars(page, "flagtime")] == months
    assert sum(counts) > 0

    page.locator("main a[href='/tenders/red-flags/']").last.click()
    page.wait_for_url("**/tenders/red-flags/")
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"red-flags-{language}.png"), full_page=True)
    patterns = _explanation_patterns(language)
    every_flag = page.locator("table").last.locator("tbody tr")
    assert every_flag.count() >= 5
    for row in every_flag.all():
        code = row.locator("td:nth-child(1)").inner_text().strip()
        detail = row.locator("td:nth-child(3)").inner_text().strip()
        assert patterns[code].match(detail), f"{code} does not read in {language}: {detail}"
    assert not _scrambled_numbers(page, page.locator("table").last.locator("td:nth-child(3)"))
    split_codes = page.locator("code.flag-code").evaluate_all(
        "codes => codes.filter(c => c.getClientRects().length > 1).map(c => c.innerText)")
    assert not split_codes, f"indicator codes broken over two lines: {split_codes}"

    page.locator("header a[href='/companies/']").first.click()
    page.wait_for_url("**/companies/")
    page.fill("#q", "Sahel")
    page.locator("#company-search button[type=submit]").click()
    page.wait_for_url("**/companies/?q=Sahel")
    problems += phone_problems(page, english)
    page.locator("main tbody a", has_text="Sahel Informatique").click()
    page.wait_for_url("**/companies/*/")
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"company-{language}.png"), full_page=True)
    broken += _broken_numbers(page)
    contracts = page.locator("#contracts").locator("xpath=ancestor::section[1]")
    assert contracts.locator("tbody tr a.contract").count() >= 1
    listed = httpx.get(page.url + "?table=contracts&format=json").json()
    shown = contracts.locator("tbody td:nth-child(4)").all_inner_texts()
    assert shown == [_money(row["value"], language) for row in listed], \
        "contract values not written as numbers are in the page's language"
    bids = page.locator("#bids").locator("xpath=ancestor::section[1]").locator("tbody tr")
    assert bids.count() >= 2 and "serveurs" in " ".join(bids.all_inner_texts()).lower()

    contracts.locator("tbody tr a[href^='/buyers/']").first.click()
    page.wait_for_url("**/buyers/*/")
    problems += phone_problems(page, english)
    page.screenshot(path=str(output_dir / f"buyer-{language}.png"), full_page=True)
    broken += _broken_numbers(page)
    assert not broken, f"figures broken over several lines: {broken}"
    tenders = page.locator("#tenders").locator("xpath=ancestor::section[1]").locator("tbody tr")
    assert tenders.count() >= 1
    assert "Sahel Informatique" in page.inner_text("#suppliers ~ div")

    page.goto(base + "/tenders/dashboard/")
    export = page.locator("a[data-bulk-export]")
    assert export.count() == 2
    for link in export.all():
        url = base + link.get_attribute("href")
        with httpx.stream("GET", url, timeout=60) as response:
            assert response.status_code == 200, url
            assert response.headers["content-type"] == "application/gzip"
            assert "attachment" in response.headers["content-disposition"]
            assert next(response.iter_raw(2)) == b"\x1f\x8b"  # gzip, read no further
    problems += phone_problems(page, english)
    assert not problems, "\n".join(problems)
    context.close()


def _money(value: str, language: str) -> str:
    """An amount in dinars as the page's language writes it (``289 000,000``)."""
    from decimal import Decimal

    from django.utils import formats

    with translation.override(language):
        return formats.number_format(Decimal(value), 3, use_l10n=True, force_grouping=True)


def _month(text: str, language: str) -> tuple[int, int]:
    """A month as the dashboards show it (``mars 2026``, ``2026-03``) as (year, month)."""
    text = text.translate(_DIGITS).strip().lower()
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        return int(m.group(1)), int(m.group(2))
    for number, name in enumerate(_MONTHS[language], start=1):
        if name in text:
            return int(re.search(r"\d{4}", text).group()), number
    raise AssertionError(f"not a month: {text!r}")


def _month_range(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    months, (year, month) = [], first
    while (year, month) <= last:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@pytest.mark.parametrize("alteration", ["entry", "proof", "signature"])
def test_an_entry_page_warns_when_what_the_ledger_serves_was_altered(
        platform, browser, alteration):
    """The check the citizen relies on is the browser's own: an entry changed by one byte,
    a proof that leads elsewhere or a checkpoint whose signature is not the ledger's is
    reported as not confirmed, never as included."""
    import base64

    def flip(b64: str, at: int) -> str:
        raw = bytearray(base64.b64decode(b64))
        raw[at] ^= 0x01
        return base64.b64encode(bytes(raw)).decode()

    def altered(route):
        response = route.fetch()
        data = response.json()
        if alteration == "entry":
            data["body_base64"] = flip(data["body_base64"], -3)
        elif alteration == "proof":
            data["proof"][0] = flip(data["proof"][0], 0)
        else:
            body, signatures = data["checkpoint"].split("\n\n", 1)
            mark, name, signature = signatures.split("\n", 1)[0].split(" ")
            forged = f"{mark} {name} {flip(signature, 10)}"
            data["checkpoint"] = f"{body}\n\n{forged}\n{signatures.split(chr(10), 1)[1]}"
        route.fulfill(response=response, json=data)

    context, page = on_a_phone(browser, platform, "fr", None)
    page.route("**/ledger/entries/*", altered)
    page.goto(platform["url"] + "/ledger/view/3/")
    page.wait_for_function("() => document.querySelector('[data-inclusion] [data-state]')"
                           ".dataset.state !== 'checking'", timeout=15000)
    verdict = page.locator("[data-inclusion] [data-state]")
    assert verdict.get_attribute("data-state") == "failed"
    assert verdict.inner_text() == _said(
        "fr", "Your browser could not confirm that this entry is in the signed ledger")
    context.close()
