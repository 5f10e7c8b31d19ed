"""The ledger's tables: entries, the Merkle tree's stored nodes, checkpoints, witnesses.

Rows are only ever inserted (entries, nodes, checkpoints, cosignatures); the single
``LogState`` row is the append lock and the tree's right edge.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

NODE_LEVEL_SHIFT = 56


def node_key(level: int, index: int) -> int:
    """One integer per tree node: level in the top bits, index in the low 56."""
    return (level << NODE_LEVEL_SHIFT) | index


class Entry(models.Model):
    """One log entry: its exact canonical bytes plus columns to search it by."""

    index = models.BigIntegerField(primary_key=True)
    body = models.BinaryField()
    type = models.CharField(max_length=100, db_index=True)
    subject = models.CharField(max_length=300, db_index=True)
    actor = models.CharField(max_length=200)
    at = models.DateTimeField()
    # HMAC of the index and body under a key derived from the log's signing key
    # (``services.entry_mac``): the signer signs no entry without it, so that a database
    # writer cannot put in the log an entry the platform did not write. Never served;
    # None before the upgrade that brought it (``settings.LEDGER_MACS_FROM``)
    mac = models.BinaryField(max_length=32, null=True)

    class Meta:
        ordering = ["index"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")

    def __str__(self) -> str:
        return f"#{self.index} {self.type} {self.subject}"


class Node(models.Model):
    """The hash of a perfect subtree (``level``, ``index``) covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes."""

    key = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField()

    def __str__(self) -> str:
        return f"node {self.key >> NODE_LEVEL_SHIFT}/{self.key & ((1 << NODE_LEVEL_SHIFT) - 1)}"


class PendingEntry(models.Model):
    """An entry written in its change's transaction, before it has an index.

    The sequencer (``services.integrate``) gives pending entries their indexes in
    batches, in the order it finds them committed; the row stays as the register of the
    promises handed out (``index`` or ``refused`` set once, never otherwise changed:
    migration ``0005_pending_entries`` makes the database refuse anything else)."""

    id = models.BigAutoField(primary_key=True)
    body = models.BinaryField()
    leaf_hash = models.BinaryField(max_length=32)
    type = models.CharField(max_length=100)
    subject = models.CharField(max_length=300)
    actor = models.CharField(max_length=200)
    at = models.DateTimeField()
    # as ``Entry.mac``, over the nonce and the body: the sequencer integrates no row
    # without it
    mac = models.BinaryField(max_length=32, null=True)
    # random, unique, under the MAC: a copy of a real row (same bytes, same MAC) cannot
    # be inserted beside it, and one with another nonce does not carry the MAC
    nonce = models.BinaryField(max_length=16, null=True)
    index = models.BigIntegerField(null=True, blank=True, unique=True)
    # why the sequencer will never integrate it (a row that is not an entry the platform
    # wrote: edited or inserted in the database); set once, instead of an index
    refused = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["id"], condition=models.Q(index__isnull=True,
                                                                  refused=""),
                                name="ledger_pending_waiting"),
                   # the few refused rows, which the status lists and counts
                   models.Index(fields=["id"], condition=~models.Q(refused=""),
                                name="ledger_pending_refused")]
        # a partial unique index: both engines build it without rewriting the table
        constraints = [models.UniqueConstraint(fields=["nonce"],
                                               condition=models.Q(nonce__isnull=False),
                                               name="ledger_pending_nonce_once")]
        verbose_name = _("pending ledger entry")
        verbose_name_plural = _("pending ledger entries")

    def __str__(self) -> str:
        return f"pending {self.pk} {self.type} {self.subject}"


class LogState(models.Model):
    """The single row that appends lock: the size and the tree's right edge."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    frontier = models.BinaryField(default=b"")

    def __str__(self) -> str:
        return f"log of {self.size} entries"


class Checkpoint(models.Model):
    """A signed tree head, kept forever."""

    size = models.BigIntegerField(unique=True)
    root = models.BinaryField()
    text = models.TextField()  # the checkpoint body (origin, size, root)
    signature = models.TextField()  # the log's signature line
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        ordering = ["-size"]
        get_latest_by = "size"

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class Witness(models.Model):
    """An independent witness of this log (e.g. the court of audit) and its key."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    vkey = models.CharField(_("verifier key"), max_length=300)
    url = models.URLField(_("add-checkpoint URL"), blank=True,
                          help_text=_("Where sahab submits new checkpoints; empty when the "
                                      "witness sends its cosignatures itself."))
    last_size = models.BigIntegerField(default=0, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("witness")
        verbose_name_plural = _("witnesses")

    def __str__(self) -> str:
        return self.name


class Cosignature(models.Model):
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT,
                                   related_name="cosignatures")
    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    line = models.TextField()
    timestamp = models.BigIntegerField()

    class Meta:
        verbose_name = _("cosignature")
        verbose_name_plural = _("cosignatures")
        constraints = [models.UniqueConstraint(fields=["checkpoint", "witness"],
                                               name="one_cosignature_per_witness")]

    def __str__(self) -> str:
        return f"{self.witness} on {self.checkpoint}"


class WitnessedLog(models.Model):
    """Another log that this installation witnesses: its key and the latest size cosigned."""

    origin = models.CharField(max_length=300, unique=True)
    vkey = models.CharField(max_length=300)
    size = models.BigIntegerField(default=0)
    root = models.BinaryField(default=b"")
    checkpoint = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("witnessed log")
        verbose_name_plural = _("witnessed logs")

    def __str__(self) -> str:
        return self.origin
