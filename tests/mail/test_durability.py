"""Durability in the order of system calls: the real SMTP server, run under strace, writes
``250`` to the client only after each Maildir copy is fsynced, renamed into ``new/`` and
its directory fsynced (a crash test cannot see a missing fsync: the page cache survives a
killed process; only the order of the calls shows it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM
from sahab.ledger.models import PendingEntry
from sahab.mail import maildir
from tests.conftest import missing
from tests.mail.conftest import database_url_of_tests, free_port, smtp_subprocess, wait_for
from tests.mail.test_smtp import letter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TRACED = "fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto,sendmsg"


@dataclass(frozen=True)
class Call:
    """One system call: where in the trace it started and where it had returned."""

    started: int
    finished: int
    name: str
    args: str


_START = re.compile(r"^(\d+) +(\w+)\((.*)$")
_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>(.*)$")


def calls(trace: str) -> list[Call]:
    """The calls of an ``strace -f`` log (a call that another thread interrupted has the
    arguments of both halves)."""
    done: list[Call] = []
    pending: dict[str, tuple[int, str]] = {}
    for position, line in enumerate(trace.splitlines()):
        if m := _RESUMED.match(line):
            pid, name, rest = m.groups()
            started, first_half = pending.pop(pid, (position, ""))
            done.append(Call(started, position, name, first_half + rest))
        elif m := _START.match(line):
            pid, name, rest = m.groups()
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (position, rest.removesuffix("<unfinished ...>"))
            else:
                done.append(Call(position, position, name, rest))
    return done


def on(path: Path) -> str:
    """How ``strace -y`` shows a descriptor open on ``path``."""
    return f"<{path}>"


def check_durable_before_reply(trace: list[Call], copy: Path, reply: Call) -> None:
    """``copy`` (in new/) was written in tmp/ and fsynced, renamed into new/, and new/ was
    fsynced — each of these finished before ``reply`` started."""
    tmp = copy.parent.parent / "tmp" / copy.name
    writes = [c for c in trace if c.name in ("write", "writev")
              and re.match(rf"\d+{re.escape(on(tmp))},", c.args)]
    assert writes, f"the copy {copy.name} was not written in tmp/"
    file_syncs = [c for c in trace if c.name in ("fsync", "fdatasync") and on(tmp) in c.args
                  and c.started > writes[-1].finished]
    assert file_syncs, f"{copy.name} is not fsynced after its last write"
    renames = [c for c in trace if c.name.startswith("rename") and f'"{tmp}"' in c.args
               and f'"{copy}"' in c.args]
    assert len(renames) == 1, f"{copy.name} was not renamed from tmp/ into new/"
    rename = renames[0]
    assert file_syncs[0].finished < rename.started, f"{copy.name} renamed before its fsync"
    dir_syncs = [c for c in trace if c.name in ("fsync", "fdatasync")
                 and on(copy.parent) in c.args and c.started > rename.finished]
    assert dir_syncs, f"{copy.parent} is not fsynced after the rename of {copy.name}"
    assert dir_syncs[0].finished < reply.started, \
        f"250 was written before {copy.parent} was fsynced"


def test_each_copy_and_its_directory_are_fsynced_before_250(committed_world, sahab_home):
    strace = shutil.which("strace")
    if strace is None:
        missing("strace", "strace")
    w = committed_world
    trace_file = sahab_home / "smtp.strace"
    ports = free_port(), free_port()
    server = smtp_subprocess(
        sahab_home, *ports, wrapper=(strace, "-f", "-y", "-s", "120", "-e", f"trace={TRACED}",
                                     "-o", str(trace_file)),
        extra_env={"SAHAB_MAIL_PROCESSES": "1"})
    try:
        recipients = [w.bob_box.address, w.registry_sante.address]
        with smtplib.SMTP("127.0.0.1", ports[0], timeout=30) as client:
            client.ehlo("mx.example.org")
            assert client.sendmail("someone@example.org", recipients,
                                   letter("someone@example.org", recipients[0])) == {}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    trace = calls(trace_file.read_text(errors="replace"))
    replies = [c for c in trace if c.name in ("write", "writev", "sendto", "sendmsg")
               and "socket:" in c.args and "250 2.0.0 OK queued as" in c.args]
    assert len(replies) == 1, "the 250 to DATA is not in the trace"
    copies = [m.path for box in (w.bob_box, w.registry_sante)
              for m in maildir.messages(box.maildir, "INBOX")]
    assert len(copies) == 2 and all(c.parent.name == "new" for c in copies)
    for copy in copies:
        check_durable_before_reply(trace, copy, replies[0])


def web_subprocess(home: Path, port: int, wrapper: tuple[str, ...]) -> subprocess.Popen:
    """sahab's web application under gunicorn (one worker, as ``sahab serve`` runs it), on
    the test database, through ``wrapper``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env |= {"SAHAB_HOME": str(home), "DATABASE_URL": database_url_of_tests(),
            "DJANGO_SETTINGS_MODULE": "sahab.settings"}
    log = home / "web.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([*wrapper, sys.executable, "-m", "gunicorn",
                                 "sahab.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                 "--workers", "1", "--threads", "2"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _answers(port), timeout=60)
    except AssertionError:
        proc.kill()
        raise RuntimeError("gunicorn did not start: " + log.read_text(errors="replace")) \
            from None
    return proc


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def test_a_letters_ledger_entries_are_committed_before_its_receipts_are_returned(
        committed_world, sahab_home):
    """POST /api/mail/letters answers with the letter's receipts (each naming its ledger
    entry): the transaction that holds the entries is durable before the answer leaves —
    the SQLite WAL fsynced after its last write, or PostgreSQL's COMMIT acknowledged."""
    from django.db import connection

    strace = shutil.which("strace")
    if strace is None:
        missing("strace", "strace")
    w = committed_world
    _, token = directory.issue_api_token(actor=SYSTEM, user=w.alice.user, name="test")
    trace_file = sahab_home / "web.strace"
    port = free_port()
    web = web_subprocess(sahab_home, port, (
        strace, "-f", "-yy", "-s", "200", "-e",
        "trace=fsync,fdatasync,write,pwrite64,writev,sendto,sendmsg,recvfrom,read",
        "-o", str(trace_file)))
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/api/mail/letters", timeout=60,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"sender": w.alice_box.address, "to": "MS",
                                  "reference": "MF/2026/12", "classification": "budget",
                                  "subject": "Crédits", "body": "Texte"})
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(30)
    assert answer.status_code == 201, answer.text
    # the receipt's entry is pending until the worker's sequencer (not running here)
    promised = [int(r["promise_url"].rstrip("/").rsplit("/", 1)[1])
                for r in answer.json()["receipts"]]
    assert promised and all(PendingEntry.objects.filter(pk=p).exists() for p in promised)
    trace = calls(trace_file.read_text(errors="replace"))
    [reply] = [c for c in trace if c.name in ("write", "writev", "sendto", "sendmsg")
               and "HTTP/1.1 201" in c.args]
    if connection.vendor == "sqlite":
        wal = [c for c in trace if c.name in ("write", "pwrite64")
               and re.match(r"\d+<[^>]*-wal>", c.args) and c.finished < reply.started]
        assert wal, "nothing was written to the database before the answer"
        syncs = [c for c in trace if c.name in ("fsync", "fdatasync") and "-wal>" in c.args
                 and c.started > wal[-1].finished and c.finished < reply.started]
        assert syncs, "the answer left before the database's last write was fsynced"
    else:
        sent = [c for c in trace if c.name in ("sendto", "write") and ":5432]>" in c.args
                and c.finished < reply.started]
        writes = [c for c in sent if re.search(r"INSERT|UPDATE", c.args)]
        assert writes, "nothing was written to the database before the answer"
        commits = [c for c in sent if "COMMIT" in c.args and c.started > writes[-1].finished]
        assert commits, "the answer left before the database's last write was committed"
        acknowledged = [c for c in trace if c.name in ("recvfrom", "read") and
                        ":5432]>" in c.args and "COMMIT" in c.args
                        and commits[0].finished < c.finished < reply.started]
        assert acknowledged, "the answer left before PostgreSQL acknowledged the COMMIT"


