"""The ledger's refusals: entries, proofs, tiles, checkpoints and witnesses."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class LedgerError(ErrorCode):
    """The public log: what an entry may hold, the proofs and tiles it serves, the witnesses
    that cosign its checkpoints."""

    ENTRY_FIELD_INVALID = _("A ledger entry needs a %(name)s of 1 to 300 characters.")
    ENTRY_DATA_NOT_OBJECT = _("A ledger entry's data is a JSON object.")
    ENTRY_DATA_NOT_JSON = _("A ledger entry's data cannot be written as JSON: %(error)s")
    ENTRY_TOO_LARGE = _("A ledger entry is 64 KiB at most: record hashes, not documents.")
    NO_TREE_OF_SIZE = _("The log has no tree of size %(size)s.")
    ENTRY_NOT_IN_TREE = _("Entry %(index)s is not in a tree of size %(size)s.")
    NO_CONSISTENCY_PROOF = _("No consistency proof from size %(old)s to size %(new)s.")
    NO_ENTRY = _("The log has no entry %(index)s.")
    NO_PROMISE = _("The log made no promise %(pending)s.")
    PROMISE_DOES_NOT_VERIFY = _("This is not a promise signed by the log: %(error)s")
    ENTRY_NOT_PUBLISHED = _("No published checkpoint covers entry %(index)s yet.")
    CHECKPOINT_DOES_NOT_VERIFY = _("The latest checkpoint does not verify: %(error)s")
    ENTRY_NOT_COVERED = _("Ledger entry %(index)s is not the one the checkpoint covers.")
    NO_SUCH_TILE = _("No such tile.")
    TILE_NOT_YET = _("The log has no such tile yet.")
    NO_SUCH_ENTRY_BUNDLE = _("No such entry bundle.")
    ENTRY_BUNDLE_NOT_YET = _("The log has no such entry bundle yet.")
    NO_COSIGNED_CHECKPOINT = _(
        "No checkpoint is cosigned by %(required)s witnesses yet: retry shortly.")
    ENTRY_NOT_UNDER_CHECKPOINT = _(
        "The log has no entry %(index)s under a published checkpoint yet.")
    WITNESS_URL_INVALID = _(
        "A witness URL is https (plain http only on the loopback), names a host, and has no "
        "credentials and no fragment.")
    WITNESS_REGISTRATION_FORBIDDEN = _("Only platform administrators register witnesses.")
    BAD_VERIFIER_KEY = _("Bad verifier key: %(error)s")
    WITNESS_KEY_INVALID = _(
        "A witness key is a cosignature/v1 (type 0x04) key named like the witness.")
    WITNESS_EXISTS = _("A witness named %(name)s is registered.")
    WITNESS_CHANGE_FORBIDDEN = _("Only platform administrators change witnesses.")
    NO_CHECKPOINT_OF_SIZE = _("No checkpoint of size %(size)s.")
    NO_WITNESS = _("No witness named %(name)s.")
    RESTORE_REASON_REQUIRED = _(
        "Say why the restored database is accepted (1 to 1000 characters): the reason is "
        "recorded in the public ledger.")
    QUERY_PARAMETER_REQUIRED = _("The query parameter '%(name)s' is required.")
    QUERY_PARAMETER_NOT_INTEGER = _(
        "The query parameter '%(name)s' is a non-negative integer.")
    LOG_KEY_INVALID = _("A log's key is an Ed25519 (type 0x01) key.")
    LOG_ALREADY_WITNESSED = _("%(name)s is witnessed already.")
    WITNESS_SAW_FORK = _(
        "%(witness)s has seen size %(old)s, beyond our %(size)s: investigate a fork.")
