"""A real ``sahab serve`` in a subprocess, for the operations tests: its own SAHAB_HOME,
database and free ports on 127.0.0.1; it knows its children's pids from the log."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import (
    DROP_DBAAS_DATABASES,
    _database_url_for_subprocess,
    free_port,
    start_from_migrated_template,
)

SAHAB = [sys.executable, "-m", "sahab.cli"]
STARTED = re.compile(r"sahab serve: (?:started|restarted) (\S+) \(pid (\d+)\)")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2, detail=None):
    """Poll ``predicate`` until it is true; on timeout, fail naming ``what`` and, when
    given, what ``detail()`` says of the state reached."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}"
                                 + (f" ({detail()})" if detail else ""))
        time.sleep(interval)


def environment(home: Path, database_url: str, **extra: str) -> dict:
    from tests.conftest import shared_static_root
    from tests.databases import postgres_url

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {"SAHAB_HOME": str(home), "DATABASE_URL": database_url,
            "SAHAB_HTTP_PORT": str(free_port()), "SAHAB_SMTP_PORT": str(free_port()),
            "SAHAB_SUBMISSION_PORT": str(free_port()), "SAHAB_IMAP_PORT": str(free_port()),
            "SAHAB_EXCHANGE_TLS_PORT": str(free_port()),
            "SAHAB_SMTPS_PORT": str(free_port()), "SAHAB_IMAPS_PORT": str(free_port()),
            "SAHAB_MANAGESIEVE_PORT": str(free_port()), "SAHAB_WITNESS_PORT": str(free_port()),
            "SAHAB_EXCHANGE_PORT": (exchange_port := str(free_port())),
            "SAHAB_EXCHANGE_URL": f"http://127.0.0.1:{exchange_port}/",
            "SAHAB_EXCHANGE_DEMO_PORT": str(free_port()),
            "DJANGO_SETTINGS_MODULE": "sahab.settings", "SAHAB_PROCUREMENT_MIN_DAYS": "0",
            "SAHAB_DEMO_TENDERS": "0",  # the planted cases: the ordinary year is tested apart
            "SAHAB_MAIL_PROCESSES": "2", "SAHAB_CLOUD_POLL_SECONDS": "1",
            "SAHAB_CLOUD_RETRY_BASE_SECONDS": "1", "SAHAB_CLOUD_RETRY_MAX_SECONDS": "3",
            "SAHAB_DBAAS_URL": postgres_url(), "SAHAB_STATIC_ROOT": shared_static_root()}
    env["SAHAB_PUBLIC_URL"] = f"http://127.0.0.1:{env['SAHAB_HTTP_PORT']}/"
    return env | extra


class Served:
    """One installation: ``prepare()`` (init or demo), ``start()``, ``stop()``, ``remove()``."""

    def __init__(self, prefix: str = "sahab-ops-", home: Path | None = None,
                 database: tuple[str, callable] | None = None, **extra: str):
        self.home = home or Path(tempfile.mkdtemp(prefix=prefix))
        self.database_url, self._drop = database or _database_url_for_subprocess(self.home)
        # a database of its own starts as a copy of the run's migrated one (see prepare)
        self._from_template = database is None
        self.env = environment(self.home, self.database_url, **extra)
        self.url = f"http://127.0.0.1:{self.env['SAHAB_HTTP_PORT']}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "serve.log"

    # --- commands ---------------------------------------------------------------------

    def sahab(self, *args: str, check: bool = True, timeout: float = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([*SAHAB, *args], env=env or self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"sahab {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def prepare(self, demo: bool = True) -> dict:
        if self._from_template:
            start_from_migrated_template(self.database_url)
            self._from_template = False
        self.sahab("demo" if demo else "init")
        return self.demo

    @property
    def demo(self) -> dict:
        path = self.home / "demo.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # --- the server -------------------------------------------------------------------

    def start(self, workers: int = 1) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([*SAHAB, "serve", "--workers", str(workers)],
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_for(self._healthy, 180, "sahab serve to answer /healthz")
        except AssertionError:
            raise AssertionError("sahab serve did not start:\n" + self.log_tail()) from None

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("sahab serve exited:\n" + self.log_tail())
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 5000) -> str:
        """The log's last ``chars`` characters without the probes' request lines, so that
        a failure shows what the children said rather than the test's own polling."""
        said = [line for line in self.log().splitlines()
                if "/readyz" not in line and "/healthz" not in line]
        return "\n".join(said)[-chars:]

    def children(self) -> dict[str, int]:
        """The latest pid of each child, from the supervisor's log lines."""
        return {name: int(pid) for name, pid in STARTED.findall(self.log())}

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=10)

    def is_ready(self) -> bool:
        try:
            answer = self.ready()
        except httpx.HTTPError:  # the web process is coming back
            return False
        self.last_readiness = answer.text
        return answer.status_code == 200

    last_readiness = ""

    def stop(self) -> None:
        if self.proc is None:
            return
        with _suppress():
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self._log.close()

    def remove(self) -> None:
        self.stop()
        self.sahab("manage", "shell", "-c", DROP_DBAAS_DATABASES, check=False, timeout=120)
        self._drop()
        shutil.rmtree(self.home, ignore_errors=True)

    # --- probes of each listener ------------------------------------------------------

    def answers(self, name: str) -> bool:
        """Whether the child ``name`` serves: its port greets, or the worker beats."""
        try:
            if name == "web":
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            if name == "exchange-gateway":
                port = int(self.env["SAHAB_EXCHANGE_PORT"])
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            if name in ("smtp", "imap"):
                port = int(self.env["SAHAB_SMTP_PORT" if name == "smtp" else "SAHAB_IMAP_PORT"])
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    sock.settimeout(3)
                    return sock.recv(64).startswith(b"220" if name == "smtp" else b"* OK")
            if name == "worker":
                return self.ready().json()["checks"]["queue"]["ok"]
        except (OSError, httpx.HTTPError, ValueError, KeyError):
            return False
        return True  # a child this helper has no probe for: alive is all it can say


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
