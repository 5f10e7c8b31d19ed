"""The ledger's own entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class LedgerOwnEvent(LedgerEvent):
    """The ledger's own entries: witnesses, logs witnessed, restores."""

    LOG_RESTORED = (
        "ledger.log.restored",
        "The platform was restored from a backup; who had seen a longer log, and how long.",
        ("backup", "root", "seen_by", "seen_size", "size"),
        _("Log restored from a backup"),
    )
    PENDING_REFUSED = (
        "ledger.pending.refused",
        "The sequencer refused a pending row as no entry of the platform's (inserted or "
        "edited in the database): its promise number, leaf hash and why. A refused row "
        "with no such entry was refused by someone else.",
        ("leaf_hash", "pending", "reason"),
        _("Pending row refused"),
    )
    SIGNER_RESTORED = (
        "ledger.signer.restored",
        "The operator accepted a restored log: the signer's record before and after.",
        ("previous_root", "previous_size", "reason", "restored_root", "restored_size"),
        _("Restored log accepted"),
    )
    WITNESS_CHANGED = (
        "ledger.witness.changed",
        "A witness was turned on or off, or its address changed.",
        ("active", "url"),
        _("Witness changed"),
    )
    WITNESS_REGISTERED = (
        "ledger.witness.registered",
        "A witness of this log was registered, with its key and address.",
        ("name", "url", "vkey"),
        _("Witness registered"),
    )
    WITNESSED_LOG_REGISTERED = (
        "ledger.witnessed_log.registered",
        "This installation started witnessing another log.",
        ("origin", "vkey"),
        _("Another log witnessed"),
    )
