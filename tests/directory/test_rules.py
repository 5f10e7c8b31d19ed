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
# Roles that act over the whole ministry (finance): its holders, and the role itself, are
# for those who manage the whole ministry, never for the administrator of one of its units.
MINISTRY_WIDE = {Role.FINANCE}
# Where the actor sits, and where the target sits as seen from the actor: "own" is the
# actor's administration, "subtree" one below it, "parent" the one above it (a unit's
# ministry), "other" another ministry's line.
HOMES = ("ministry", "unit")
PLACES = ("ministry", "unit", "other")
SCOPE = {("ministry", "ministry"): "own", ("ministry", "unit"): "subtree",
         ("unit", "unit"): "own", ("unit", "ministry"): "parent",
         ("ministry", "other"): "other", ("unit", "other"): "other"}
AGENT_ACTIONS = ("grant", "set_roles", "deactivate", "move", "move_up", "move_away",
                 "reset_second_factor", "decide_complaint")
COMPANY_ACTORS = ("company_member", "company_admin")

# Who may act on whom, per actor and action: "all" (every scope), "mine" (own
# administration and below) or "outside_my_line" (neither own, below nor above). A
# holder of a powerful role is a platform administrator's only. Actors and actions not
# listed may do nothing. Written from docs/security.md, apart from the code under test.
TABLE = {
    Role.PLATFORM_ADMIN: {"grant": "all", "set_roles": "all", "deactivate": "all",
                          "move": "all", "move_up": "all", "move_away": "all",
                          "reset_second_factor": "all"},
    Role.ADMINISTRATION_ADMIN: {"grant": "mine", "set_roles": "mine", "deactivate": "mine",
                                "move": "mine", "move_up": "mine", "move_away": "mine",
                                "reset_second_factor": "mine"},
    Role.COMPLAINTS_BODY: {"decide_complaint": "outside_my_line"},
}
# Actions that take no target: the actors who may do them.
GLOBAL_ACTIONS = {"assign_mail_domain": {Role.PLATFORM_ADMIN},
                  "see_every_administration": {Role.PLATFORM_ADMIN, Role.AUDITOR}}


def expected(actor: str | None, action: str, scope: str, target_role: str,
             to: str = "own", home: str = "ministry") -> bool:
    """``to``: for a move, the scope of the destination as seen from the actor; ``home``:
    where the actor sits."""
    reach = TABLE.get(actor, {}).get(action)
    if reach is None:
        return False
    if action == "decide_complaint":  # the target's administration is the buyer
        return reach == "outside_my_line" and scope == "other"
    if target_role in POWERFUL and actor != Role.PLATFORM_ADMIN:
        return False
    if target_role in MINISTRY_WIDE and actor != Role.PLATFORM_ADMIN and home != "ministry":
        return False
    mine = ("own", "subtree")
    return reach == "all" or (reach == "mine" and scope in mine and to in mine)


@pytest.fixture
def tree():
    ministry = factories.administration(code="MIN")
    unit = factories.administration(code="MIN-U", kind=AdministrationKind.UNIT, parent=ministry)
    other = factories.administration(code="OTH")
    other_unit = factories.administration(code="OTH-U", kind=AdministrationKind.UNIT,
                                          parent=other)
    return {"own": ministry, "subtree": unit, "other": other, "other_unit": other_unit,
            "ministry": ministry, "unit": unit}


# Where each move goes, by the actor's home and the target's place: "move" stays in the
# actor's reach when the target is; "move_up" goes to the ministry (above a unit's
# administrator); "move_away" into another ministry's line.
MOVES = {"move": {("ministry", "ministry"): "unit", ("ministry", "unit"): "ministry",
                  ("unit", "unit"): "unit", ("unit", "ministry"): "unit",
                  ("ministry", "other"): "other_unit", ("unit", "other"): "other_unit"},
         "move_up": {key: "ministry" for key in SCOPE},
         "move_away": {key: "other_unit" for key in SCOPE}}


