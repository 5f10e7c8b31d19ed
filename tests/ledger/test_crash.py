"""A writer killed with SIGKILL in the middle of appends leaves a log whose every
checkpoint still verifies."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from django.conf import settings

from sahab.ledger import merkle, note, services
from sahab.ledger.models import Checkpoint, Entry, LogState

WRITER = textwrap.dedent("""
    import django, os
    django.setup()
    from sahab.ledger import services
    from sahab.ledger.services import Record
    from django.db import transaction
    i = 0
    while True:
        with transaction.atomic():
            services.append_many([Record("crash.test", f"batch:{i}", {"i": i, "j": j}, "system")
                                  for j in range(1 + i % 5)])
        if i % 3 == 0:
            services.checkpoint_if_grown()
        i += 1
""")


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_writer_leaves_every_checkpoint_verifiable(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sahab.settings",
           "SAHAB_HOME": str(sahab_home), "DATABASE_URL": _database_url(),
           "SAHAB_LEDGER_ORIGIN": settings.LEDGER_ORIGIN}
    writer = subprocess.Popen([sys.executable, "-c", WRITER], env=env,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while Checkpoint.objects.count() < 5 and time.monotonic() < deadline:
        assert writer.poll() is None, writer.stderr.read().decode()
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()

    verifier = note.parse_vkey(services.verifier_key())
    state = LogState.objects.get(pk=1)
    indexes = list(Entry.objects.values_list("index", flat=True))
    assert indexes == list(range(state.size)), "entries are dense and match the state"
    hashes = [merkle.leaf_hash(bytes(b)) for b in
              Entry.objects.order_by("index").values_list("body", flat=True)]
    checkpoints = list(Checkpoint.objects.order_by("size"))
    assert len(checkpoints) >= 5
    for checkpoint in checkpoints:
        opened, _ = note.open_checkpoint(services.signed_checkpoint(checkpoint).encode(),
                                         verifier)
        assert opened.root == merkle.root_of(hashes[:opened.size]) == \
            services.root_at(opened.size)
    # the log goes on where it stopped
    services.append(type="crash.after", subject="x", data={}, actor="system")
    assert services.root_at(state.size + 1) == merkle.root_of(
        [*hashes, services.leaf_hash_of(state.size)])
