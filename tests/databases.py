"""Which database the test run uses.

``SAHAB_TEST_DB=sqlite`` (default): a SQLite file in WAL mode, as in ``make run``.
``SAHAB_TEST_DB=postgres``: ``SAHAB_TEST_DATABASE_URL`` if set, else the server on
127.0.0.1:5432, else a throwaway cluster started from the PostgreSQL binaries. With
``CI=true`` a missing PostgreSQL is an error, never a silent skip.

``Cluster`` starts such a cluster, and standbys of it, for tests of their own (the
replica tests start a primary and a streaming standby).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.ports import free_port, listening  # the tests' one way to pick a port


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian's layout), if any."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(binaries[-1]).parent if binaries else None


class Cluster:
    """A PostgreSQL cluster of the tests' own: a data folder under ``root``, a free port
    on 127.0.0.1, trust authentication (replication connections included)."""

    def __init__(self, bindir: Path, root: Path, name: str = "data") -> None:
        self.bindir, self.root = bindir, root
        self.datadir, self.log = root / name, root / f"{name}.log"
        self.port = free_port()
        self.settings: dict[str, str] = {}  # server settings given at every start
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def run(self, program: str, *args: str) -> None:
        subprocess.run([*self.run_as, str(self.bindir / program), *args], check=True,
                       capture_output=True, timeout=120)

    def initdb(self) -> Cluster:
        self.run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                 "--no-sync")
        return self

    def start(self) -> Cluster:
        options = "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self.run("pg_ctl", "-D", str(self.datadir), "-w", "-l", str(self.log), "-o",
                 f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
                 + options, "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir),
                        "-m", mode, "-w", "stop"], capture_output=True, timeout=120)

    def standby(self, name: str = "standby") -> Cluster:
        """A streaming-replication standby of this cluster, cloned with pg_basebackup
        (``-R`` writes ``standby.signal`` and ``primary_conninfo``), not started yet."""
        standby = Cluster(self.bindir, self.root, name)
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                 "-D", str(standby.datadir), "-R", "-X", "stream", "--checkpoint=fast",
                 "--no-sync")
        return standby

    def query(self, sql: str, params: tuple = (), *, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


def _start_throwaway_cluster() -> str | None:
    """initdb + pg_ctl in a temporary folder; stopped and removed when the run ends."""
    bindir = postgres_bindir()
    if bindir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="sahab-pg-"))
    cluster = Cluster(bindir, root).initdb().start()

    def stop() -> None:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return cluster.url()


def postgres_url() -> str:
    if url := os.environ.get("SAHAB_TEST_DATABASE_URL"):
        return url
    if listening(5432):
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
