"""``sahab demo``: load the demo data set of every pillar and write ``demo.json``.

Loading is idempotent: what exists is kept, passwords and tokens already written to
``demo.json`` stay valid, and a second run changes nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction


def demo_path() -> Path:
    return settings.SAHAB_HOME / "demo.json"


def previous_demo() -> dict:
    try:
        return json.loads(demo_path().read_text())
    except (OSError, ValueError):
        return {}


def _loaders():
    """Each pillar's ``load(previous, data)`` in dependency order."""
    from sahab.cloud import demo as cloud_demo
    from sahab.directory import demo as directory_demo
    from sahab.exchange import demo as exchange_demo
    from sahab.ledger import demo as ledger_demo
    from sahab.mail import demo as mail_demo
    from sahab.procurement import demo as procurement_demo

    return [directory_demo.load, procurement_demo.load, cloud_demo.load, exchange_demo.load,
            mail_demo.load, ledger_demo.load]


def load_demo() -> dict:
    previous = previous_demo()
    base = settings.PUBLIC_URL.rstrip("/")
    data: dict = {"urls": {"web": f"{base}/", "api": f"{base}/api/", "admin": f"{base}/admin/"}}
    from tqdm import tqdm

    loaders = _loaders()
    # a progress bar on a terminal (nothing in logs or tests): the demo takes a minute
    with transaction.atomic(), tqdm(total=len(loaders), unit="pillar", disable=None,
                                    desc="Loading the demo") as progress:
        for load in loaders:
            progress.set_postfix_str(load.__module__.split(".")[1])
            load(previous, data)
            progress.update()
    path = demo_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)
    os.replace(tmp, path)
    return data


def print_summary(data: dict) -> None:
    print(f"\nDemo data loaded; every login is in {demo_path()}\n")
    for name, url in data.get("urls", {}).items():
        print(f"  {name:<11} {url}")
    print("\n  Demo logins (username / password — role, administration or company):")
    for user in data.get("users", []):
        print(f"  {user['username']:<22} {user['password']:<18} {user['role']}, "
              f"{user['administration']}")
    for token in data.get("api_tokens", []):
        print(f"\n  API token of {token['username']}: {token['token']}")
    if osb := data.get("osb"):
        print(f"\n  Reference service broker: {osb['url']} (user {osb['username']}, "
              f"password {osb['password']})")
    if cloud := data.get("cloud"):
        print(f"  Cloud: {cloud['orders']} orders, {cloud['active_instances']} databases running"
              + (f" on {cloud['dbaas']}" if cloud["dbaas"] else
                 f" — {cloud['unavailable_reason']}"))
    if exchange := data.get("exchange"):
        print("\n  Exchange gateway (X-Road REST): send Authorization: Bearer <token> and "
              "X-Road-Client")
        for client in exchange["clients"]:
            print(f"  {client['subsystem']:<28} {client['token']}")
        for call in exchange["calls"][:2]:
            print(f"  e.g. {call['url']} (as {call['client']}, "
                  f"{'granted' if call['granted'] else 'refused'})")
    if mailboxes := data.get("mailboxes"):
        print(f"\n  Mail: webmail {data['urls'].get('webmail')}, IMAP {data['urls'].get('imap')}"
              f" and submission {data['urls'].get('submission')} (STARTTLS); "
              "mail-client passwords:")
        for box in mailboxes[:6]:
            print(f"  {box['address']:<34} {box['password']}")
        if len(mailboxes) > 6:
            print(f"  … and {len(mailboxes) - 6} more in demo.json")
    if ledger := data.get("ledger"):
        print(f"\n  Ledger key: {ledger['key']}\n  Verify the ledger: {ledger['verify']}")
    print()
