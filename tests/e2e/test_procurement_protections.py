"""The protective steps of procurement walked in the browser, on a phone (390 px), by the
people who take them: a complaint ruled admissible then upheld sends a lot back to
evaluation, an amendment extends the deadline and reaches the companies that bid, an
abnormally low price is explained by its bidder before the committee decides, and a lot
cancelled by a complaint's remedy shows why to the public.

The tender's state before each protective step (draft, committees, publication, bids,
evaluation, award) is prepared through the platform's own services in a ``sahab manage
shell`` of the running platform; each protective step itself is clicked in the pages by
the person whose step it is, and every page is checked for width and English."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import httpx
import pytest
from django.utils import formats, translation

from tests.e2e.conftest import on_a_phone, phone_problems, translated_msgids
from tests.e2e.test_procurement_web import TUNIS, local

pytestmark = pytest.mark.slow

# What the preparation runs in the platform's shell: real services, real sealed bids,
# the demo's committee keys (kept so that the worker releases them after the deadline).
PREPARE = r'''
import base64, datetime as dt, json
from django.contrib.auth import get_user_model
from django.utils import timezone
from sahab.directory.models import Administration, Company
from sahab.procurement import client, services
from sahab.procurement.demo import _company_key, _detail
from sahab.procurement.models import BidLot, Tender

User = get_user_model()


def user(name):
    return User.objects.get(username=name)


def company_user(name):
    return Company.objects.get(name=name).members.filter(is_company_admin=True).first().user


def tender_taking_bids(title, lots, bids, seconds):
    """An open tender of MF-DAF whose bids close in ``seconds``, with its committees and
    the sealed bids of ``bids`` (company name -> {lot number: price})."""
    officer, now = user("achats.finances"), timezone.now()
    tender = services.create_tender(
        actor=officer, buyer=Administration.objects.get(code="MF-DAF"), title=title,
        procedure="open", enquiry_deadline=now + dt.timedelta(seconds=seconds - 2),
        submission_deadline=now + dt.timedelta(seconds=seconds),
        lots=[{"title": t, "cpv": "48820000-2", "estimated_value": "200000"} for t in lots],
        compliance_criteria=["Délai d'exécution de 60 jours au plus"])
    members = [user(n) for n in ("achats.finances", "eval.finances", "finance.finances")]
    services.name_committee(actor=officer, tender=tender, members=members, threshold=2)
    for member in members:
        private, public = client.committee_keygen()
        row = services.register_committee_key(actor=member, tender=tender,
                                              public_key=base64.b64decode(public))
        path = services.demo_key_path(tender, row.position)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(private)
    services.name_evaluation_committee(
        actor=officer, tender=tender, members=[user("eval.finances"), user("commission.finances")],
        chair=user("commission.finances"), quorum=2)
    tender = services.publish_tender(actor=officer, tender=tender)
    for name, prices in bids.items():
        envelope = client.seal_bid(_detail(tender), company_id=Company.objects.get(name=name).pk,
                                   key=_company_key(name), prices=prices,
                                   technical_offer=f"Offre technique de {name}.")
        services.submit_bid(actor=company_user(name), tender=tender,
                            envelope=envelope.encode("ascii"))
    return tender.reference


def evaluated(reference, *, award):
    """The committee declares, finds every bid eligible and ranks; with ``award`` both
    members approve the report and the buyer awards (the standstill starts)."""
    tender = Tender.objects.get(reference=reference)
    officer = user("achats.finances")
    evaluator, chair = user("eval.finances"), user("commission.finances")
    for member in (chair, evaluator):
        services.declare_conflict_of_interest(actor=member, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=True)
    report = services.complete_evaluation(actor=officer, tender=tender)
    if award:
        for member in (chair, evaluator):
            services.approve_evaluation(actor=member, tender=tender, sha256=report["sha256"])
        services.award_tender(actor=officer, tender=tender)
    return reference
'''


def prepare(platform, call: str):
    """Run ``call`` (Python, over PREPARE's functions) in the running platform's shell and
    return what it gives back."""
    code = PREPARE + f"\nprint('RESULT=' + json.dumps({call}))\n"
    done = subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "shell", "-c", code],
                          env=platform["env"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


def detail(platform, reference: str) -> dict:
    return httpx.get(f"{platform['url']}/api/procurement/tenders/{reference}").json()


def wait_for_state(platform, reference: str, state: str, timeout: float = 120) -> dict:
    """The worker moves the tender at its deadline and opens the bids."""
    deadline = time.monotonic() + timeout
    while (found := detail(platform, reference))["state"] != state:
        assert time.monotonic() < deadline, f"{reference} stayed {found['state']}"
        time.sleep(1)
    return found


def said(language: str, text: str) -> str:
    with translation.override(language):
        return str(translation.gettext(text))


class Walk:
    """The phones of one walk, in one language, each page looked at as it is shown."""

    def __init__(self, platform, browser, language: str):
        self.platform, self.browser, self.language = platform, browser, language
        self.english = translated_msgids(language)
        self.problems: list[str] = []
        self.contexts = []

    def phone(self, username: str | None):
        context, page = on_a_phone(self.browser, self.platform, self.language, username)
        self.contexts.append(context)
        return page

    def look(self, page) -> None:
        self.problems += phone_problems(page, self.english)

    def go(self, page, reference: str) -> None:
        page.goto(f"{self.platform['url']}/tenders/{reference}/")
        self.look(page)

    def submit(self, page, action: str) -> None:
        with page.expect_navigation():
            page.click(f"form[action$='/{action}/'] button[type=submit]")
        page.wait_for_load_state()
        self.look(page)

    def message(self, page) -> str:
        return page.inner_text("ul.messages") if page.locator("ul.messages").count() else ""

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        assert not self.problems, "\n".join(self.problems)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_an_admitted_complaint_upheld_sends_the_lot_back_to_evaluation(
        platform, browser, language, output_dir):
    """A losing bidder complains against the award during the standstill (a company that
    did not bid cannot); the complaints body admits it — the lot is suspended — then
    upholds it with a new evaluation: the award is cancelled, the buyer cannot award again
    until the committee has evaluated the lot anew, and then the lot goes to the next
    bidder."""
    reference = prepare(platform, (
        f"tender_taking_bids('Hébergement de la paie — recours {language}', ['Hébergement'], "
        "{'Carthage Cloud': {'1': '150000'}, 'Medina Data Services': {'1': '160000'}, "
        "'Jasmin Hosting': {'1': '170000'}}, 12)"))
    wait_for_state(platform, reference, "evaluation")
    prepare(platform, f"evaluated({reference!r}, award=True)")
    assert wait_for_state(platform, reference, "standstill")["awards"][0]["supplier"] == \
        "Carthage Cloud"
    walk = Walk(platform, browser, language)

    outsider = walk.phone("sahel.info")  # a company that did not bid on the lot
    walk.go(outsider, reference)
    outsider.click("details summary >> nth=-1")
    outsider.check("input[name=lot][value='1']")
    outsider.fill("#id_complaint-text", "Nous contestons cette attribution.")
    walk.submit(outsider, "complaint")
    assert said(language, "Only the bidders of lot %(lot)s complain against its evaluation "
                "or award.") % {"lot": 1} in walk.message(outsider)
    assert detail(platform, reference)["complaints"] == []

    medina = walk.phone("medina.data")
    walk.go(medina, reference)
    medina.click("details summary >> nth=-1")
    medina.check("input[name=lot][value='1']")
    medina.fill("#id_complaint-text",
                "L'offre retenue propose un délai d'exécution de 90 jours, au-delà des 60 "
                "jours exigés.")
    walk.submit(medina, "complaint")
    [complaint] = detail(platform, reference)["complaints"]
    assert complaint["status"] == "filed"
    assert detail(platform, reference)["suspended"] is False  # filing suspends nothing

    body = walk.phone("auditeur.haicop")
    walk.look(body)
    waiting = body.locator("ul.waiting a", has_text=reference)
    assert waiting.count() == 1  # the complaint waits for its ruling on her account page
    with body.expect_navigation():
        waiting.click()
    walk.look(body)
    body.check("input[name=admissible][value=yes]")
    body.fill("textarea[id^='id_admissibility']",
              "Recours motivé, déposé dans le délai par un soumissionnaire du lot.")
    walk.submit(body, "admissibility")
    admitted = detail(platform, reference)
    assert admitted["complaints"][0]["status"] == "admitted" and admitted["suspended"]
    body.check("input[name=upheld][value=yes]")
    body.select_option("select[name=remedy]", "reevaluate")
    body.fill("textarea[id^='id_decide']",
              "L'offre retenue ne respecte pas le délai d'exécution exigé.")
    walk.submit(body, "decide")
    upheld = detail(platform, reference)
    assert upheld["state"] == "evaluation" and not upheld["suspended"]
    assert [a["status"] for a in upheld["awards"]] == ["cancelled"]
    body.screenshot(path=str(output_dir / f"complaint-{language}.png"), full_page=True)

    buyer = walk.phone("achats.finances")
    walk.go(buyer, reference)
    walk.submit(buyer, "award")  # the remedy binds: no award before a new evaluation
    assert said(language, "An upheld complaint invalidated lot %(lot)s's evaluation: "
                "evaluate it again before the award.") % {"lot": 1} in walk.message(buyer)
    assert detail(platform, reference)["state"] == "evaluation"

    evaluator = walk.phone("eval.finances")
    walk.go(evaluator, reference)
    rows = evaluator.locator("form[action$='/eligibility/']")
    assert rows.count() == 3  # every bid of the lot is to be decided again
    for _ in range(3):
        form = evaluator.locator("form[action$='/eligibility/']").first
        if "Carthage" in form.locator("xpath=ancestor::tr").inner_text():
            form.locator("input[name=check]").uncheck()
            form.locator("input[name=reason]").fill("Délai d'exécution de 90 jours.")
        with evaluator.expect_navigation():
            form.locator("button[type=submit]").click()
        walk.look(evaluator)
    walk.go(buyer, reference)
    walk.submit(buyer, "evaluate")
    chair = walk.phone("commission.finances")
    for member in (evaluator, chair):
        walk.go(member, reference)
        member.check("input[name=approved][value=yes]")
        walk.submit(member, "approve")
    walk.go(buyer, reference)
    walk.submit(buyer, "award")
    again = detail(platform, reference)
    assert again["state"] == "standstill"
    assert [(a["supplier"], a["status"]) for a in again["awards"]] == \
        [("Carthage Cloud", "cancelled"), ("Medina Data Services", "active")]
    walk.go(medina, reference)
    assert said(language, "Upheld") in medina.inner_text(f"#complaint-{complaint['id']}")
    medina.screenshot(path=str(output_dir / f"reawarded-{language}.png"), full_page=True)
    walk.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_an_amendment_extends_the_deadline_and_the_company_that_bid_confirms_its_bid(
        platform, browser, language, output_dir):
    """The buyer amends a tender taking bids — new compliance criteria, a later deadline,
    its rationale; the company that bid finds on its account page that it must confirm or
    replace its sealed bid, confirms it on the tender page, and nothing waits any more; a
    company that did not bid is told nothing."""
    reference = prepare(platform, (
        f"tender_taking_bids('Sauvegarde externalisée — rectificatif {language}', "
        "['Sauvegarde'], {'Carthage Cloud': {'1': '90000'}}, 900)"))
    old = dt.datetime.fromisoformat(detail(platform, reference)["submission_deadline"])
    new = (old + dt.timedelta(days=14)).replace(microsecond=0)
    walk = Walk(platform, browser, language)

    buyer = walk.phone("achats.finances")
    walk.go(buyer, reference)
    buyer.click("#amend-tender summary")
    walk.look(buyer)
    buyer.fill("#id_amendment-rationale", "Volumétrie des sauvegardes portée à 200 To.")
    buyer.fill("#id_amendment-submission_deadline", local(new))
    buyer.fill("#id_amendment-compliance_criteria",
               "Sauvegardes chiffrées\nRestauration testée chaque trimestre")
    walk.submit(buyer, "amend_tender")
    amended = detail(platform, reference)
    assert dt.datetime.fromisoformat(amended["submission_deadline"]) == new
    [amendment] = amended["amendments"]
    assert amendment["rationale"] == "Volumétrie des sauvegardes portée à 200 To."
    assert "200 To" in buyer.inner_text("#amendment-1")

    carthage = walk.phone("carthage.cloud")
    walk.look(carthage)
    waiting = carthage.locator("ul.waiting a", has_text=reference)
    assert waiting.count() == 1  # on its account page: confirm or replace
    with carthage.expect_navigation():
        waiting.click()
    walk.look(carthage)
    confirm = carthage.locator("form.confirm-bid")
    assert confirm.count() == 1
    carthage.screenshot(path=str(output_dir / f"to-confirm-{language}.png"), full_page=True)
    with carthage.expect_navigation():
        confirm.locator("button[type=submit]").click()
    walk.look(carthage)
    assert carthage.locator("form.confirm-bid").count() == 0
    notice = carthage.locator("section[aria-labelledby=company-panel] p.notice").inner_text()
    assert said(language, "Read the amendment") in notice
    with translation.override(language):
        assert formats.date_format(new.astimezone(TUNIS), "DATETIME_FORMAT") in notice
    assert carthage.locator("form[action$='/withdraw/']").count() == 1  # it may withdraw
    carthage.goto(platform["url"] + "/accounts/")
    walk.look(carthage)
    assert carthage.locator("ul.waiting a", has_text=reference).count() == 0
    carthage.screenshot(path=str(output_dir / f"confirmed-{language}.png"), full_page=True)

    jasmin = walk.phone("jasmin.hosting")
    assert jasmin.locator("ul.waiting a", has_text=reference).count() == 0
    walk.go(jasmin, reference)
    assert jasmin.locator("section[aria-labelledby=company-panel] p.notice").count() == 0
    assert jasmin.locator("form.confirm-bid").count() == 0
    walk.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_an_abnormally_low_price_is_explained_before_the_committee_decides(
        platform, browser, language, output_dir):
    """The committee's chair asks the bidder whose price is abnormally low to explain it;
    the company finds the request on its account page and answers in the tender page; the
    chair reads the answer and accepts it with reasons; the report is proposed again and
    adopted, and only then the lot is awarded to that bid. The public sees the decision,
    never the answer."""
    reference = prepare(platform, (
        f"tender_taking_bids('Maintenance du parc — prix bas {language}', ['Maintenance'], "
        "{'Carthage Cloud': {'1': '60000'}, 'Medina Data Services': {'1': '150000'}, "
        "'Jasmin Hosting': {'1': '155000'}, 'Sahel Informatique': {'1': '160000'}}, 14)"))
    wait_for_state(platform, reference, "evaluation")
    prepare(platform, f"evaluated({reference!r}, award=False)")
    walk = Walk(platform, browser, language)

    chair = walk.phone("commission.finances")
    walk.go(chair, reference)
    asking = chair.locator("form[action$='/explain_request/']")
    assert asking.count() == 1 and "Carthage" in asking.inner_text()  # the low price only
    asking.locator("textarea[name=question]").fill(
        "Détaillez la composition de votre prix : ressources, sous-traitance, marge.")
    walk.submit(chair, "explain_request")

    carthage = walk.phone("carthage.cloud")
    walk.look(carthage)
    waiting = carthage.locator("ul.waiting a", has_text=reference)
    assert waiting.count() == 1
    with carthage.expect_navigation():
        waiting.click()
    walk.look(carthage)
    answer = "Équipe déjà sur place pour un autre marché ; marge réduite à 4 %."
    carthage.fill("form[action$='/explain_answer/'] textarea[name=answer]", answer)
    walk.submit(carthage, "explain_answer")
    assert carthage.locator("form[action$='/explain_answer/']").count() == 0

    walk.go(chair, reference)
    deciding = chair.locator("form[action$='/explain_decide/']")
    assert answer in deciding.inner_text()  # the committee reads the answer
    deciding.locator("input[name=accepted][value=yes]").check()
    deciding.locator("textarea[name=reason]").fill("Explication vérifiée : le prix est tenable.")
    walk.submit(chair, "explain_decide")

    buyer = walk.phone("achats.finances")
    walk.go(buyer, reference)
    walk.submit(buyer, "evaluate")  # the decision goes into a new report
    evaluator = walk.phone("eval.finances")
    for member in (evaluator, chair):
        walk.go(member, reference)
        member.check("input[name=approved][value=yes]")
        walk.submit(member, "approve")
    walk.go(buyer, reference)
    walk.submit(buyer, "award")
    awarded = detail(platform, reference)
    assert awarded["state"] == "standstill"
    assert [(a["supplier"], a["value"]) for a in awarded["awards"]] == \
        [("Carthage Cloud", "60000.000")]

    public = walk.phone(None)
    walk.go(public, reference)
    explained = public.inner_text("main")
    assert said(language, "Accepted") in explained
    assert "Explication vérifiée" in explained and answer not in explained
    public.screenshot(path=str(output_dir / f"explained-{language}.png"), full_page=True)
    walk.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_lot_cancelled_by_an_upheld_complaint_shows_its_reason_to_the_public(
        platform, browser, language, output_dir):
    """A bidder complains against the award of the second lot; the complaints body admits
    it, which suspends that lot only, and upholds it by cancelling that lot. The other
    lot's award stands, and anyone reading the tender sees the second lot cancelled and
    why."""
    reference = prepare(platform, (
        f"tender_taking_bids('Serveurs et stockage — lot annulé {language}', "
        "['Serveurs', 'Stockage'], {'Carthage Cloud': {'1': '150000', '2': '90000'}, "
        "'Medina Data Services': {'1': '160000', '2': '95000'}}, 12)"))
    wait_for_state(platform, reference, "evaluation")
    prepare(platform, f"evaluated({reference!r}, award=True)")
    wait_for_state(platform, reference, "standstill")
    walk = Walk(platform, browser, language)

    medina = walk.phone("medina.data")
    walk.go(medina, reference)
    medina.click("details summary >> nth=-1")
    medina.check("input[name=lot][value='2']")
    medina.fill("#id_complaint-text", "Le besoin du lot 2 a été modifié après l'ouverture.")
    walk.submit(medina, "complaint")
    body = walk.phone("auditeur.haicop")
    walk.go(body, reference)
    body.check("input[name=admissible][value=yes]")
    body.fill("textarea[id^='id_admissibility']", "Recours motivé, dans le délai.")
    walk.submit(body, "admissibility")
    admitted = detail(platform, reference)  # only the lot complained against is suspended
    assert [lot["suspended_since"] is not None for lot in admitted["lots"]] == [False, True]
    body.check("input[name=upheld][value=yes]")
    body.select_option("select[name=remedy]", "cancel_lot")
    reason = "Le besoin du lot 2 n'est plus celui publié : le lot est annulé."
    body.fill("textarea[id^='id_decide']", reason)
    walk.submit(body, "decide")
    decided = detail(platform, reference)
    assert [(lot["number"], lot["cancelled"]) for lot in decided["lots"]] == \
        [(1, False), (2, True)]
    assert sorted((a["lot"], a["status"]) for a in decided["awards"]) == \
        [(1, "active"), (2, "cancelled")]

    public = walk.phone(None)
    walk.go(public, reference)
    second = public.locator("table").first.locator("tbody tr").nth(1).inner_text()
    assert said(language, "Lot cancelled") in second and reason in second
    first = public.locator("table").first.locator("tbody tr").nth(0).inner_text()
    assert said(language, "Lot cancelled") not in first
    public.screenshot(path=str(output_dir / f"lot-cancelled-{language}.png"), full_page=True)
    walk.close()
