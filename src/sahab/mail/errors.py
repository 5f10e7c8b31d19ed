"""Mail's refusals: domains, mailboxes, aliases, delegation, webmail and registered letters."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class MailError(ErrorCode):
    """The state's mail: domains and mailboxes, aliases and lists, delegation, vacation
    replies, notices, the webmail and registered letters."""

    DIRECTORY_FOR_AGENTS = _("The mail directory is for the administrations' agents.")
    RECEIPT_DOES_NOT_VERIFY = _("The receipt does not verify: %(error)s")
    LETTER_SENDER_FORBIDDEN = _("You may not send letters from this mailbox.")
    LETTER_INCOMPLETE = _("The letter is incomplete.")
    NO_REGISTRY_MAILBOX = _("%(name)s has no registry mailbox.")
    LETTER_ALREADY_SENT = _("A letter with the reference %(reference)s was already sent.")
    NO_SUCH_LETTER = _("No such letter.")
    MAIL_ADMINISTRATORS_ONLY = _("Only the mail administrators of %(name)s may do this.")
    DOMAIN_ASSIGNMENT_FORBIDDEN = _("Only platform administrators assign mail domains.")
    DOMAIN_NOT_ALLOWED = _("%(name)s is not one of the state's mail domains (%(allowed)s).")
    DOMAIN_OF_ANOTHER_ADMINISTRATION = _(
        "The domain %(domain)s belongs to another administration.")
    ADDRESS_CHARACTERS = _("An address may use lower-case letters, digits, '.', '-' and '_'.")
    ADDRESS_IN_USE = _("The address %(address)s is already in use.")
    NO_MAIL_DOMAIN = _("This administration has no mail domain.")
    REGISTRY_MAILBOX_EXISTS = _("This administration already has a registry mailbox.")
    QUOTA_OUT_OF_RANGE = _("The quota must be between 1 MB and %(max)s bytes.")
    PASSWORD_LENGTH = _("A mail password has 12 to 200 characters.")
    PERSONAL_MAILBOX_SWITCH_OUT_OF_REACH = _(
        "Only someone who could give %(name)s every role they hold may disable or enable "
        "their personal mailbox: while it is off, the links that reset their sign-in go "
        "elsewhere.")
    ALIAS_TARGETS = _("An alias has one target; a list has at least one member.")
    PERSONAL_NOT_DELEGATED = _("Personal mailboxes are not delegated.")
    DELEGATE_AGENTS_ONLY = _("Only agents of the administration may use its mailboxes.")
    NO_MAILBOX = _("No mailbox has the address %(address)s.")
    MAILBOX_CHANGE_FORBIDDEN = _("You may not change this mailbox.")
    VACATION_INCOMPLETE = _("The vacation reply is incomplete.")
    NOTICES_OWN_ONLY = _("You choose the notices you receive, and only yours.")
    UNKNOWN_NOTICE_KIND = _("Unknown kind of notice: %(kinds)s.")
    ATTACHMENTS_TOO_LARGE = _("Attachments may total %(mb)s MB at most.")
    ADDRESS_INVALID = _("%(value)s is not a valid address.")
    FIELD_NOT_ONE_LINE = _("This field must be one line.")
    NO_RECIPIENT = _("Give at least one recipient.")
    TOO_MANY_RECIPIENTS = _("A message may have %(max)s recipients at most.")
    SENDING_TOO_FAST = _("Too many messages from this mailbox; try again in a minute.")
    SENDER_FORBIDDEN = _("You may not send from this mailbox.")
    MESSAGE_TOO_LARGE = _("The message is too large.")
