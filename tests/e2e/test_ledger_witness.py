"""A fresh platform (``sahab demo`` then ``sahab serve``) runs the demo's witness beside
it, and its checkpoints carry that witness's cosignature."""

import time

import httpx
import pytest

from sahab.ledger import note

pytestmark = pytest.mark.slow


def test_the_served_checkpoint_is_cosigned_by_the_demo_witness(platform):
    ledger = platform["demo"]["ledger"]
    log, witness = note.parse_vkey(ledger["key"]), note.parse_vkey(ledger["witness"]["key"])
    deadline = time.monotonic() + 60
    while True:
        served = httpx.get(f"{platform['url']}/ledger/checkpoint", timeout=10).content
        checkpoint, cosigs = note.open_checkpoint(served, log, [witness])
        if cosigs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [c.name for c in cosigs] == [ledger["witness"]["name"]] and checkpoint.size > 0
    status = httpx.get(f"{platform['url']}/ledger/status", timeout=10).json()
    assert status["ok"] and status["witnesses"][0]["cosigned_size"] >= 1
