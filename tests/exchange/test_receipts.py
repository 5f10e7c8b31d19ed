"""Both sides of an exchange fetch its receipt by X-Road-Id once it is on the ledger: the
entry's exact bytes and a tlog-proof that anyone can check offline."""

import httpx

from sahab.exchange import messagelog, services
from sahab.ledger import auditor
from sahab.ledger import services as ledger


def test_client_and_provider_fetch_the_receipt_of_their_exchange(intranet):
    answer = intranet.call(headers={"X-Road-Id": "dossier-2026-0042"})
    assert answer.status_code == 200
    url = f"{intranet.gateway.url}/receipts/dossier-2026-0042"
    pending = httpx.get(url, headers={"Authorization": f"Bearer {intranet.token}"})
    assert pending.status_code == 202 and pending.json()["waiting"] == 1
    messagelog.flush_to_ledger()
    ledger.checkpoint_if_grown()
    provider_token = services.issue_client_token(
        actor=intranet.it_interior, subsystem=intranet.service.subsystem, name="audit")[1]
    for token in (intranet.token, provider_token):
        found = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()["receipts"]
        assert len(found) == 1
        receipt = found[0]
        entry = receipt["entry"].encode()
        index, _ = auditor.verify_proof_file(receipt["receipt"].encode(), entry,
                                             ledger.verifier_key())
        assert index == receipt["ledger_index"]
        assert f'"request_hash":"{answer.headers["X-Road-Request-Hash"]}"' in receipt["entry"]
    stranger = httpx.get(url, headers={"Authorization": f"Bearer {intranet.other_token}"})
    assert stranger.status_code == 404
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
