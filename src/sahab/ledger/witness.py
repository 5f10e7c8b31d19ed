"""``sahab witness``: an independent witness of transparency logs (C2SP tlog-witness).

It runs as its own process with its own key and its own storage (a folder, never the
platform's database), so that it can run on another machine, under another authority:
the Cour des comptes, HAICOP, the access-to-information authority, a university. For
each log it is configured with (by the log's verifier key) it keeps the latest
checkpoint it cosigned, and cosigns a new one only if the log's signature verifies and a
consistency proof leads from the size it holds to the new one. A refused request is kept
as evidence (``refused/``): it is a checkpoint the log signed that contradicts another.

No Django here: the witness depends on nothing of the platform it watches.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socketserver
import time
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sahab.core.localfiles import exclusive_lock
from sahab.ledger import merkle, note

MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    """``old N``, proof lines, a blank line, the signed checkpoint (tlog-witness)."""
    head, sep, checkpoint = body.partition(b"\n\n")
    if not sep:
        raise ValueError("no blank line before the checkpoint")
    lines = head.decode("ascii").split("\n")
    if not lines[0].startswith("old ") or not lines[0][4:].isdigit() or \
            (lines[0][4:] != "0" and lines[0][4:].startswith("0")):
        raise ValueError("the first line is 'old <size>'")
    proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    if len(proof) > MAX_PROOF_LINES or any(len(h) != 32 for h in proof):
        raise ValueError("bad consistency proof lines")
    return int(lines[0][4:]), proof, checkpoint


def decide(old: int, proof: list[bytes], checkpoint: note.Checkpoint, known_size: int,
           known_root: bytes) -> Reply | None:
    """The protocol's checks against the state a witness holds; None means cosign.

    The caller has verified the log's signature and holds the state's lock.
    """
    if old > checkpoint.size:
        return Reply(400, "old size is larger than the checkpoint size\n")
    if old != known_size:
        return Reply(409, f"{known_size}\n", SIZE_CONTENT_TYPE)
    if old == checkpoint.size:
        if old and known_root != checkpoint.root:
            return Reply(409, f"{known_size}\n", SIZE_CONTENT_TYPE)
    elif old == 0:
        if proof:
            return Reply(422, "a proof from size 0 must be empty\n")
    else:
        try:
            merkle.verify_consistency(old, checkpoint.size, proof, known_root,
                                      checkpoint.root)
        except merkle.ProofError as exc:
            return Reply(422, f"the consistency proof does not verify: {exc}\n")
    return None


def _safe(origin: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in origin)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class WitnessHome:
    """A witness's folder: ``witness.json`` (name, logs), its key, one state per log."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "witness.json"

    @property
    def key_path(self) -> Path:
        return self.path / "witness-ed25519.pem"

    def exists(self) -> bool:
        return self.config_path.exists() and self.key_path.exists()

    def init(self, name: str) -> None:
        """Create the folder, key and configuration once; a second call changes nothing."""
        if not name or any(c.isspace() or c == "+" for c in name):
            raise ValueError("a witness name has no spaces and no '+'")
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.path / "logs").mkdir(exist_ok=True, mode=0o700)
        (self.path / "refused").mkdir(exist_ok=True, mode=0o700)
        if not self.key_path.exists():
            key = Ed25519PrivateKey.generate()
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        if not self.config_path.exists():
            _write_private(self.config_path, json.dumps({"name": name, "logs": {}},
                                                        indent=2).encode())

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    @property
    def name(self) -> str:
        return self.config()["name"]

    def key(self) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.key_path} is not an Ed25519 key")
        return key

    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key, to give to the logs it witnesses."""
        public = note.Signer("w", self.key()).verifier.public_key
        return note.Verifier(self.name, note.SIG_COSIGNATURE_V1, public).vkey()

    def add_log(self, vkey: str) -> str:
        """Witness the log with this Ed25519 verifier key; its name is its origin."""
        verifier = note.parse_vkey(vkey)
        if verifier.sig_type != note.SIG_ED25519:
            raise note.NoteError("a log's key is an Ed25519 (type 0x01) key")
        with self._locked("config"):
            config = self.config()
            known = config["logs"].get(verifier.name)
            if known and known != vkey.strip():
                raise note.NoteError(f"{verifier.name} is witnessed with another key")
            config["logs"][verifier.name] = vkey.strip()
            _write_private(self.config_path, json.dumps(config, indent=2).encode())
        return verifier.name

    def logs(self) -> dict[str, str]:
        return dict(self.config()["logs"])

    def state(self, origin: str) -> dict:
        path = self.path / "logs" / f"{_safe(origin)}.json"
        if not path.exists():
            return {"origin": origin, "size": 0, "root": "", "checkpoint": ""}
        return json.loads(path.read_text())

    def _locked(self, name: str):
        return exclusive_lock(self.path / f".{_safe(name)}.lock")

    def _keep_evidence(self, origin: str, body: bytes, reply: Reply) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.path / "refused" / f"{_safe(origin)}-{stamp}-{time.time_ns() % 10**9}.txt"
        _write_private(path, f"HTTP {reply.status}: {reply.body}\n".encode() + body)

    def add_checkpoint(self, body: bytes) -> Reply:
        """Answer an ``add-checkpoint`` request as tlog-witness says."""
        try:
            old, proof, signed = parse_request(body)
            origin = signed.split(b"\n", 1)[0].decode()
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            return Reply(400, f"malformed request: {exc}\n")
        vkey = self.logs().get(origin)
        if vkey is None:
            return Reply(404, f"unknown log {origin}\n")
        try:
            checkpoint, _ = note.open_checkpoint(signed, note.parse_vkey(vkey))
        except note.NoteError as exc:
            return Reply(403, f"the checkpoint does not verify: {exc}\n")
        with self._locked(origin):
            state = self.state(origin)
            refusal = decide(old, proof, checkpoint, state["size"],
                             base64.b64decode(state["root"]) if state["root"] else b"")
            if refusal is not None:
                if refusal.status in (409, 422) and old == state["size"]:
                    self._keep_evidence(origin, body, refusal)  # a signed contradiction
                return refusal
            _write_private(self.path / "logs" / f"{_safe(origin)}.json", json.dumps({
                "origin": origin, "size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root).decode(),
                "checkpoint": signed.decode(), "cosigned_at": int(time.time()),
            }, indent=2).encode())
        return Reply(200, note.cosign(self.name, self.key(), checkpoint.text(),
                                      int(time.time())))

    # --- HTTP -----------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path.rstrip("/").endswith("/add-checkpoint") or path == "/add-checkpoint":
            if method != "POST":
                reply = Reply(405, "POST a checkpoint here\n")
            else:
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_REQUEST_BYTES:
                    reply = Reply(413, "request too large\n")
                else:
                    reply = self.add_checkpoint(environ["wsgi.input"].read(length))
        elif path in ("", "/") and method == "GET":
            reply = Reply(200, json.dumps({
                "name": self.name, "vkey": self.vkey(),
                "logs": [{"origin": o, "size": self.state(o)["size"]} for o in self.logs()],
            }, indent=2) + "\n", "application/json")
        else:
            reply = Reply(404, "not found\n")
        body = reply.body.encode()
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'Error')}", [
            ("Content-Type", reply.content_type), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store")])
        return [body]


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
            422: "Unprocessable Content"}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        import sys

        sys.stderr.write(f"witness: {self.address_string()} {format % args}\n")


def make_witness_server(home: WitnessHome, host: str, port: int) -> WSGIServer:
    return make_server(host, port, home.wsgi, server_class=_ThreadingServer,
                       handler_class=_QuietHandler)


def serve(home: WitnessHome, host: str, port: int) -> None:
    """Serve ``POST /add-checkpoint`` (and ``GET /``) until interrupted."""
    with make_witness_server(home, host, port) as server:
        server.serve_forever()
