"""Which database the test run uses.

``SAHAB_TEST_DB=sqlite`` (default): a SQLite file in WAL mode, as in ``make run``.
``SAHAB_TEST_DB=postgres``: ``SAHAB_TEST_DATABASE_URL`` if set, else the server on
127.0.0.1:5432, else a throwaway cluster started from the PostgreSQL binaries. With
``CI=true`` a missing PostgreSQL is an error, never a silent skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_throwaway_cluster() -> str | None:
    """initdb + pg_ctl in a temporary folder; stopped and removed when the run ends."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        return None
    bindir = Path(binaries[-1]).parent
    datadir = Path(tempfile.mkdtemp(prefix="sahab-pg-"))
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(datadir / "data"), "-A", "trust",
                    "-U", "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-w", "-l",
                    str(datadir / "log"), "-o",
                    f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(datadir, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def postgres_url() -> str:
    if url := os.environ.get("SAHAB_TEST_DATABASE_URL"):
        return url
    if _port_open("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    if url := _start_throwaway_cluster():
        return url
    raise RuntimeError(
        "No PostgreSQL for the tests: set SAHAB_TEST_DATABASE_URL, run a server on "
        "127.0.0.1:5432, or install the PostgreSQL server binaries.")


def test_database_url(home: Path) -> str:
    kind = os.environ.get("SAHAB_TEST_DB", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{home / 'sahab.sqlite3'}"
    if kind == "postgres":
        return postgres_url()
    raise RuntimeError(f"SAHAB_TEST_DB must be sqlite or postgres, not {kind!r}")
