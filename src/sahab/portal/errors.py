"""The public portal's refusals: follows (alerts) and their links."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class PortalError(ErrorCode):
    """The public portal: what a visitor may follow by e-mail, and the links that confirm or
    end a follow."""

    CPV_INVALID = _("Follow a CPV code such as 72 or 72000000-5.")
    NO_COMPANY_WITH_MATRICULE = _("No registered company has the matricule fiscal %(value)s.")
    SEARCH_LENGTH = _("A search has 3 to 100 characters.")
    NOTHING_TO_FOLLOW = _("Follow a CPV code, a buyer, a company or a search.")
    NOT_AN_EMAIL = _("'%(email)s' is not an e-mail address.")
    TOO_MANY_UNCONFIRMED = _(
        "This address has too many unconfirmed follows: confirm them first.")
    LINK_EXPIRED = _("This link is not valid (any more).")
    LINK_INVALID = _("This link is not valid.")
    MESSAGE_NOT_SENT = _("The message could not be sent; try again later.")