def outcomes(actor, home: str, target, place: str, tree) -> dict[str, bool]:
    """What the rules answer for each action of ``actor`` on ``target`` (at ``place``)."""
    role = next(iter(target.role_set))
    administration = target.administration
    return {
        "grant": rules.can_grant_role(actor, role, administration),
        "set_roles": (rules.can_manage_agent(actor, target)
                      and rules.can_grant_role(actor, role, administration)),
        "deactivate": rules.can_set_agent_active(actor, target),
        **{move: rules.can_move_agent(actor, target, tree[to[(home, place)]])
           for move, to in MOVES.items()},
        "reset_second_factor": rules.can_reset_second_factor(actor, target),
        "decide_complaint": rules.can_decide_complaint(actor, administration),
    }


def test_every_role_action_and_scope_follows_the_table(tree):
    """Every role (none, and the company roles too), placed in a ministry and in one of
    its units, against every target role in its own administration, below, above and in
    another line, for every action; then the actions that take no target."""
    actors = {}
    for home in HOMES:
        for role in [*Role.values, None]:
            actors[(role, home)] = factories.agent(
                administration=tree[home], roles=[role] if role else []).user
    company, company_admin = factories.company()
    member, _ = services.add_company_user(actor=company_admin.user, company=company,
                                          username="member", email="member@example.tn")
    for home in HOMES:
        actors[("company_admin", home)] = company_admin.user
        actors[("company_member", home)] = member.user
    targets = {(place, role): factories.agent(administration=tree[place], roles=[role])
               for place in PLACES for role in Role.values}
    global_answers = {"assign_mail_domain": rules.can_assign_mail_domain,
                      "see_every_administration": rules.sees_every_administration}
    checked = 0
    for (actor_role, home), actor in actors.items():
        for (place, target_role), target in targets.items():
            scope = SCOPE[(home, place)]
            outcome = outcomes(actor, home, target, place, tree)
            for action in AGENT_ACTIONS:
                to = MOVES[action][(home, place)] if action in MOVES else home
                to_scope = SCOPE[(home, "other" if to == "other_unit" else to)]
                assert outcome[action] == expected(actor_role, action, scope, target_role,
                                                   to_scope, home), (
                    actor_role, home, action, scope, target_role, to_scope)
                checked += 1
        for action, allowed in GLOBAL_ACTIONS.items():
            assert global_answers[action](actor) == (actor_role in allowed), (actor_role, action)
            checked += 1
    roles = len(Role.values) + 1 + len(COMPANY_ACTORS)
    assert checked == len(HOMES) * roles * (
        len(PLACES) * len(Role.values) * len(AGENT_ACTIONS) + len(GLOBAL_ACTIONS))


def test_changing_or_removing_roles_through_the_service_follows_the_table(tree):
    """set_agent_roles on existing agents, by an administration administrator of the
    ministry and of its unit: removing every role, then giving another."""
    admins = {home: factories.agent(administration=tree[home],
                                    roles=[Role.ADMINISTRATION_ADMIN]).user for home in HOMES}
    for home, actor in admins.items():
        for place in PLACES:
            for role in Role.values:
                target = factories.agent(administration=tree[place], roles=[role])
                scope = SCOPE[(home, place)]
                allowed = expected(Role.ADMINISTRATION_ADMIN, "set_roles", scope, role,
                                   home=home)
                for change in ([], [Role.FINANCE], [Role.EVALUATOR]):
                    before = target.role_set
                    if allowed and all(expected(Role.ADMINISTRATION_ADMIN, "grant", scope, r,
                                                home=home) for r in set(change) ^ before):
                        target = services.set_agent_roles(actor=actor, agent=target,
                                                          roles=change)
                        assert target.role_set == set(change)
                    else:
                        with pytest.raises(PermissionDenied):
                            services.set_agent_roles(actor=actor, agent=target, roles=change)
                        target = Agent.objects.get(pk=target.pk)
                        assert target.role_set == before, (home, place, role, change)


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
