import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.contrib.auth import get_user_model

from sahab import cli
from sahab.core import keys
from sahab.core.demo import load_demo
from sahab.directory import services
from sahab.directory.models import Administration, AdministrationKind, Company


def test_init_creates_keys_once(sahab_home, db):
    assert cli.main(["init"]) == 0
    key = keys.load_ledger_key()
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert oct(keys.ledger_key_path().stat().st_mode)[-3:] == "600"
    assert keys.tls_cert_path().read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    before = keys.ledger_key_path().read_bytes()
    assert cli.main(["init"]) == 0
    assert keys.ledger_key_path().read_bytes() == before


def test_demo_is_idempotent_and_its_logins_work(sahab_home, db):
    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    first = load_demo()
    counts = (Administration.objects.count(), Company.objects.count(),
              get_user_model().objects.count())
    second = load_demo()
    assert counts == (Administration.objects.count(), Company.objects.count(),
                      get_user_model().objects.count())
    assert first["users"] == second["users"] and first["api_tokens"] == second["api_tokens"]
    assert Administration.objects.filter(kind=AdministrationKind.MINISTRY).count() >= 20
    assert Company.objects.count() >= 12
    on_disk = json.loads((sahab_home / "demo.json").read_text())
    assert on_disk["urls"]["web"].startswith("http://127.0.0.1:")
    for user in on_disk["users"]:
        assert get_user_model().objects.get(username=user["username"]).check_password(
            user["password"])
    for token in on_disk["api_tokens"]:
        assert services.authenticate_token(token["token"]).username == token["username"]
    from sahab.ledger import services as ledger
    from sahab.procurement.models import Procedure, State, Tender

    assert {t.procedure for t in Tender.objects.all()} == set(Procedure.values)
    assert {State.COMPLETE, State.CANCELLED, State.UNSUCCESSFUL, State.EVALUATION,
            State.STANDSTILL, State.ENQUIRIES, State.DRAFT} <= \
        {t.state for t in Tender.objects.all()}

    assert on_disk["ledger"]["key"] == ledger.verifier_key()
    assert ledger.latest_checkpoint().size == ledger.tree_size() > 70
    roles = {r for u in on_disk["users"] for r in u["role"].split(", ")}
    assert {"Platform administrator", "Administration administrator", "Procurement officer",
            "Evaluator", "Finance", "IT officer", "Auditor"} <= roles


def test_unknown_command_exits_non_zero_with_a_message():
    result = subprocess.run([sys.executable, "-m", "sahab.cli", "frobnicate"],
                            capture_output=True, text=True, env=os.environ | {
                                "DJANGO_SETTINGS_MODULE": "tests.settings"})
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["serve", "--port", "notanumber"], ["init", "--bogus"],
                                  ["demo", "--tenders", "-3"], ["demo", "--tenders", "many"]])
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
