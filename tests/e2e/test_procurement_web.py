"""A whole open tender through the web UI, in Chromium, on a running platform whose
worker opens the bids at the deadline by itself."""

import datetime as dt
import re
import time
import zoneinfo

import httpx
import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.slow
TUNIS = zoneinfo.ZoneInfo("Africa/Tunis")


def local(moment: dt.datetime) -> str:
    return moment.astimezone(TUNIS).strftime("%Y-%m-%dT%H:%M:%S")


def wait_for_text(page, url: str, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in page.content():
        assert time.monotonic() < deadline, f"'{text}' never appeared on {url}"
        time.sleep(1)
        page.goto(url)


def submit(page, action: str) -> None:
    page.click(f"form[action$='/{action}/'] button[type=submit]")
    page.wait_for_load_state()


def test_an_open_tender_through_the_web(platform, browser, output_dir):
    base = platform["url"]
    officer = sign_in(browser, platform, "achats.finances")
    officer.goto(base + "/tenders/manage/")
    start = dt.datetime.now(dt.UTC)
    officer.fill("#id_title", "Postes de travail pour la DAF")
    officer.select_option("#id_procedure", "open")
    officer.fill("#id_enquiry_deadline", local(start + dt.timedelta(seconds=45)))
    officer.fill("#id_submission_deadline", local(start + dt.timedelta(seconds=75)))
    officer.fill("#id_standstill_days", "0")
    officer.fill("#id_lot1_title", "Ordinateurs portables")
    officer.fill("#id_lot1_cpv", "30213100-6")
    officer.fill("#id_lot1_value", "180000")
    officer.click("#tender-form button[type=submit]")
    officer.wait_for_url(re.compile(r".*/tenders/MF-DAF-\d{4}-\d{4}/$"))
    url = officer.url
    reference = url.rstrip("/").rsplit("/", 1)[1]
    submit(officer, "publish")
    assert "Publié" in officer.content() or "enquiries" in officer.content()

    companies = {name: sign_in(browser, platform, name)
                 for name in ("carthage.cloud", "medina.data", "jasmin.hosting")}
    asker = companies["carthage.cloud"]
    asker.goto(url)
    asker.fill("#id_question-text", "Quelle garantie est attendue ?")
    submit(asker, "question")
    officer.goto(url)
    officer.fill("textarea[name$='-text'][id^='id_answer']", "Trois ans sur site.")
    submit(officer, "answer")

    for name, price in (("carthage.cloud", "171000"), ("medina.data", "165500.500"),
                        ("jasmin.hosting", "190000")):
        page = companies[name]
        page.goto(url)
        page.fill("#id_lot_1", price)
        submit(page, "bid")
        assert "ledger" in page.content() or "registre" in page.content()
    carthage = companies["carthage.cloud"]
    carthage.goto(url)
    submit(carthage, "withdraw")
    carthage.fill("#id_lot_1", "159000")
    submit(carthage, "bid")

    medina = companies["medina.data"]
    medina.goto(url)
    medina.click("text=Déposer une réclamation") if "Déposer" in medina.content() else \
        medina.click("details summary >> nth=-1")
    medina.fill("#id_complaint-text", "Le cahier des charges favorise une marque.")
    submit(medina, "complaint")
    auditor = sign_in(browser, platform, "auditeur.haicop")
    auditor.goto(url)
    auditor.check("input[name=upheld][value=no]")
    auditor.fill("textarea[id^='id_decide']", "Les spécifications sont neutres.")
    submit(auditor, "decide")

    # the worker opens the bids at the deadline, nobody clicks anything
    wait_for_text(officer, url, "159")
    officer.screenshot(path=str(output_dir / "opening-report.png"), full_page=True)

    evaluator = sign_in(browser, platform, "eval.finances")
    evaluator.goto(url)
    evaluator.check("input[name=no_conflict][value=yes]")
    submit(evaluator, "declare")
    for _ in range(3):
        evaluator.click("form[action$='/eligibility/'] button >> nth=0")
        evaluator.wait_for_load_state()
    officer.goto(url)
    submit(officer, "evaluate")
    submit(officer, "award")
    wait_for_text(officer, url, 'name="start_date"')  # standstill over: contract form shown
    officer.fill("#id_start_date", "2027-01-01")
    officer.fill("#id_end_date", "2027-06-30")
    submit(officer, "contract")
    officer.click("details summary >> text=/Modifier le marché|Amend the contract/")
    officer.fill("input[name=new_value]", "165000")
    officer.fill("textarea[name=justification]", "Dix postes de plus.")
    submit(officer, "amend")
    finance = sign_in(browser, platform, "finance.finances")
    finance.goto(url)
    finance.click("details summary >> text=/paiement|payment/")
    finance.fill("input[name=milestone]", "Livraison")
    finance.fill("input[name=amount]", "100000")
    submit(finance, "pay")
    finance.screenshot(path=str(output_dir / "contract.png"), full_page=True)

    detail = httpx.get(f"{base}/api/procurement/tenders/{reference}").json()
    assert detail["state"] == "complete"
    assert [(a["supplier"], a["value"]) for a in detail["awards"]] == \
        [("Carthage Cloud", "159000.000")]
    assert detail["contracts"][0]["value"] == "165000.000"
    types = [s["type"] for s in detail["steps"]]
    for expected in ("tender.published", "question.answered", "bid.withdrawn",
                     "complaint.filed", "complaint.decided", "tender.opened",
                     "tender.evaluated", "tender.awarded", "tender.standstill_ended",
                     "contract.signed", "contract.amended", "contract.payment"):
        assert expected in types, expected
    assert types.count("bid.submitted") == 4
