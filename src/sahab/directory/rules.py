"""Who may do what to whom: the one table of rights of the directory.

Plain predicates, each ``(actor, ...) -> bool``, called by the services (which refuse),
by the API and by the templates (which only hide what the services would refuse). A
predicate never writes and never raises.

The rules (docs/security.md, "Roles"):

- Platform administrators manage everything, and they alone grant, remove or touch the
  holders of the *powerful* roles: platform administrator, auditor, complaints body.
- An administration administrator manages the agents of their subtree and grants them
  the ordinary roles; a holder of a powerful role inside that subtree is out of their
  reach (no deactivation, move, role change or second-factor reset).
- The complaints body decides complaints, never about a buyer of its own line; auditors
  read (every administration's figures) and decide nothing.
"""

from __future__ import annotations

from sahab.directory import selectors
from sahab.directory.models import Administration, Agent, Role

# Roles only platform administrators grant or remove, and whose holders only they manage.
POWERFUL_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR, Role.COMPLAINTS_BODY})
ORDINARY_ROLES = frozenset(set(Role.values) - POWERFUL_ROLES)


def is_platform_admin(actor) -> bool:
    return selectors.is_platform_admin(actor)


def can_manage_administration(actor, administration: Administration) -> bool:
    """Platform admins manage every administration; administration admins their subtree."""
    return selectors.can_manage_administration(actor, administration)


def can_grant_role(actor, role: str, administration: Administration) -> bool:
    """Whether ``actor`` may give (or take away) ``role`` to an agent of ``administration``."""
    if role in POWERFUL_ROLES:
        return is_platform_admin(actor)
    return role in ORDINARY_ROLES and can_manage_administration(actor, administration)


def grantable_roles(actor, administration: Administration) -> list[str]:
    """The roles ``actor`` may give in ``administration``, in the table's order."""
    return [r for r in Role.values if can_grant_role(actor, r, administration)]


def can_manage_agent(actor, agent: Agent) -> bool:
    """Deactivate, change roles, reset the second factor: the agent's administration is
    the actor's to manage, and a holder of a powerful role is a platform admin's only."""
    if not can_manage_administration(actor, agent.administration):
        return False
    return is_platform_admin(actor) or not (agent.role_set & POWERFUL_ROLES)


def can_set_agent_active(actor, agent: Agent) -> bool:
    return can_manage_agent(actor, agent) and selectors.agent_of(actor) != agent


def can_move_agent(actor, agent: Agent, to: Administration) -> bool:
    return can_manage_agent(actor, agent) and can_manage_administration(actor, to)


def can_reset_second_factor(actor, agent: Agent) -> bool:
    """Reset somebody else's second factor (the agent turns their own off with a code)."""
    return can_manage_agent(actor, agent)


def can_assign_mail_domain(actor) -> bool:
    """Mail domains are the state's: platform admins alone assign them (docs/mail.md)."""
    return is_platform_admin(actor)


def can_decide_complaint(actor, buyer: Administration) -> bool:
    """The complaints body decides, and never about a buyer of its own line."""
    if isinstance(actor, selectors.SystemActor):
        return True
    agent = selectors.agent_of(actor)
    if agent is None or Role.COMPLAINTS_BODY not in agent.role_set:
        return False
    return not (agent.administration.is_within(buyer) or buyer.is_within(agent.administration))


def sees_every_administration(actor) -> bool:
    """Read-only oversight of every administration's figures: platform admins, auditors."""
    return is_platform_admin(actor) or Role.AUDITOR in selectors.roles_of(actor)
