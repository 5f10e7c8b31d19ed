"""The directory's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class DirectoryEvent(LedgerEvent):
    """The directory's entries: administrations, agents and their roles, companies, users,
    tokens."""

    ADMINISTRATION_CREATED = (
        "directory.administration.created",
        "A ministry, body or unit was added to the directory, under its parent.",
        (
            "acronym",
            "active",
            "code",
            "kind",
            "mail_domain",
            "name_ar",
            "name_en",
            "name_fr",
            "parent",
        ),
        _("Administration created"),
    )
    ADMINISTRATION_UPDATED = (
        "directory.administration.updated",
        "An administration's names, acronym, mail domain or state changed (the new values).",
        (
            "acronym",
            "active",
            "code",
            "kind",
            "mail_domain",
            "name_ar",
            "name_en",
            "name_fr",
            "parent",
        ),
        _("Administration updated"),
    )
    AGENT_CREATED = (
        "directory.agent.created",
        "An agent account was created in an administration, with its roles.",
        ("administration", "roles"),
        _("Agent account created"),
    )
    AGENT_DISABLED = (
        "directory.agent.disabled",
        "An agent was deactivated; their API tokens were revoked with it.",
        (),
        _("Agent deactivated"),
    )
    AGENT_ENABLED = (
        "directory.agent.enabled",
        "A deactivated agent was activated again.",
        (),
        _("Agent reactivated"),
    )
    AGENT_MOVED = (
        "directory.agent.moved",
        "An agent moved to another administration.",
        ("administration",),
        _("Agent transferred"),
    )
    AGENT_ROLES_CHANGED = (
        "directory.agent.roles_changed",
        "An agent's roles were replaced by the listed ones.",
        ("roles",),
        _("Agent roles changed"),
    )
    AGENT_SECOND_FACTOR_DISABLED = (
        "directory.agent.second_factor_disabled",
        "An agent's TOTP second factor was removed.",
        (),
        _("Second factor removed"),
    )
    AGENT_SECOND_FACTOR_LOCKED = (
        "directory.agent.second_factor_locked",
        "Too many wrong one-time codes: the agent's second factor is locked for a while.",
        (),
        _("Second factor locked"),
    )
    AGENT_SECOND_FACTOR_ENABLED = (
        "directory.agent.second_factor_enabled",
        "An agent turned on a TOTP second factor.",
        (),
        _("Second factor turned on"),
    )
    COMPANY_REGISTERED = (
        "directory.company.registered",
        "A company registered, with the member who administers it.",
        (
            "active",
            "admin",
            "city",
            "is_bidder",
            "is_cloud_provider",
            "legal_form",
            "matricule_fiscal",
            "name",
        ),
        _("Company registered"),
    )
    COMPANY_UPDATED = (
        "directory.company.updated",
        "A company's registered details changed (the new values).",
        (
            "active",
            "city",
            "is_bidder",
            "is_cloud_provider",
            "legal_form",
            "matricule_fiscal",
            "name",
        ),
        _("Company details updated"),
    )
    COMPANY_USER_ADDED = (
        "directory.company.user_added",
        "A company added a member account.",
        ("is_company_admin", "user"),
        _("Company member added"),
    )
    PLATFORM_ADMIN_CREATED = (
        "directory.platform_admin.created",
        "A platform administrator was created from the operator's console.",
        ("by",),
        _("Platform administrator created"),
    )
    TOKEN_ISSUED = (
        "directory.token.issued",
        "An API token was issued (its id, never its secret).",
        ("expires_at", "token"),
        _("API token issued"),
    )
    TOKEN_REVOKED = (
        "directory.token.revoked",
        "An API token was revoked.",
        ("token",),
        _("API token revoked"),
    )
    USER_PASSWORD_CHANGED = (
        "directory.user.password_changed",
        "A user changed their own password.",
        (),
        _("Own password changed"),
    )
    USER_SESSIONS_ENDED = (
        "directory.user.sessions_ended",
        "A user ended web sessions of their own account (how many).",
        ("count",),
        _("Web sessions ended"),
    )
    USER_PASSWORD_RESET_BY_MAIL = (
        "directory.user.password_reset_by_mail",
        "A user set a new password with a one-time link sent to their address.",
        (),
        _("Password reset by e-mail"),
    )
    USER_PASSWORD_RESET = (
        "directory.user.password_reset",
        "An operator reset a user's password from the console.",
        ("by",),
        _("Password reset by an operator"),
    )
