"""Background work of the ledger: submitting checkpoints to witnesses."""

import logging

from django_tasks import task

log = logging.getLogger(__name__)


@task()
def submit_to_witnesses() -> None:
    """Send the latest checkpoint to every witness that has an add-checkpoint URL."""
    from sahab.ledger import witnessing
    from sahab.ledger.models import Witness

    for witness in Witness.objects.filter(active=True).exclude(url=""):
        try:
            witnessing.submit(witness)
        except Exception:  # one unreachable witness must not stop the others
            log.exception("submitting the checkpoint to %s failed", witness.name)
