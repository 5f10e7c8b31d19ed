"""A bounded mixed workload against a served demo platform, and the check that every
acknowledged action is there exactly once.

Actions: sealed bids (procurement API), cloud orders that provision real databases
(cloud API + the reference broker), mail submitted over SMTP with STARTTLS, and calls
through the exchange gateway. Each action that the platform acknowledged is recorded
with the time of its acknowledgement; ``check`` asks an installation for each of them.
"""

from __future__ import annotations

import json
import random
import smtplib
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from sahab.procurement import client as bidder

PREPARE = """
import json
from django.contrib.auth import get_user_model
from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM
from sahab.procurement.models import Tender
tender = Tender.objects.get(reference={reference!r})
tokens = [[directory.issue_api_token(actor=SYSTEM, user=user, name="workload")[1],
           user.company_member.company_id]
          for user in get_user_model().objects.filter(username__in={usernames!r})]
print(json.dumps({{"tokens": tokens, "lots": [str(n) for n in
                  tender.lots.values_list("number", flat=True)]}}))
"""

CHECK = """
import base64, json, sys
from pathlib import Path
from django.conf import settings
from sahab.procurement.models import Bid
from sahab.cloud.models import Order
from sahab.exchange.models import Message
from sahab.ledger.models import PendingEntry
acks = json.loads(Path({path!r}).read_text())
found = {{"bid": {{}}, "order": {{}}, "mail": {{}}, "exchange": {{}}}}
for ack in acks:
    kind, key = ack["kind"], ack["key"]
    if kind == "bid":
        # the bid, and the pending entry the log promised for it, with the promised leaf
        bid = Bid.objects.filter(pk=key["bid"]).first()
        promised = PendingEntry.objects.filter(pk=key["pending"]).first()
        found[kind][str(key["bid"])] = int(
            bid is not None and bid.commitment == key["commitment"]
            and promised is not None and bid.ledger_pending == promised.pk
            and base64.b64encode(bytes(promised.leaf_hash)).decode() == key["leaf_hash"])
    elif kind == "order":
        found[kind][key] = Order.objects.filter(number=key).count()
    elif kind == "exchange":
        found[kind][key] = Message.objects.filter(x_road_id=key).count()
    elif kind == "mail":
        needle = key["message_id"].encode()
        home = settings.SAHAB_HOME / "mail"
        count = 0
        for sub in ("new", "cur"):
            for file in home.glob(f"*/*/Maildir/{{sub}}/*"):
                if needle in file.read_bytes():
                    count += 1
        found[kind][key["message_id"]] = count
print(json.dumps(found))
"""


@dataclass
class Ack:
    kind: str
    key: object
    at: float


@dataclass
class Workload:
    """What the workload needs from a demo platform (see ``prepare``)."""

    base: str
    env: dict
    demo: dict
    bidders: list[tuple[str, int, object]]  # token, company id, its signing key
    reference: str
    lots: list[str]
    plan: int | None
    detail: dict = field(default_factory=dict)  # the tender's public detail, sealed to
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self, kind: str, key) -> None:
        with self.lock:
            self.acks.append(Ack(kind, key, time.time()))

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def refused(self, kind: str, response: httpx.Response) -> None:
        """An answer that is not an acknowledgement: kept so that a stalled run says why."""
        self.failed(f"{kind}: HTTP {response.status_code} {response.text[:200]}")

    def progress(self) -> str:
        """Acknowledgements by kind and the first errors, for a failure message."""
        with self.lock:
            counts = Counter(a.kind for a in self.acks)
            return f"acknowledged {dict(counts)}; {len(self.errors)} errors, first: " \
                   f"{self.errors[:10]}"