def _syscalls(monkeypatch) -> list[tuple]:
    """Record, in order, the writes, fsyncs and renames that maildir makes, naming each
    file descriptor by the path it was opened on."""
    from sahab.mail import maildir

    calls: list[tuple] = []
    paths: dict[int, str] = {}
    real_open, real_write, real_fsync, real_rename = os.open, os.write, os.fsync, os.rename

    def opened(path, flags, *args):
        fd = real_open(path, flags, *args)
        paths[fd] = str(path)
        return fd

    def wrote(fd, data):
        calls.append(("write", paths.get(fd)))
        return real_write(fd, data)

    def synced(fd):
        calls.append(("fsync", paths.get(fd)))
        return real_fsync(fd)

    def renamed(src, dst):
        calls.append(("rename", str(src), str(dst)))
        return real_rename(src, dst)

    for name, fn in (("open", opened), ("write", wrote), ("fsync", synced),
                     ("rename", renamed)):
        monkeypatch.setattr(maildir.os, name, fn)
    return calls


def test_a_delivery_writes_fsyncs_renames_then_fsyncs_the_directory(tmp_path, monkeypatch):
    """The order the strace test checks on the real server, here in the same process for
    each code path of ``deliver`` (new/ and cur/, with and without a delivery key)."""
    from sahab.mail import maildir

    for flags, key in (("", None), ("S", "k1")):
        calls = _syscalls(monkeypatch)
        name = maildir.deliver(tmp_path / "box", b"Subject: x\r\n\r\n" + b"y" * 70_000,
                               key=key, flags=flags)
        monkeypatch.undo()
        folder = "cur" if flags else "new"
        final = tmp_path / "box" / "Maildir" / folder / name
        tmp = str(tmp_path / "box" / "Maildir" / "tmp" / name.split(":", 1)[0])
        assert final.read_bytes().endswith(b"y" * 70_000)
        file_ops = [c for c in calls if c[0] in ("write", "fsync") and c[1] == tmp]
        assert file_ops[-1] == ("fsync", tmp) and ("write", tmp) in file_ops
        rename = calls.index(("rename", tmp, str(final)))
        assert calls.index(("fsync", tmp)) < rename
        assert ("fsync", str(final.parent)) in calls[rename + 1:]
        assert not list((tmp_path / "box" / "Maildir" / "tmp").iterdir())


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from sahab.mail import maildir

    def full(fd, data):
        raise OSError(28, "No space left on device")

    maildir.ensure_maildir(tmp_path / "box")
    monkeypatch.setattr(maildir.os, "write", full)
    with pytest.raises(OSError):
        maildir.deliver(tmp_path / "box", b"Subject: x\r\n\r\nbody")
    monkeypatch.undo()
    for part in ("tmp", "new", "cur"):
        assert not list((tmp_path / "box" / "Maildir" / part).iterdir())
