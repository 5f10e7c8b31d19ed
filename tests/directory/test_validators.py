import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from sahab.directory.validators import normalize_matricule_fiscal


@pytest.mark.parametrize(("raw", "canonical"), [
    ("1234567A/A/M/000", "1234567A/A/M/000"),
    ("1234567aam000", "1234567A/A/M/000"),
    ("1234567 A / P / C / 000", "1234567A/P/C/000"),
    ("0876234L/B/N/000", "0876234L/B/N/000"),
    ("1234567Z/N/E/001", "1234567Z/N/E/001"),
    ("1234567B", "1234567B"),
])
def test_valid_matricules_are_normalised(raw, canonical):
    assert normalize_matricule_fiscal(raw) == canonical


@pytest.mark.parametrize("raw", [
    "", "123456A/A/M/000", "1234567I/A/M/000", "1234567O/A/M/000", "1234567U/A/M/000",
    "1234567A/X/M/000", "1234567A/A/Q/000", "1234567A/A/M/00", "1234567A/A/E/000",
    "ABCDEFGA/A/M/000", "1234567A/A/M/000/1",
])
def test_invalid_matricules_are_refused_with_an_explanation(raw):
    with pytest.raises(ValidationError) as info:
        normalize_matricule_fiscal(raw)
    assert "matricule" in str(info.value).lower() or "category" in str(info.value).lower()


@given(digits=st.from_regex(r"\A\d{7}\Z"), key=st.sampled_from("ABCDEFGHJKLMNPQRSTVWXYZ"),
       vat=st.sampled_from("APBDN"), cat=st.sampled_from("MPCN"),
       est=st.from_regex(r"\A\d{3}\Z"))
def test_normalisation_is_idempotent(digits, key, vat, cat, est):
    once = normalize_matricule_fiscal(f"{digits}{key}{vat}{cat}{est}")
    assert normalize_matricule_fiscal(once) == once == f"{digits}{key}/{vat}/{cat}/{est}"


def test_a_demo_password_too_like_its_users_address_is_drawn_again(monkeypatch):
    """Regression: `sahab demo` once drew a random password the rules refused as too like
    the user's own address, and stopped. It now draws until the rules accept it."""
    from django.contrib.auth import password_validation

    from sahab.directory import demo

    draws = iter(["acmeexample", "Xq7-kLm2pR9w"])
    monkeypatch.setattr(demo.secrets, "token_urlsafe", lambda n: next(draws))
    user = {"username": "acme", "email": "demo-acmeexample@example.tn",
            "first_name": "Demo", "last_name": "Acme"}
    with pytest.raises(ValidationError):
        password_validation.validate_password("demo-acmeexample", demo.User(**user))
    assert demo._password({}, **user) == "demo-Xq7-kLm2pR9w"
    kept = {"users": [{"username": "acme", "password": "demo-kept-from-before"}]}
    assert demo._password(kept, **user) == "demo-kept-from-before"
