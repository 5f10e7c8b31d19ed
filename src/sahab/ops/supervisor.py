"""``sahab serve``'s supervision: start every child, restart the ones that die.

One dead child (a crashed worker, a killed SMTP process) must not stop the others: it is
restarted after a delay that doubles while it keeps dying quickly (0.5 s, 1 s, 2 s … up
to 30 s) and falls back to 0.5 s once it has stayed up for a minute. Each child runs in
its own process group, so that what it forked (gunicorn's workers, the SMTP processes,
Dovecot's services) is cleaned up with it before it starts again; and each child gets
SIGTERM when the supervisor dies, whatever killed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STABLE_AFTER = 60.0
STOP_TIMEOUT = 15.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _say(line: str) -> None:
    print(f"sahab serve: {line}", file=sys.stderr, flush=True)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    restarts: int = 0
    history: list[int] = field(default_factory=list)  # pids, oldest first

    def delay(self) -> float:
        return min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, self.quick_deaths - 1))


class Supervisor:
    """Runs ``children`` until SIGTERM or SIGINT; returns the exit status of ``serve``."""

    def __init__(self, children: list[tuple[str, list[str]]], *, env: dict | None = None,
                 say: Callable[[str], None] = _say, clock: Callable[[], float] = time.monotonic):
        self.children = [Child(name, argv) for name, argv in children]
        self.env = env
        self.say = say
        self.clock = clock
        self.stopping = False

    # --- one child ------------------------------------------------------------------

    def start(self, child: Child) -> None:
        env = dict(self.env if self.env is not None else os.environ)
        env["SAHAB_PROCESS"] = child.name  # the "process" field of its JSON log lines
        child.proc = subprocess.Popen(child.argv, env=env, process_group=0,
                                      preexec_fn=_die_with_parent)
        child.started_at = self.clock()
        child.restart_at = None
        child.history.append(child.proc.pid)

    def reap(self, child: Child) -> None:
        """Note a child's death, kill what it left behind and schedule its restart."""
        proc = child.proc
        assert proc is not None and proc.returncode is not None
        self._kill_group(proc.pid)
        lived = self.clock() - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if lived < STABLE_AFTER else 1
        child.restart_at = self.clock() + child.delay()
        child.proc = None
        self.say(f"{child.name} (pid {proc.pid}) {describe_exit(proc.returncode)} after "
                 f"{lived:.1f} s; restarting it in {child.delay():.1f} s")

    @staticmethod
    def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    # --- the loop -------------------------------------------------------------------

    def stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def tick(self) -> None:
        """Reap the dead and restart those whose delay has passed."""
        now = self.clock()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                self.reap(child)
            elif child.proc is None and child.restart_at is not None and \
                    now >= child.restart_at and not self.stopping:
                try:
                    self.start(child)
                except OSError as exc:
                    child.quick_deaths += 1
                    child.restart_at = now + child.delay()
                    self.say(f"{child.name} could not start ({exc}); "
                             f"trying again in {child.delay():.1f} s")
                    continue
                child.restarts += 1
                self.say(f"restarted {child.name} (pid {child.proc.pid})")

    def run(self, poll: float = 0.2) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            for child in self.children:
                self.start(child)
                self.say(f"started {child.name} (pid {child.proc.pid})")
            while not self.stopping:
                self.tick()
                time.sleep(poll)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM every child, wait for them, then kill whatever remains of their groups."""
        running = [c.proc for c in self.children if c.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in running:
            self._kill_group(proc.pid)
