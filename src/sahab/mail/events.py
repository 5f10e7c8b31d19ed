"""Mail's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class MailEvent(LedgerEvent):
    """Mail's entries: domains, mailboxes, aliases and lists, delegations, vacation replies,
    registered letters."""

    ALIAS_CREATED = (
        "mail.alias.created",
        "A mail alias was created with its members.",
        ("domain", "members"),
        _("Mail alias created"),
    )
    ALIAS_DELETED = (
        "mail.alias.deleted",
        "A mail alias or list was deleted.",
        (),
        _("Alias or list deleted"),
    )
    DELEGATION_GRANTED = (
        "mail.delegation.granted",
        "An agent was given access to a shared or registry mailbox (and whether they may send).",
        ("agent", "can_send"),
        _("Mailbox delegation granted"),
    )
    DELEGATION_REVOKED = (
        "mail.delegation.revoked",
        "An agent's access to a shared or registry mailbox was removed.",
        ("agent",),
        _("Mailbox delegation revoked"),
    )
    DOMAIN_CREATED = (
        "mail.domain.created",
        "A mail domain was created for an administration, with its DKIM public keys.",
        ("administration", "dkim_selector", "ed25519_key", "rsa_key"),
        _("Mail domain created"),
    )
    LETTER_ACCEPTANCE = (
        "mail.letter.acceptance",
        "A registered letter was accepted for delivery (the receipt's and message's hashes).",
        ("from_administration", "message_sha256", "receipt_sha256", "to_administration"),
        _("Registered letter accepted"),
    )
    LETTER_DELIVERY = (
        "mail.letter.delivery",
        "A registered letter was delivered to the recipient's registry mailbox.",
        ("from_administration", "message_sha256", "receipt_sha256", "to_administration"),
        _("Registered letter delivered"),
    )
    LETTER_NON_DELIVERY = (
        "mail.letter.non_delivery",
        "A registered letter could not be delivered.",
        ("from_administration", "message_sha256", "receipt_sha256", "to_administration"),
        _("Registered letter not delivered"),
    )
    LETTER_OPENING = (
        "mail.letter.opening",
        "A registered letter was opened by a person of the recipient's administration.",
        ("from_administration", "message_sha256", "receipt_sha256", "to_administration"),
        _("Registered letter opened"),
    )
    LIST_CREATED = (
        "mail.list.created",
        "A mailing list was created with its members.",
        ("domain", "members"),
        _("Mailing list created"),
    )
    MAILBOX_CREATED = (
        "mail.mailbox.created",
        "A mailbox was created (personal, shared or registry).",
        ("domain", "kind"),
        _("Mailbox created"),
    )
    MAILBOX_DISABLED = (
        "mail.mailbox.disabled",
        "A mailbox was disabled.",
        (),
        _("Mailbox disabled"),
    )
    MAILBOX_ENABLED = (
        "mail.mailbox.enabled",
        "A mailbox was enabled again.",
        (),
        _("Mailbox enabled again"),
    )
    MAILBOX_PASSWORD_SET = (
        "mail.mailbox.password_set",
        "A mailbox's password was set.",
        (),
        _("Mailbox password set"),
    )
    MAILBOX_QUOTA_SET = (
        "mail.mailbox.quota_set",
        "A mailbox's quota was changed.",
        ("quota_bytes",),
        _("Mailbox quota changed"),
    )
    NOTICES_CHOSEN = (
        "mail.notices.chosen",
        "A person chose which of the platform's notices they are mailed (the kinds turned off).",
        ("muted",),
        _("Notice preferences chosen"),
    )
    VACATION_DISABLED = (
        "mail.vacation.disabled",
        "A mailbox's vacation reply was turned off.",
        (),
        _("Vacation reply turned off"),
    )
    VACATION_ENABLED = (
        "mail.vacation.enabled",
        "A mailbox's vacation reply was turned on.",
        (),
        _("Vacation reply turned on"),
    )
