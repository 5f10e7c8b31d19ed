"""The directory's refusals: administrations, agents, roles, companies, sign-in and tokens."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class DirectoryError(ErrorCode):
    """The directory: administrations and their tree, agents and their roles, companies,
    passwords, two-factor sign-in, sessions and API tokens."""

    NO_AGENT = _("No agent %(username)s.")
    ADDRESS_BOOK_FOR_AGENTS = _("Only agents may read the government address book.")
    PROTECTED_ROLES = _(
        "You cannot change this agent: only platform administrators manage holders of the "
        "platform administrator, auditor and complaints body roles.")
    COMPANIES_REGISTER_ON_WEB = _(
        "Companies register themselves on the web; the API is for platform administrators.")
    TOP_LEVEL_FORBIDDEN = _("Only platform administrators create top-level administrations.")
    ADD_OUTSIDE_OWN = _("You can only add administrations inside the one you manage.")
    UNKNOWN_ADMINISTRATION_KIND = _("Unknown kind of administration: %(kind)s.")
    KIND_NOT_PLACEABLE = _("This kind of administration cannot be placed there.")
    ADMINISTRATION_EXISTS = _("An administration with this code or mail domain exists.")
    ADMINISTRATION_CHANGE_FORBIDDEN = _("You cannot change this administration.")
    FIELDS_NOT_EDITABLE = _("These fields cannot be changed: %(fields)s.")
    DEACTIVATE_OWN_ADMINISTRATION = _("You cannot deactivate the administration you manage.")
    MAIL_DOMAIN_TAKEN = _("Another administration uses this mail domain.")
    MOVE_OUTSIDE_OWN = _("You can only move an administration inside the one you manage.")
    MOVE_UNDER_ITSELF = _("An administration cannot be moved under itself.")
    MOVE_OWN_ADMINISTRATION = _("You cannot move the administration you manage.")
    UNKNOWN_ROLES = _("Unknown roles: %(roles)s.")
    ROLES_FOR_PLATFORM_ADMINS = _(
        "Only platform administrators grant or remove these roles: %(roles)s.")
    ROLES_FOR_MINISTRY_ADMINS = _(
        "Only the administrators of the whole ministry grant or remove these roles, which act "
        "over all of it: %(roles)s.")
    MINISTRY_ROLE_HOLDER = _(
        "You cannot change this agent: a holder of a role that acts over the whole ministry "
        "(finance) is managed by the ministry's administrators.")
    PERSONAL_MAILBOX_OUT_OF_REACH = _(
        "Only someone who could give %(name)s every role they hold may set their personal "
        "mailbox's password: the links that reset their sign-in are mailed there.")
    PASSWORD_REFUSED = _("The password is refused: %(reasons)s")
    USERNAME_TAKEN = _("The username %(username)s is taken.")
    AGENTS_OUTSIDE_OWN = _("You can only create agents in the administration you manage.")
    ADMINISTRATION_INACTIVE = _("This administration is inactive.")
    ROLES_CHANGE_FORBIDDEN = _("You cannot change the roles of this agent.")
    REMOVE_OWN_ADMIN_ROLE = _("You cannot remove your own administrator role.")
    DISABLE_OWN_ACCOUNT = _("You cannot disable your own account.")
    AGENT_CHANGE_FORBIDDEN = _("You cannot change this agent.")
    AGENT_MOVE_OUTSIDE_OWN = _("You can only move agents within the administration you manage.")
    MATRICULE_INVALID = _("The matricule fiscal is not valid: %(reasons)s")
    COMPANY_EXISTS = _("A company with this matricule fiscal is registered.")
    COMPANY_CHANGE_FORBIDDEN = _("You cannot change this company.")
    SUSPEND_FORBIDDEN = _("Only platform administrators suspend companies.")
    COMPANY_USERS_FORBIDDEN = _("Only the company's administrators add its users.")
    CURRENT_PASSWORD_WRONG = _("The current password is wrong.")
    LINK_NO_LONGER_VALID = _("This link is not valid any more. Ask for a new one.")
    TOTP_ALREADY_ON = _("Two-factor sign-in is already on.")
    TOTP_SECRET_INVALID = _("The secret is not valid.")
    TOTP_CODE_INVALID = _("The code is not valid.")
    TOTP_LOCKED = _(
        "Too many wrong codes: this account's second factor is locked for a while. Try again "
        "later.")
    TOTP_CODE_REQUIRED = _(
        "This account uses two-factor sign-in: give the current six-digit code.")
    RESET_SECOND_FACTOR_FORBIDDEN = _("You cannot reset this agent's second factor.")
    PASSWORD_WRONG = _("The password is wrong.")
    NO_SUCH_SESSION = _("No such session of yours.")
    TOKENS_FOR_YOURSELF = _("You can only create tokens for yourself.")
    TOKEN_EXPIRY_PAST = _("The expiry date is in the past.")
    TOKEN_TOO_LONG_LIVED = _("A token lives three years at most.")
    TOKEN_NAME_LENGTH = _("Give the token a name of 1 to 100 characters.")
    NO_SUCH_TOKEN = _("No such token.")
