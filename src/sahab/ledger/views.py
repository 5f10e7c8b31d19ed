"""The ledger over HTTP: public, cacheable, no sign-in.

Machine endpoints follow C2SP tlog-tiles (checkpoint, tiles, entry bundles) and
tlog-witness; proofs and entries are JSON; the portal pages explain how to verify.
"""

from __future__ import annotations

import base64
import functools
import json
import re

from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from ninja import Field, Schema

from sahab.core.errors import DomainError, InvalidInput
from sahab.core.problems import domain_problem, problem_response
from sahab.ledger import services, witnessing
from sahab.ledger.errors import LedgerError
from sahab.ledger.models import Entry

IMMUTABLE = "public, max-age=31536000, immutable"
_TILE_INDEX = re.compile(r"^((?:x\d{3}/)*)(\d{3})(?:\.p/([1-9]\d{0,2}))?$")


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _problems(view):
    """Domain errors become RFC 9457 problem responses."""
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return domain_problem(exc)
    return wrapper


def _int_param(request, name: str, default: int | None = None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        if default is None:
            raise InvalidInput(LedgerError.QUERY_PARAMETER_REQUIRED, name=name)
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise InvalidInput(LedgerError.QUERY_PARAMETER_NOT_INTEGER, name=name)
    return int(raw)


def _text(body: str | bytes, cache: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = cache
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _json(data, cache: str = "public, max-age=1") -> JsonResponse:
    response = JsonResponse(data, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = cache
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def checkpoint(request):
    return _text(services.signed_checkpoint(services.latest_checkpoint()),
                 "public, max-age=1")


@require_GET
def status(request):
    """The signer's record and alarm, the database guard, the witnesses: public, so that
    anyone sees when the platform refuses to sign its own database."""
    data = services.status()
    data["signer"].pop("record", None)  # a path on the server, of no use outside
    return _json(data, "no-store")


@require_GET
def key(request):
    return _text(services.verifier_key() + "\n", "public, max-age=3600")


def parse_tile_index(path: str) -> tuple[int, int]:
    """``x001/x234/067.p/112`` → (1234067, 112); width 256 for a full tile."""
    m = _TILE_INDEX.match(path)
    if m is None:
        raise ValueError("bad tile index")
    groups = [g[1:] for g in m.group(1).split("/") if g] + [m.group(2)]
    width = int(m.group(3)) if m.group(3) else services.TILE_WIDTH
    if width > 255 and m.group(3):
        raise ValueError("a partial tile is 1 to 255 wide")
    return int("".join(groups)), width


@require_GET
@_problems
def tile(request, level: str, path: str):
    if not re.fullmatch(r"0|[1-9]\d?", level):
        return problem_response(404, "Not found", "No such tile level.")
    try:
        index, width = parse_tile_index(path)
    except ValueError:
        return problem_response(404, "Not found", "No such tile.")
    response = HttpResponse(services.tile(int(level), index, width),
                            content_type="application/octet-stream")
    response["Cache-Control"] = IMMUTABLE
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@_problems
def entry_bundle(request, path: str):
    try:
        index, width = parse_tile_index(path)
    except ValueError:
        return problem_response(404, "Not found", "No such entry bundle.")
    response = HttpResponse(services.entry_bundle(index, width),
                            content_type="application/octet-stream")
    response["Cache-Control"] = IMMUTABLE
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@_problems
def inclusion_proof(request):
    size = _int_param(request, "size", services.latest_checkpoint().size)
    return _json(services.inclusion_proof_json(_int_param(request, "index"), size), IMMUTABLE)


@require_GET
@_problems
def consistency_proof(request):
    old, new = _int_param(request, "old"), _int_param(request, "new")
    return _json(services.consistency_proof_json(old, new), IMMUTABLE)


def _entry_json(entry: Entry) -> dict:
    return {"index": entry.index, "type": entry.type, "subject": entry.subject,
            "actor": entry.actor, "at": entry.at.isoformat()}


@require_GET
@_problems
def entry(request, index: int):
    record = services.get_entry(index)
    checkpoint = services.checkpoint_covering(index)
    body = bytes(record.body)
    return _json({
        "index": index, "entry": json.loads(body), "body_base64": _b64(body),
        "leaf_hash": _b64(services.leaf_hash_of(index)),
        "checkpoint": services.signed_checkpoint(checkpoint), "size": checkpoint.size,
        "proof": [_b64(h) for h in services.inclusion_proof(index, checkpoint.size)],
    })


@require_GET
@_problems
def entry_raw(request, index: int):
    response = HttpResponse(bytes(services.get_entry(index).body),
                            content_type="application/json")
    response["Cache-Control"] = IMMUTABLE
    return response


@require_GET
@_problems
def receipt(request, index: int):
    response = _text(services.receipt(index), "public, max-age=60")
    response["Content-Disposition"] = f'attachment; filename="sahab-{index}.tlog-proof"'
    return response


def promise_url(request, pending: int) -> str:
    """Where the holder of promise ``pending`` learns its index and receipt."""
    return request.build_absolute_uri(reverse("ledger:promise", args=[pending]))


class IndexOrPromise(Schema):
    """API fields of a row written with a pending entry (``ledger.enqueue``): its ledger
    index, or while the worker's sequencer has not integrated it, its promise's URL."""

    ledger_index: int | None = Field(
        description="The ledger entry; null while it is pending (the worker's sequencer "
                    "integrates it within a second): promise_url gives it then.")
    promise_url: str | None = None

    @staticmethod
    def resolve_promise_url(obj, context) -> str | None:
        if obj.ledger_index is not None or obj.ledger_pending is None:
            return None
        return promise_url(context["request"], obj.ledger_pending)


@require_GET
@_problems
def promise(request, pending: int):
    """What became of a promise the log signed: pending, or the index it was given."""
    state = services.promise_state(pending)
    if state["index"] is not None:
        state["receipt_url"] = request.build_absolute_uri(
            reverse("ledger:receipt", args=[state["index"]]))
    return _json(state, "public, max-age=1" if state["index"] is None else "public, max-age=3600")


@require_GET
@_problems
def search(request):
    subject = request.GET.get("subject", "")[:300]
    type_ = request.GET.get("type", "")[:100]
    limit = min(_int_param(request, "limit", 50), 500)
    offset = _int_param(request, "offset", 0)
    qs = services.logged_entries().order_by("-index")
    if subject:
        qs = qs.filter(subject=subject)
    if type_:
        qs = qs.filter(type=type_)
    items = [_entry_json(e) for e in qs[offset:offset + limit]]
    return _json({"count": qs.count(), "items": items})


@csrf_exempt
@require_POST
@_problems
def add_cosignature(request, size: int):
    """A registered witness posts its cosignature line on the checkpoint of ``size``."""
    if len(request.body) > 16 * 1024:
        return problem_response(413, "Too large", "Send cosignature lines only.")
    checkpoint = services.checkpoint_of_size(size)
    stored = services.accept_cosignatures(checkpoint, request.body.decode("utf-8", "replace"))
    if not stored:
        return problem_response(422, "Invalid cosignature",
                                "No line is a valid cosignature of this checkpoint by a "
                                "registered witness.")
    return _json({"size": size, "stored": stored}, "no-store")


@csrf_exempt
@require_POST
def witness_add_checkpoint(request):
    if len(request.body) > 64 * 1024:
        return _text("request too large\n", "no-store")
    reply = witnessing.add_checkpoint(request.body)
    response = HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
    response["Cache-Control"] = "no-store"
    return response


# --- portal pages -----------------------------------------------------------------------

def home(request):
    from sahab.ledger import signing

    try:
        latest = services.latest_checkpoint()
    except DomainError:
        latest = None  # no checkpoint has its witnesses' cosignatures yet
    page = Paginator(services.logged_entries().order_by("-index").only(
        "index", "type", "subject", "actor", "at"), 25).get_page(request.GET.get("page"))
    alarm = signing.alarm()
    return render(request, "ledger/home.html", {
        "checkpoint": services.signed_checkpoint(latest) if latest else "", "latest": latest,
        "witnesses": services.witness_states(),
        "required": services.cosignatures_required(),
        "alarm": alarm if alarm and alarm.get("active") else None,
        "vkey": services.verifier_key(), "page": page,
        "base": request.build_absolute_uri("/ledger").rstrip("/"),
    })


def entry_page(request, index: int):
    try:
        record = services.get_entry(index)
    except DomainError:
        return render(request, "404.html", status=404)
    body = bytes(record.body)
    return render(request, "ledger/entry.html", {
        "entry": record, "body": body.decode(),
        "pretty": json.dumps(json.loads(body), indent=2, ensure_ascii=False),
        "leaf_hash": _b64(services.leaf_hash_of(index)), "vkey": services.verifier_key(),
        "base": request.build_absolute_uri("/ledger").rstrip("/"),
        "history": services.entries_about(record.subject).exclude(index=index)[:50],
    })
