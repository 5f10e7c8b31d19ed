"""Who may grant what: the rule table walked role, action and scope, and the findings
("Role escalation") replayed against the services."""

import pyotp
import pytest

from sahab.core.errors import PermissionDenied
from sahab.directory import rules, services
from sahab.directory.models import AdministrationKind, Agent, AgentRole, ApiToken, Role
from sahab.directory.selectors import SYSTEM
from sahab.ledger.models import Entry
from tests import factories

pytestmark = pytest.mark.django_db

POWERFUL = {Role.PLATFORM_ADMIN, Role.AUDITOR, Role.COMPLAINTS_BODY}
SCOPES = ("own", "subtree", "other")
ACTIONS = ("grant", "deactivate", "move", "reset_second_factor")


def expected(actor_role: str | None, action: str, scope: str, target_role: str) -> bool:
    """The rules as docs/security.md states them, written apart from the code under test."""
    if actor_role == Role.PLATFORM_ADMIN:
        return True
    if actor_role != Role.ADMINISTRATION_ADMIN or scope == "other":
        return False
    return target_role not in POWERFUL


@pytest.fixture
def tree():
    ministry = factories.administration(code="MIN")
    unit = factories.administration(code="MIN-U", kind=AdministrationKind.UNIT, parent=ministry)
    other = factories.administration(code="OTH")
    other_unit = factories.administration(code="OTH-U", kind=AdministrationKind.UNIT,
                                          parent=other)
    return {"own": ministry, "subtree": unit, "other": other, "other_unit": other_unit}


def test_every_role_action_and_scope_follows_the_table(tree):
    actors = {role: factories.agent(administration=tree["own"], roles=[role]).user
              for role in Role.values}
    actors[None] = factories.agent(administration=tree["own"]).user
    targets = {(scope, role): factories.agent(administration=tree[scope], roles=[role])
               for scope in SCOPES for role in Role.values}
    destination = {"own": tree["subtree"], "subtree": tree["own"], "other": tree["other_unit"]}
    checked = 0
    for actor_role, actor in actors.items():
        for (scope, target_role), target in targets.items():
            outcome = {
                "grant": rules.can_grant_role(actor, target_role, tree[scope]),
                "deactivate": rules.can_set_agent_active(actor, target),
                "move": rules.can_move_agent(actor, target, destination[scope]),
                "reset_second_factor": rules.can_reset_second_factor(actor, target),
            }
            for action in ACTIONS:
                assert outcome[action] == expected(actor_role, action, scope, target_role), (
                    actor_role, action, scope, target_role)
                checked += 1
    assert checked == (len(Role.values) + 1) * len(SCOPES) * len(Role.values) * len(ACTIONS)


def test_the_forms_offer_only_the_roles_the_actor_may_grant(tree):
    admin = factories.agent(administration=tree["own"], roles=[Role.ADMINISTRATION_ADMIN]).user
    offered = set(rules.grantable_roles(admin, tree["subtree"]))
    assert offered == set(Role.values) - POWERFUL
    assert rules.grantable_roles(admin, tree["other"]) == []
    assert set(rules.grantable_roles(SYSTEM, tree["other"])) == set(Role.values)


def test_an_administration_admin_cannot_create_an_auditor(tree):
    """The finding: an administration admin created an agent with the auditor role, who
    then decided other ministries' complaints and saw every cloud order."""
    admin = factories.agent(administration=tree["own"], roles=[Role.ADMINISTRATION_ADMIN]).user
    entries = Entry.objects.count()
    for role in (Role.AUDITOR, Role.COMPLAINTS_BODY, Role.PLATFORM_ADMIN):
        with pytest.raises(PermissionDenied, match="Only platform administrators grant"):
            services.create_agent(actor=admin, administration=tree["subtree"],
                                  username=f"x-{role}", email="x@min.gov.tn", roles=[role])
    assert not Agent.objects.filter(user__username__startswith="x-").exists()
    assert Entry.objects.count() == entries
    ordinary = factories.agent(administration=tree["subtree"])
    with pytest.raises(PermissionDenied):
        services.set_agent_roles(actor=admin, agent=ordinary, roles=[Role.AUDITOR])
    assert not AgentRole.objects.filter(agent=ordinary).exists()
    # an auditor decides no complaint; only the complaints body, outside the buyer's line
    auditor = factories.agent(administration=tree["other"], roles=[Role.AUDITOR]).user
    body = factories.agent(administration=tree["other"], roles=[Role.COMPLAINTS_BODY]).user
    assert not rules.can_decide_complaint(auditor, tree["own"])
    assert rules.can_decide_complaint(body, tree["own"])
    assert not rules.can_decide_complaint(body, tree["other_unit"])


def test_an_administration_admin_cannot_touch_a_platform_admin_in_their_subtree(tree, client):
    """The finding: an administration admin deactivated, moved or reset the second factor
    of a platform administrator inside their subtree (whose API token was revoked)."""
    admin = factories.agent(administration=tree["own"], roles=[Role.ADMINISTRATION_ADMIN]).user
    platform = factories.agent(administration=tree["subtree"], roles=[Role.PLATFORM_ADMIN])
    secret = services.new_totp_secret()
    services.enable_totp(agent=platform, secret=secret, code=pyotp.TOTP(secret).now())
    _, token = services.issue_api_token(actor=SYSTEM, user=platform.user, name="ops")
    entries = Entry.objects.count()
    with pytest.raises(PermissionDenied):
        services.set_agent_active(actor=admin, agent=platform, active=False)
    with pytest.raises(PermissionDenied):
        services.move_agent(actor=admin, agent=platform, administration=tree["own"])
    with pytest.raises(PermissionDenied, match="second factor"):
        services.disable_totp(actor=admin, agent=platform)
    with pytest.raises(PermissionDenied):
        services.set_agent_roles(actor=admin, agent=platform, roles=[])
    platform.refresh_from_db()
    platform.user.refresh_from_db()
    assert platform.user.is_active and platform.totp_enabled
    assert platform.administration == tree["subtree"]
    assert platform.role_set == {Role.PLATFORM_ADMIN}
    assert ApiToken.objects.get(user=platform.user).revoked_at is None
    assert services.authenticate_token(token) == platform.user
    assert Entry.objects.count() == entries
    # the API refuses the same, before any part of the change
    token = services.issue_api_token(actor=SYSTEM, user=admin, name="admin")[1]
    for change in ({"active": False}, {"administration": "MIN"}, {"reset_second_factor": True},
                   {"roles": []}):
        response = client.patch(f"/api/agents/{platform.user.username}", change,
                                content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 403, (change, response.content)
        assert "only platform administrators" in response.json()["detail"]
    platform.refresh_from_db()
    assert platform.totp_enabled and platform.administration == tree["subtree"]
    assert services.authenticate_token(token) == admin
    # the web screen refuses with a clear message too
    client.force_login(admin)
    response = client.post(f"/directory/agents/{platform.user.username}/manage/",
                           {"roles": [Role.PLATFORM_ADMIN]})
    assert response.status_code == 403
    platform.user.refresh_from_db()
    assert platform.user.is_active


def test_a_platform_admin_appoints_the_complaints_body():
    body = factories.agent()
    services.set_agent_roles(actor=SYSTEM, agent=body, roles=[Role.COMPLAINTS_BODY])
    assert body.role_set == {Role.COMPLAINTS_BODY}
