"""Every refusal has a stable code and a message translated into French and Arabic; the API
names the code in the problem's ``type`` and ``code`` and answers in the request's language."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

from sahab.core import error_codes, errors
from sahab.core.errors import Conflict, CoreError, DomainError, NotFound, read_when_rendered
from tests import factories

SRC = Path(__file__).resolve().parents[2] / "src" / "sahab"
DOC = SRC.parents[1] / "docs" / "errors.md"
# The pillars whose refusals are all coded.
CODED = ("core", "cloud", "exchange", "ledger", "portal", "mail", "directory", "procurement", "ops")
# Every module is scanned (procurement's views, once a dispatcher, are forms now).
NOT_SCANNED: tuple[str, ...] = ()
ARABIC = re.compile("[\u0600-\u06ff]")
MEMBERS = [m for cls in errors.enumerations() for m in cls]


def placeholders(template: str) -> dict:
    return {name: f"«{name}»" for name in re.findall(r"%\((\w+)\)s", template)}


@pytest.mark.parametrize("language", ["fr", "ar"])
@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.code)
def test_every_code_renders_translated_in_french_and_arabic(member, language):
    with translation.override("en"):
        english = str(member.template)
    params = placeholders(english)
    with translation.override(language):
        text = member.render(**params)
    assert text != english % params if params else text != english
    assert "%(" not in text
    assert all(value in text for value in params.values()), "a parameter is lost"
    if language == "ar":
        assert ARABIC.search(text)


def test_codes_are_unique_and_snake_case():
    codes = [m.code for m in MEMBERS]
    assert len(codes) == len(set(codes))
    assert set(codes).isdisjoint(errors.generic_codes())
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", code) for code in codes)
    for cls in errors.enumerations():
        assert len(cls.__members__) == len(list(cls)), f"{cls.__name__} has an alias"


def test_an_error_renders_in_the_language_active_when_read():
    exc = NotFound(CoreError.NO_ADMINISTRATION, code="XYZ")
    assert (exc.code, exc.params, exc.status) == ("no_administration", {"code": "XYZ"}, 404)
    with translation.override("en"):
        assert exc.detail == str(exc) == "No administration has the code XYZ."
    with translation.override("ar"):
        assert ARABIC.search(exc.detail) and "XYZ" in exc.detail


def test_a_parameter_may_be_read_in_the_reader_language_too():
    exc = Conflict(CoreError.DOCUMENT_EMPTY, name=read_when_rendered(translation.get_language))
    with translation.override("ar"):
        assert "ar" in exc.detail and ARABIC.search(exc.detail)
    with translation.override("fr"):
        assert exc.detail == "fr est vide."


@pytest.mark.django_db
def test_a_page_shows_the_refusal_in_the_visitor_language(client):
    response = client.post("/alerts/", {"email": "nobody", "kind": "cpv", "value": "72"},
                           HTTP_ACCEPT_LANGUAGE="ar")
    assert response.status_code == 400
    assert "ليس عنوان بريد إلكتروني" in response.content.decode()


def test_a_plain_string_keeps_working_with_the_generic_code_of_its_class():
    exc = Conflict("The tender is not under evaluation.", field_errors={"x": ["y"]})
    assert (exc.code, exc.detail, exc.params) == ("conflict", "The tender is not under "
                                                  "evaluation.", {})
    assert exc.field_errors == {"x": ["y"]}
    assert DomainError("x").code == "invalid_request"


@pytest.mark.django_db
def test_an_api_problem_names_its_code_and_answers_in_the_request_language(client, settings):
    settings.PUBLIC_URL = "https://sahab.example.tn/"
    response = client.get("/api/administrations/NOPE")
    body = response.json()
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == "no_administration"
    assert body["type"] == "https://sahab.example.tn/problems/no_administration"
    assert (body["title"], body["detail"]) == ("Not found",
                                               "No administration has the code NOPE.")

    arabic = client.get("/api/administrations/NOPE", HTTP_ACCEPT_LANGUAGE="ar").json()
    assert arabic["code"] == "no_administration" and "NOPE" in arabic["detail"]
    assert ARABIC.search(arabic["detail"])
    french = client.get("/api/administrations/NOPE", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert french["detail"] != body["detail"] and "NOPE" in french["detail"]


@pytest.mark.django_db
def test_the_ledger_problems_are_coded_too(client):
    factories.administration(code="MF")  # at least one ledger entry
    body = client.get("/ledger/entries/99999", HTTP_ACCEPT_LANGUAGE="ar").json()
    assert body["code"] == "no_entry" and body["type"].endswith("/problems/no_entry")
    assert "99999" in body["detail"] and ARABIC.search(body["detail"])


@pytest.mark.django_db
def test_the_type_of_a_problem_leads_to_what_its_code_means(client):
    listing = client.get("/problems/").json()["codes"]
    codes = {entry["code"] for entry in listing}
    assert {"conflict", "no_administration", "no_entry"} <= codes
    page = client.get("/problems/no_entry", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert page["pillar"] == "ledger" and page["status"] == [404]
    assert page["message"] != "The log has no entry %(index)s." and "%(index)s" in page["message"]
    assert client.get("/problems/no_such_code").status_code == 404


def test_every_raise_in_the_coded_pillars_passes_an_error_code():
    """No plain English string comes back from a converted pillar: each domain error is
    given a member of an enumeration (``raise Conflict(ExchangeError.X, …)``)."""
    classes = {cls.__name__ for cls in errors.ERROR_CLASSES} | set(error_codes.RAISING_HELPERS)
    enumerations = {cls.__name__ for cls in errors.enumerations()}
    plain = []
    for pillar in CODED:
        for path in sorted((SRC / pillar).rglob("*.py")):
            if path.relative_to(SRC).as_posix() in NOT_SCANNED:
                continue
            tree = ast.parse(path.read_text())
            helpers = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                       and f.name in error_codes.RAISING_HELPERS for n in ast.walk(f)}
            for node in ast.walk(tree):
                if id(node) in helpers:  # the helper raises what its callers pass
                    continue
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in classes):
                    continue
                position = 1 if node.func.id in error_codes.RAISING_HELPERS else 0
                if len(node.args) <= position:
                    continue
                arg = node.args[position]
                coded = (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
                         and arg.value.id in enumerations)
                if isinstance(arg, ast.IfExp):  # one of two codes
                    coded = all(isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name)
                                and a.value.id in enumerations for a in (arg.body, arg.orelse))
                if not coded:
                    plain.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert plain == []


def test_every_code_is_raised_somewhere():
    assert sorted(m.code for m in MEMBERS if m.code not in error_codes.statuses()) == []


def test_the_error_codes_page_is_current():
    assert DOC.read_text() == error_codes.markdown() + "\n", (
        "docs/errors.md is out of date: sahab errors > docs/errors.md")
