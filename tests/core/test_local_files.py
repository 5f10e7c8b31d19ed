"""Local secrets (issue: "Local exposure"): files under SAHAB_HOME are the owner's only,
no secret is tracked in git, and each instance has its own gunicorn control socket."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from sahab import cli
from sahab.core import localfiles

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The umask of a careless shell (022): sahab must not rely on a better one."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sahab_init_leaves_nothing_readable_by_others(sahab_home, db, loose_umask):
    """The finding: the SQLite database was world-readable (0644) with live session keys
    and second-factor secrets."""
    sahab_home.chmod(0o755)
    for path in localfiles.sqlite_files():
        path.chmod(0o644)
    assert cli.main(["init"]) == 0
    assert mode(sahab_home) == 0o700
    assert mode(sahab_home / "keys") == 0o700
    secrets = [p for p in (sahab_home / "keys").iterdir() if not localfiles._public(p)]
    assert {p.name for p in secrets} >= {"secrets.key", "ledger-ed25519.pem", "tls-key.pem",
                                         "bid-opening.key", "exchange-ca-key.pem"}
    assert all(mode(p) == 0o600 for p in secrets), {p.name: oct(mode(p)) for p in secrets}
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        database = Path(settings.DATABASES["default"]["NAME"])
        assert database in localfiles.sqlite_files()
        assert mode(database) == 0o600



def test_the_sahab_command_creates_files_for_its_owner_only(loose_umask, monkeypatch):
    """Whatever a command writes (keys, Maildirs, sockets) is made under umask 077."""
    seen = []
    monkeypatch.setattr(cli, "_run", lambda argv: seen.append(os.umask(0o077)) or 0)
    assert cli.main(["init"]) == 0
    assert seen == [0o077]
    assert os.umask(0o022) == 0o022  # the caller's umask is back


def test_tighten_fixes_an_older_installation(sahab_home):
    (sahab_home / "keys").mkdir(exist_ok=True)  # the ledger key's folder, already there
    (sahab_home / "keys").chmod(0o755)
    key = sahab_home / "keys" / "secrets.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)
    cert = sahab_home / "keys" / "tls-cert.pem"
    cert.write_text("cert")
    cert.chmod(0o644)
    (sahab_home / "secret_key").write_text("s")
    (sahab_home / "secret_key").chmod(0o644)
    changed = localfiles.tighten()
    assert mode(key) == 0o600 and mode(sahab_home / "secret_key") == 0o600
    assert mode(sahab_home / "keys") == 0o700 and key in changed
    assert mode(cert) == 0o644  # a certificate is public


def test_no_secret_key_or_database_is_tracked_in_git():
    """The finding: src/sahab/var/secret_key was tracked in git."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "src/sahab/var", "var", "*.sqlite3",
                              "*secret_key*", "*.key"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked == []


def test_each_instance_has_its_own_control_socket(settings, tmp_path):
    """The finding: every instance on a host shared gunicorn's control socket in the home
    directory."""
    sockets = []
    for name in ("one", "two"):
        settings.SAHAB_HOME = tmp_path / name
        options = cli._control_socket_options()
        path = Path(options[options.index("--control-socket") + 1])
        assert path.parent == tmp_path / name / "run" and mode(path.parent) == 0o700
        assert options[options.index("--control-socket-mode") + 1] == str(0o600)
        sockets.append(path)
    assert sockets[0] != sockets[1]
    assert not str(sockets[0]).startswith(str(Path.home() / ".gunicorn"))
