"""``sahab init``: bring a ``SAHAB_HOME`` and its database to a working state."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.core.management import call_command

from sahab.core import keys, localfiles


def initialise(*, verbose: bool = True) -> Iterator[str]:
    """Create folders, migrate, collect static files, create keys; safe to run again."""
    settings.SAHAB_HOME.mkdir(parents=True, exist_ok=True, mode=0o700)
    call_command("migrate", interactive=False, verbosity=1 if verbose else 0)
    localfiles.tighten()  # the SQLite file holds sessions and sealed secrets: owner only
    call_command("collectstatic", interactive=False, verbosity=0)
    if keys.ensure_ledger_key():
        yield f"created the ledger signing key {keys.ledger_key_path()}"
    if keys.ensure_witness_key():
        yield f"created the witness key {keys.witness_key_path()}"
    if keys.ensure_opening_key():
        yield f"created the bid-opening key {keys.opening_key_path()}"
    if keys.ensure_secrets_key():
        yield f"created the credentials-sealing key {keys.secrets_key_path()}"
    if keys.ensure_osb_password():
        yield f"created the reference broker's password {keys.osb_password_path()}"
    from sahab.exchange import ca

    if ca.ensure_ca():
        yield f"created the exchange certificate authority {ca.ca_cert_path()}"
    if keys.ensure_tls_certificate():
        yield f"created a self-signed TLS certificate {keys.tls_cert_path()}"
    localfiles.tighten()
    if verbose:
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        yield f"sahab is initialised in {settings.SAHAB_HOME} ({engine})"
