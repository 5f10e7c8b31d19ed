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
- A *ministry-wide* role (finance) acts over the whole ministry its holder sits in, units
  above and beside them included: only those who manage that whole ministry grant or
  remove it, and manage its holders. An administrator of a unit therefore cannot make
  themselves, or anybody, the approver and budget holder of their parent ministry.
- Whoever may set a person's personal mailbox may read the password-reset link mailed
  there: only someone who could give that person every role they hold may do it.
- The complaints body decides complaints, never about a buyer of its own line; auditors
  read (every administration's figures) and decide nothing.
"""

from __future__ import annotations

from sahab.directory import selectors
from sahab.directory.models import Administration, Agent, Role

# Roles only platform administrators grant or remove, and whose holders only they manage.
POWERFUL_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR, Role.COMPLAINTS_BODY})
ORDINARY_ROLES = frozenset(set(Role.values) - POWERFUL_ROLES)
# Ordinary roles whose holder acts over their whole ministry (cloud.selectors.scope_path:
# finance approves orders and sets budgets for every unit of it): granted, removed and
# their holders managed only by those who manage the whole ministry.
MINISTRY_WIDE_ROLES = frozenset({Role.FINANCE})


def is_platform_admin(actor) -> bool:
    return selectors.is_platform_admin(actor)


def can_manage_administration(actor, administration: Administration) -> bool:
    """Platform admins manage every administration; administration admins their subtree."""
    return selectors.can_manage_administration(actor, administration)


def manages_whole_line(actor, administration: Administration) -> bool:
    """Whether ``actor`` manages the whole ministry (the top of the tree) ``administration``
    belongs to: platform admins, and the administrators of that ministry."""
    if is_platform_admin(actor):
        return True
    root = selectors.managed_root(actor)
    return root is not None and root.parent_id is None and administration.is_within(root)


def can_grant_role(actor, role: str, administration: Administration) -> bool:
    """Whether ``actor`` may give (or take away) ``role`` to an agent of ``administration``."""
    if role in POWERFUL_ROLES:
        return is_platform_admin(actor)
    if role in MINISTRY_WIDE_ROLES:
        return manages_whole_line(actor, administration)
    return role in ORDINARY_ROLES and can_manage_administration(actor, administration)


def grantable_roles(actor, administration: Administration) -> list[str]:
    """The roles ``actor`` may give in ``administration``, in the table's order."""
    return [r for r in Role.values if can_grant_role(actor, r, administration)]


def can_manage_agent(actor, agent: Agent) -> bool:
    """Deactivate, change roles, reset the second factor: the agent's administration is
    the actor's to manage, and a holder of a powerful role is a platform admin's only."""
    if not can_manage_administration(actor, agent.administration):
        return False
    if is_platform_admin(actor):
        return True
    roles = agent.role_set
    if roles & POWERFUL_ROLES:
        return False
    return not (roles & MINISTRY_WIDE_ROLES) or manages_whole_line(actor, agent.administration)


def can_set_agent_active(actor, agent: Agent) -> bool:
    return can_manage_agent(actor, agent) and selectors.agent_of(actor) != agent


def can_move_agent(actor, agent: Agent, to: Administration) -> bool:
    return can_manage_agent(actor, agent) and can_manage_administration(actor, to)


def can_reset_second_factor(actor, agent: Agent) -> bool:
    """Reset somebody else's second factor (the agent turns their own off with a code)."""
    return can_manage_agent(actor, agent)


def can_set_personal_mailbox(actor, agent: Agent) -> bool:
    """Set the password of ``agent``'s personal mailbox (or otherwise take it): the mailbox
    receives the links that set a new sign-in password, so whoever holds it can become the
    agent. Platform admins may; anyone else only for an agent of their own administration
    or below, every role of whom they could grant (a mail administrator: agents without
    roles; an administration administrator: those they manage). The mail pillar checks
    its own rights besides."""
    if is_platform_admin(actor):
        return True
    own = selectors.agent_of(actor)
    if own is None or not agent.administration.is_within(own.administration):
        return False
    return all(can_grant_role(actor, role, agent.administration) for role in agent.role_set)


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
