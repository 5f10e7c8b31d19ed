"""PostgreSQL point-in-time recovery reaches the last committed transaction: a base backup
plus the archived WAL bring back every ledger entry committed before the crash, so the
restored log is the same log, not a rolled-back one (docs/operations.md)."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from tests.e2e.conftest import free_port
from tests.ops.served import Served

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="PostgreSQL's own recovery: runs with SAHAB_TEST_DB=postgres")]

HEAD = ("from sahab.ledger import services as s\n"
        "import base64\n"
        "print(s.tree_size(), base64.b64encode(s.root_at(s.tree_size())).decode())")
APPEND = ("from sahab.ledger import services as s\n"
          "for i in range({n}):\n"
          "    s.append(type='test.pitr', subject=f'pitr:{{i}}', data={{'i': i}},\n"
          "             actor='system')\n")


def head_of(platform: Served) -> list[str]:
    """The ledger's size and root, as the installation reads them."""
    return platform.sahab("manage", "shell", "-c", HEAD).stdout.strip().splitlines()[-1].split()


class Cluster:
    """A throwaway PostgreSQL cluster that archives its WAL."""

    def __init__(self, root: Path, data: Path, archive: Path):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            pytest.fail("PostgreSQL server binaries are missing: make test installs them")
        self.bin = Path(binaries[-1]).parent
        self.root, self.data, self.archive = root, data, archive
        self.port = free_port()
        self.as_postgres = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (root, archive):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.as_postgres, str(self.bin / tool), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool}: {done.stderr}"
        return done

    def options(self) -> str:
        return (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                f"-c wal_level=replica -c archive_mode=on "
                f"-c archive_command='cp %p {self.archive}/%f'")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l",
                 str(self.root / f"log-{self.data.name}"), "-o", self.options(), "start")

    def crash(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data),
                        "-m", "immediate", "stop"], capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/sahab"


def test_point_in_time_recovery_brings_back_the_last_committed_ledger_entry():
    root = Path(tempfile.mkdtemp(prefix="sahab-pitr-"))
    archive = root / "archive"
    archive.mkdir()
    primary = Cluster(root, root / "primary", archive)
    recovered = None
    try:
        primary.run("initdb", "-D", str(primary.data), "-A", "trust", "-U", "postgres",
                    "--no-sync")
        primary.start()
        primary.run("psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-c", "CREATE DATABASE sahab")
        platform = Served("sahab-pitr-", database=(primary.url, lambda: None))
        platform.prepare(demo=False)
        platform.sahab("manage", "shell", "-c", APPEND.format(n=5))

        # the nightly base backup, then the day goes on
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                    "postgres", "-D", str(root / "base"), "-X", "stream", "-c", "fast")
        platform.sahab("manage", "shell", "-c", APPEND.format(n=7))
        last = head_of(platform)
        assert int(last[0]) >= 12
        primary.run("psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-c", "SELECT pg_switch_wal()")  # the archiver takes the last segment
        primary.run("psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-c", "CHECKPOINT")
        primary.crash()

        # a new machine: the base backup, the archive, recovery to the end of the WAL
        recovered = Cluster(root, root / "recovered", archive)
        shutil.copytree(root / "base", recovered.data, symlinks=True)
        if recovered.as_postgres:
            subprocess.run(["chown", "-R", "postgres:postgres", str(recovered.data)], check=True)
        with open(recovered.data / "postgresql.auto.conf", "a") as conf:
            conf.write(f"\nrestore_command = 'cp {archive}/%f %p'\n"
                       "recovery_target_timeline = 'latest'\n")
        (recovered.data / "recovery.signal").touch()
        if recovered.as_postgres:
            shutil.chown(recovered.data / "recovery.signal", "postgres", "postgres")
        recovered.start()
        platform.env["DATABASE_URL"] = recovered.url
        head = head_of(platform)
        assert head == last  # the same size and root: nothing committed was lost
        platform.sahab("manage", "shell", "-c", APPEND.format(n=1))  # and the log goes on
        assert int(head_of(platform)[0]) == int(last[0]) + 1
        shutil.rmtree(platform.home, ignore_errors=True)
    finally:
        if recovered is not None:
            recovered.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)
