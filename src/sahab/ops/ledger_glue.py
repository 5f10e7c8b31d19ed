"""What a restore asks of the ledger, in one place.

A restore must not look like a fork: if anyone — the signer's own state file, a witness,
the database being replaced, an auditor — saw a longer log than the backup holds,
restoring it rolls the public log back, and the entries in between will be replaced by
others under the same indexes. ``sahab restore`` refuses that unless told explicitly,
and then records the rollback through the ledger's own operation, so that it is public.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class Sighting:
    who: str
    size: int


SIGNER_STATE = "ledger"  # SAHAB_HOME/ledger: the signer's record, kept outside the database


def signer_dir(home: Path) -> Path:
    configured = getattr(settings, "LEDGER_SIGNER_DIR", "")
    return Path(configured) if configured else Path(home) / SIGNER_STATE


def signer_state_sightings(home: Path) -> list[Sighting]:
    """The size of the last checkpoint the signer signed, from its record (if any)."""
    found = []
    for path in sorted(signer_dir(home).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        size = data.get("size") if isinstance(data, dict) else None
        if isinstance(size, int):
            found.append(Sighting(f"the signer's record {path}", size))
    return found


def auditor_sighting(path: Path) -> Sighting:
    """An auditor's or monitor's state file (``sahab ledger verify --state``)."""
    data = json.loads(Path(path).read_text())
    return Sighting(f"the auditor state {path}", int(data["size"]))


def witness_sightings() -> list[Sighting]:
    """The sizes witnesses told the restored database they cosigned."""
    from sahab.ledger.models import Witness

    return [Sighting(f"witness {name}", size) for name, size in
            Witness.objects.filter(active=True).values_list("name", "last_size")]


def accept_restored_log(*, size: int, root: str, seen: list[Sighting], backup: str) -> None:
    """Make the restored log the one the signer continues, and say so in the log itself.

    The ledger's explicit operation (``signing.accept_restore``), where there is one,
    sets the signer's record aside and records a fork from it; a rollback that only a
    witness, an auditor or the replaced database saw is recorded here.
    """
    from sahab.ledger import services
    from sahab.ledger.events import LedgerOwnEvent

    largest = max((s.size for s in seen), default=size)
    reason = (f"restored from the backup {backup} (log of {size} entries; "
              f"{largest} seen before)")[:1000]
    try:
        from sahab.ledger import signing
    except ImportError:
        signing = None
    if signing is not None and hasattr(signing, "accept_restore") and \
            signing.accept_restore(reason=reason).forked:
        return
    services.record(
        LedgerOwnEvent.LOG_RESTORED,
        "log:" + settings.LEDGER_ORIGIN,
        "system",
        size=size,
        root=root,
        seen_size=largest,
        seen_by=[s.who for s in seen if s.size > size],
        backup=backup,
    )
    services.checkpoint_if_grown()