def prepare(served) -> Workload:
    demo = served.demo
    reference = demo["procurement"]["open_for_bids"][0]
    bidders = [u["username"] for u in demo["users"] if u["role"] == "bidder"]
    out = served.sahab("manage", "shell", "-c",
                       PREPARE.format(reference=reference, usernames=bidders)).stdout
    data = json.loads(out.strip().splitlines()[-1])
    it_token = next(t["token"] for t in demo["api_tokens"] if t["username"] == "it.finances")
    catalogue = httpx.get(f"{served.url}/api/cloud/catalogue", params={"orderable": "true"},
                          headers={"Authorization": f"Bearer {it_token}"}, timeout=30).json()
    cheap = [e for e in catalogue if e["orderable"] and e["monthly_estimate"] is not None
             and float(e["monthly_estimate"]) <= 300 and e["category"] == "database"]
    bidders = []
    for token, company in data["tokens"]:  # each company registers a key of its own
        key = bidder.new_signing_key()
        r = httpx.post(f"{served.url}/api/procurement/signing-keys", timeout=30,
                       json=bidder.registration(company, key),
                       headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 201:
            bidders.append((token, company, key))
    detail = httpx.get(f"{served.url}/api/procurement/tenders/{reference}", timeout=30).json()
    return Workload(base=served.url, env=served.env, demo=demo, bidders=bidders,
                    reference=reference, lots=data["lots"],
                    plan=cheap[0]["plan"] if cheap else None, detail=detail)


# --- one action of each kind ------------------------------------------------------------

def submit_one_bid(w: Workload, client: httpx.Client) -> None:
    """The "submit one bid" step: sealed and signed here, the bidder's side; only the
    envelope is sent."""
    token, company, key = random.choice(w.bidders)
    prices = {lot: str(random.randint(10_000, 900_000)) for lot in w.lots}
    envelope = bidder.seal_bid(w.detail, company_id=company, key=key, prices=prices)
    r = client.post(f"{w.base}/api/procurement/tenders/{w.reference}/bids",
                    json={"envelope": envelope}, headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 201:
        body = r.json()
        # the promise, a signed note: format, origin, pending number, leaf hash, time
        _, _, pending, leaf_hash, _ = body["promise"].split("\n")[:5]
        w.acknowledged("bid", {"bid": body["bid"], "commitment": body["commitment"],
                               "pending": int(pending), "leaf_hash": leaf_hash})
    else:
        w.refused("bid", r)


def place_one_order(w: Workload, client: httpx.Client) -> None:
    if w.plan is None:
        return
    token = next(t["token"] for t in w.demo["api_tokens"] if t["username"] == "it.finances")
    r = client.post(f"{w.base}/api/cloud/orders",
                    json={"plan": w.plan, "purpose": f"workload {uuid.uuid4().hex[:8]}"},
                    headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 201:
        w.acknowledged("order", r.json()["number"])
    else:
        w.refused("order", r)


def send_one_mail(w: Workload, client: httpx.Client) -> None:
    boxes = w.demo["mailboxes"]
    sender, recipient = random.sample(boxes, 2)
    message = EmailMessage()
    message["From"], message["To"] = sender["address"], recipient["address"]
    message["Subject"] = "Note de service"
    message_id = f"<{uuid.uuid4().hex}@workload.test>"
    message["Message-ID"] = message_id
    message.set_content("Veuillez trouver ci-joint la note.\n" * 20)
    port = int(w.env["SAHAB_SUBMISSION_PORT"])
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.starttls(context=context)
        smtp.login(sender["address"], sender["password"])
        smtp.send_message(message)
    w.acknowledged("mail", {"message_id": message_id, "to": recipient["address"]})


def call_one_service(w: Workload, client: httpx.Client) -> None:
    calls = [c for c in w.demo["exchange"]["calls"] if c["granted"]]
    call = random.choice(calls)
    token = next(c["token"] for c in w.demo["exchange"]["clients"]
                 if c["subsystem"] == call["client"])
    x_road_id = uuid.uuid4().hex
    r = client.get(call["url"], headers={"Authorization": f"Bearer {token}",
                                 "X-Road-Client": call["client"], "X-Road-Id": x_road_id})
    if r.status_code == 200:
        w.acknowledged("exchange", x_road_id)
    else:
        w.refused("exchange", r)


ACTIONS = [submit_one_bid, submit_one_bid, send_one_mail, send_one_mail, call_one_service,
           call_one_service, place_one_order]


def run(w: Workload, *, threads: int, actions_per_thread: int, stop: threading.Event,
        pause: float = 0.05, max_orders: int = 6) -> None:
    """Run a bounded number of random actions on ``threads`` threads; failures (refused
    connections while a process is down) are counted, never retried blindly."""
    orders = [0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            for _ in range(actions_per_thread):
                if stop.is_set():
                    return
                action = rng.choice(ACTIONS)
                if action is place_one_order:
                    with w.lock:
                        if orders[0] >= max_orders:
                            action = submit_one_bid
                        else:
                            orders[0] += 1
                try:
                    action(w, client)
                except (httpx.HTTPError, OSError, smtplib.SMTPException) as exc:
                    w.failed(f"{action.__name__}: {type(exc).__name__}")
                time.sleep(pause)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=600)


def check(served, acks: list[Ack], tmp_path) -> dict:
    """How many times each acknowledged action is found in ``served``'s installation."""
    path = tmp_path / f"acks-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps([{"kind": a.kind, "key": a.key} for a in acks]))
    out = served.sahab("manage", "shell", "-c", CHECK.format(path=str(path))).stdout
    return json.loads(out.strip().splitlines()[-1])


def missing_or_doubled(found: dict) -> dict:
    return {kind: {k: n for k, n in items.items() if n != 1} for kind, items in found.items()
            if any(n != 1 for n in items.values())}
