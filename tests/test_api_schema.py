"""Property-based run of the whole OpenAPI document: no 5xx, every response fits the schema."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from sahab.core.inprocess import InProcessWSGI
from sahab.directory import services
from sahab.directory.selectors import SYSTEM
from tests import factories

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", InProcessWSGI())

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def platform_token(db):
    factories.administration(code="MF")
    factories.company()
    admin = factories.platform_admin()
    return services.issue_api_token(actor=SYSTEM, user=admin.user, name="schemathesis")[1]


@schema.parametrize()
@settings(max_examples=int(os.environ.get("SAHAB_SCHEMA_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_conforms_to_its_schema(case, platform_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {platform_token}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_without_credentials_never_fails_with_5xx(case, db):
    case.call_and_validate(checks=CHECKS)


def test_every_schema_name_is_unique_across_pillars():
    """The OpenAPI document keys schemas by class name: two pillars' ``DecisionIn`` would
    silently document one of them with the other's fields."""
    import ast
    from collections import Counter
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "src" / "sahab"
    names = Counter(node.name for path in source.glob("**/api.py")
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ClassDef))
    assert [name for name, count in names.items() if count > 1] == []
