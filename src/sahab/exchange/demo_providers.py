"""Two provider systems that the demo runs beside sahab, standing for the information
systems of two ministries: a civil-registry lookup and a tax-status certificate. They
answer with fake but stable records, over TLS, and only to the gateway: the connection
must show the gateway's client certificate (platform CA, its subject), which no client
subsystem has. ``sahab serve`` runs them where the demo was loaded, nowhere else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import signal
import ssl

from aiohttp import web

FIRST_NAMES = ["Sonia", "Walid", "Amel", "Karim", "Leila", "Mehdi", "Rim", "Hichem", "Nadia",
               "Yassine", "Fatma", "Anis", "Olfa", "Sami", "Ines", "Mohamed"]
LAST_NAMES = ["Gharbi", "Hammami", "Ben Salah", "Trabelsi", "Bouazizi", "Jlassi", "Chaabane",
              "Baccouche", "Mejri", "Dridi", "Ayari", "Zouari", "Sassi", "Karoui", "Belhadj"]
CITIES = ["Tunis", "Sfax", "Sousse", "Kairouan", "Bizerte", "Gabès", "Ariana", "Gafsa"]


def _seed(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")


def _problem(status: int, title: str, detail: str) -> tuple[int, dict]:
    return status, {"type": "about:blank", "title": title, "status": status, "detail": detail}


def person(cin: str) -> tuple[int, dict]:
    """État civil: a person by national identity card number (8 digits)."""
    if not re.fullmatch(r"\d{8}", cin):
        return _problem(400, "Bad request", "A CIN has eight digits.")
    if cin.startswith("0000"):
        return _problem(404, "Not found", f"No person with CIN {cin}.")
    seed = _seed(cin)
    born = dt.date(1950, 1, 1) + dt.timedelta(days=seed % 20000)
    return 200, {"cin": cin, "prenom": FIRST_NAMES[seed % len(FIRST_NAMES)],
                         "nom": LAST_NAMES[(seed >> 8) % len(LAST_NAMES)],
                         "date_naissance": born.isoformat(),
                         "lieu_naissance": CITIES[(seed >> 16) % len(CITIES)],
                 "etat": "vivant" if seed % 17 else "décédé"}


def tax_status(matricule: str) -> tuple[int, dict]:
    """Fiscalité: whether a taxpayer is in good standing (attestation de situation fiscale)."""
    if not re.fullmatch(r"\d{7}[A-Z]", matricule):
        return _problem(400, "Bad request", "The matricule fiscal is 7 digits and a letter, "
                                            "e.g. 1402317K.")
    seed = _seed(matricule)
    regular = seed % 5 != 0
    return 200, {"matricule_fiscal": matricule,
                         "situation": "en règle" if regular else "non en règle",
                         "attestation": f"ASF-{seed % 10**8:08d}" if regular else None,
                         "valable_jusqu_au": (dt.date.today() + dt.timedelta(days=90))
                 .isoformat() if regular else None}


ROUTES = {"etat-civil/personnes": person, "fiscalite/attestations": tax_status}


async def handle(request: web.BaseRequest) -> web.Response:
    """Only the gateway is served: its certificate, checked here after the handshake."""
    from sahab.exchange import ca

    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not ca.is_gateway_certificate(der):
        status, body = _problem(403, "Forbidden", "Only calls through the gateway are served.")
    elif request.method != "GET":
        status, body = _problem(405, "Method not allowed", "Only GET is served.")
    else:
        folder, _, key = request.path.strip("/").rpartition("/")
        lookup = ROUTES.get(folder)
        status, body = lookup(key) if lookup else _problem(404, "Not found", "No such resource.")
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(),
                        content_type="application/problem+json" if status >= 400
                        else "application/json")


def ssl_context() -> ssl.SSLContext:
    from sahab.core import keys
    from sahab.exchange import ca

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(keys.tls_cert_path()), str(keys.tls_key_path()))
    context.load_verify_locations(cafile=str(ca.ca_cert_path()))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def start(host: str = "127.0.0.1", port: int = 0):
    server = await asyncio.get_running_loop().create_server(
        web.Server(handle, access_log=None), host, port, ssl=ssl_context())
    return server, server.sockets[0].getsockname()[1]


def serve(host: str = "127.0.0.1", port: int | None = None) -> None:
    import uvloop
    from django.conf import settings

    from sahab.exchange import gateway

    gateway.prepare_keys()

    async def main() -> None:
        server, bound = await start(host, port or settings.EXCHANGE_DEMO_PORT)
        print(f"sahab exchange: demo providers on https://{host}:{bound}/ (gateway only)",
              flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(main())


def enabled() -> bool:
    """Whether this installation runs the demo providers: where ``sahab demo`` was loaded
    (``EXCHANGE_DEMO_PROVIDERS=auto``), or as set (``on``/``off``)."""
    from django.conf import settings

    choice = settings.EXCHANGE_DEMO_PROVIDERS.strip().lower()
    if choice in ("on", "true", "1", "yes"):
        return True
    if choice in ("off", "false", "0", "no"):
        return False
    return (settings.SAHAB_HOME / "demo.json").exists()
