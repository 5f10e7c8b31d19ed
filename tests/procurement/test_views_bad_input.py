"""Every form of the tender page turns bad input into a clear message on the page (or a
404 when it names an object that is not the tender's), never a 500, and records nothing."""

import pytest
from django.test import Client

from sahab.ledger.models import Entry
from sahab.procurement import services

MISSING = ["1e99", "-1", "", "abc", "99999999999999999999999"]

# (action, what is posted, the words the message must hold)
BAD_INPUT = [
    ("cancel", {"cancel-text": ""}, "Reason: This field is required."),
    ("document", {}, "Document: This field is required."),
    ("amend_tender", {"amendment-rationale": ""}, "Rationale (published): This field"),
    ("question", {"question-text": "x" * 5001}, "Question: Ensure this value has at most"),
    ("bid", {"envelope": "enveloppe scellée"}, "The sealed envelope is ASCII text."),
    ("committee", {"members": "nobody.here", "threshold": "2"},
     "Name members by their user names."),
    ("committee", {"members": "x", "threshold": "two"}, "Threshold: Enter a whole number."),
    ("committee_key", {"public_key": "not base64!"}, "This is not base64."),
    ("release", {"private_key": "%%%"}, "This is not base64."),
    ("release", {"private_key": " "}, "This field is required."),
    ("register_key", {"public_key": "AAAA", "proof": "@@"}, "Proof of possession: This is"),
    ("declare", {"no_conflict": "maybe"}, "Select a valid choice."),
    ("evaluation_committee", {"evaluation_members": "ghost", "chair": "ghost",
                              "quorum": "2"}, "Name members by their user names."),
    ("evaluation_committee", {"evaluation_members": "x", "chair": "x", "quorum": "many"},
     "Quorum: Enter a whole number."),
    ("approve", {"sha256": "0" * 64, "approved": "perhaps"}, "Approval: Select a valid"),
    ("award", {"justification": "x" * 5001}, "Justification: Ensure this value"),
    ("complaint", {"complaint-text": "Grief.", "lot": ["abc"]}, "Lots: Select a valid"),
]


# action → the field naming an object of the tender
OBJECTS = {"answer": "question", "withdraw": "bid", "eligibility": "bid_lot",
           "score": "bid_lot", "explain_request": "bid_lot", "explain_answer": "explanation",
           "explain_decide": "explanation", "admissibility": "complaint", "decide": "complaint",
           "amend": "contract", "pay": "contract", "price": "contract",
           "countersign": "contract", "complete": "contract",
           "decide_amendment": "amendment", "contract": "award"}


def officer(world) -> Client:
    client = Client()
    client.force_login(world["officer"].user)
    return client


def errors(response) -> list[str]:
    return [str(m) for m in response.context["messages"] if m.level_tag == "error"]


@pytest.mark.parametrize(("action", "data", "message"), BAD_INPUT,
                         ids=[f"{a}-{'-'.join(d)}" for a, d, _m in BAD_INPUT])
def test_bad_input_is_a_message_and_changes_nothing(world, published_tender, action, data,
                                                    message):
    before = Entry.objects.count()
    answer = officer(world).post(f"/tenders/{published_tender.reference}/{action}/", data,
                                 follow=True)
    assert answer.status_code == 200
    assert any(message in e for e in errors(answer)), errors(answer)
    assert Entry.objects.count() == before


@pytest.mark.parametrize("action", sorted(OBJECTS))
def test_an_object_that_is_not_the_tenders_is_not_found(world, published_tender, action):
    before = Entry.objects.count()
    client = officer(world)
    for value in MISSING:
        answer = client.post(f"/tenders/{published_tender.reference}/{action}/",
                             {OBJECTS[action]: value})
        assert answer.status_code == 404, value
    assert Entry.objects.count() == before


def test_the_services_refusal_is_the_message(world, published_tender):
    answer = officer(world).post(f"/tenders/{published_tender.reference}/publish/",
                                 follow=True)
    assert answer.status_code == 200 and len(errors(answer)) == 1
    assert "Done" not in " ".join(str(m) for m in answer.context["messages"])


def test_an_unknown_action_or_a_get_changes_nothing(world, published_tender):
    client = officer(world)
    ref = published_tender.reference
    assert client.post(f"/tenders/{ref}/frobnicate/").status_code == 404
    assert client.get(f"/tenders/{ref}/publish/").status_code == 302
    assert Client().post(f"/tenders/{ref}/cancel/", {"cancel-text": "x"}).status_code == 302
    published_tender.refresh_from_db()
    assert published_tender.state == "enquiries"


def test_a_form_on_an_existing_object_names_the_bad_field(world, published_tender):
    carthage = world["companies"][1][1].user
    question = services.ask_question(actor=carthage, tender=published_tender, text="Délai ?")
    complaint = services.file_complaint(actor=carthage, tender=published_tender,
                                        text="Lot 1 orienté.", lots=[1])
    before = Entry.objects.count()
    ref = published_tender.reference
    answer = officer(world).post(f"/tenders/{ref}/answer/", {
        "question": str(question.pk), f"answer{question.pk}-text": ""}, follow=True)
    assert errors(answer) == ["Answer: This field is required."]
    haicop = Client()
    haicop.force_login(world["auditor"].user)
    answer = haicop.post(f"/tenders/{ref}/admissibility/", {
        "complaint": str(complaint.pk), "admissible": "perhaps",
        f"admissibility{complaint.pk}-text": "Recevable."}, follow=True)
    assert [e.split(":")[0] for e in errors(answer)] == ["Admissibility"]
    assert Entry.objects.count() == before
