"""Background jobs of the mail pillar."""

from django_tasks import task


@task()
def advance_letters() -> int:
    """Retry letter deliveries, issue non-delivery receipts, notice openings over IMAP."""
    from sahab.mail import letters

    return letters.advance_letters()


@task()
def send_outbound() -> int:
    """Hand queued mail for other domains to the smart host; return what expired."""
    from sahab.mail import outbound

    return outbound.send_sieve_outbox() + outbound.process_queue()


@task()
def housekeeping() -> int:
    """Measure mailbox sizes, make missing agent mailboxes, forget old delivery keys."""
    from sahab.mail import authguard, services

    return (services.measure_usage() + services.sync_agent_mailboxes()
            + services.prune_delivery_markers() + authguard.forget_expired())
