"""Exchange gateway: latency and throughput through the gateway against calling the
provider directly, in the same run, over plain HTTP and over mutual TLS.

The provider is a small WSGI service under gunicorn (a civil-registry lookup answering a
JSON record); the gateway is `sahab exchange gateway` on SQLite as `sahab serve` runs it,
with a granted client, its token and its certificate. The load generator (asyncio, one
keep-alive connection per caller) calls both the same way: one call at a time for the
added latency (p50), CALLERS callers at once for throughput; direct and gateway rounds
alternate and each side keeps its best of ROUNDS. Plain: client → gateway → provider over
HTTP, against client → provider over HTTP. Mutual TLS: every hop over TLS with client
certificates (the client's to the gateway, the gateway's to the provider), against client
→ provider over TLS with the client's certificate. Last, the gateway's strict log mode
(each record committed before its answer ends) against the default batch mode.
Goal: ≥ 0.7 of direct throughput, < 2 ms added at p50.

    SAHAB_BENCH_EXCHANGE_CALLS=4000 python -m bench exchange
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port

ROUNDS = 3
CALLERS = int(os.environ.get("SAHAB_BENCH_EXCHANGE_CALLERS", "16"))
PROVIDER_APP = '''
import json
BODY = json.dumps({"cin": "08123456", "prenom": "Sonia", "nom": "Gharbi",
                   "date_naissance": "1985-03-12", "lieu_naissance": "Tunis"}).encode()

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
'''

SETUP = '''
import json
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sahab.core import keys
from sahab.core.setup import initialise
list(initialise(verbose=False))
from sahab.directory.models import Administration
from sahab.directory.selectors import SYSTEM
from sahab.exchange import gateway, services
gateway.prepare_keys()
mi = Administration.objects.create(code="MI", kind="ministry", name_fr="Intérieur",
                                   name_ar="الداخلية", path="/MI/")
mf = Administration.objects.create(code="MF", kind="ministry", name_fr="Finances",
                                   name_ar="المالية", path="/MF/")
for port in ({plain}, {tls}):
    services.register_provider_host(actor=SYSTEM, administration=mi, host="127.0.0.1",
                                    port=port, allow_internal=True)
registry = services.register_subsystem(actor=SYSTEM, administration=mi, code="ETAT-CIVIL",
                                       name="État civil")
tax = services.register_subsystem(actor=SYSTEM, administration=mf, code="IMPOTS", name="Impôts")
out = {{"client": tax.identifier}}
for name, url in (("plain", "http://127.0.0.1:{plain}/registry"),
                  ("tls", "https://127.0.0.1:{tls}/registry")):
    service = services.register_service(actor=SYSTEM, subsystem=registry, code=name,
                                        name=name, base_url=url, owner="DSI",
                                        max_concurrency=1000)
    grant = services.request_grant(actor=SYSTEM, client=tax, service=service,
                                   legal_basis="Loi", purpose="Bench")
    services.decide_grant(actor=SYSTEM, grant=grant, approve=True, rate_per_minute=100000)
    out[name] = service.identifier
out["token"] = services.issue_client_token(actor=SYSTEM, subsystem=tax, name="bench")[1]
key = ec.generate_private_key(ec.SECP256R1())
csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
    [x509.NameAttribute(NameOID.COMMON_NAME, "bench")])).sign(key, hashes.SHA256())
record = services.issue_certificate(actor=SYSTEM, subsystem=tax,
    csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())
open("{home}/client.pem", "w").write(record.pem)
open("{home}/client.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
out["tls_cert"] = str(keys.tls_cert_path())
out["tls_key"] = str(keys.tls_key_path())
from sahab.exchange import ca
out["ca"] = str(ca.ca_cert_path())
print(json.dumps(out))
'''


def _env(home: Path, **extra) -> dict:
    env = {**os.environ, "SAHAB_HOME": str(home), "DJANGO_SETTINGS_MODULE": "sahab.settings",
           "SAHAB_LOG_LEVEL": "WARNING", "SAHAB_EXCHANGE_ALLOW_HTTP_PROVIDERS": "true", **extra}
    env.pop("DATABASE_URL", None)
    return env


def _setup(home: Path, plain: int, tls: int) -> dict:
    code = SETUP.format(plain=plain, tls=tls, home=home)
    out = subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "shell", "-c", code],
                         env=_env(home), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _wait(url: str, context) -> None:
    import aiohttp

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url, ssl=context) as response:
                    await response.read()
                    return
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


async def _latencies(url: str, headers: dict, context, n: int) -> list[float]:
    import aiohttp

    samples = []
    connector = aiohttp.TCPConnector(limit=1, ssl=context)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        for _ in range(n):
            start = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
                assert response.status == 200, await response.text()
            samples.append((time.perf_counter() - start) * 1000)
    return samples


async def _throughput(url: str, headers: dict, context, n: int) -> float:
    import aiohttp

    async def caller(http, count: int) -> None:
        for _ in range(count):
            async with http.get(url) as response:
                await response.read()
                assert response.status == 200

    connector = aiohttp.TCPConnector(limit=CALLERS, ssl=context)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        await asyncio.gather(*(caller(http, 20) for _ in range(CALLERS)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(caller(http, n // CALLERS) for _ in range(CALLERS)))
        return (n // CALLERS * CALLERS) / (time.perf_counter() - start)


def _compare(direct: tuple, gateway: tuple, n: int) -> tuple[float, float, float, float]:
    """Alternate rounds; (direct p50, gateway p50, direct rate, gateway rate), best of."""
    d50 = g50 = float("inf")
    d_rate = g_rate = 0.0
    for _ in range(ROUNDS):
        d50 = min(d50, statistics.median(asyncio.run(_latencies(*direct, n // 4))))
        g50 = min(g50, statistics.median(asyncio.run(_latencies(*gateway, n // 4))))
        d_rate = max(d_rate, asyncio.run(_throughput(*direct, n)))
        g_rate = max(g_rate, asyncio.run(_throughput(*gateway, n)))
    return d50, g50, d_rate, g_rate


def _print(label: str, d50: float, g50: float, d_rate: float, g_rate: float) -> None:
    print(f"  {label:<28} p50 direct {d50:6.2f} ms, gateway {g50:6.2f} ms -> added "
          f"{g50 - d50:5.2f} ms (goal < 2); throughput direct {d_rate:7,.0f}/s, gateway "
          f"{g_rate:7,.0f}/s -> ratio {g_rate / d_rate:5.3f} (goal >= 0.70)")


def _gateway(home: Path, plain: int, tls: int, **extra) -> subprocess.Popen:
    env = _env(home, SAHAB_EXCHANGE_PORT=str(plain), SAHAB_EXCHANGE_TLS_PORT=str(tls), **extra)
    return subprocess.Popen([sys.executable, "-m", "sahab.cli", "exchange", "gateway"],
                            env=env, stdout=subprocess.DEVNULL)


def _stop(*processes) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    calls = int(os.environ.get("SAHAB_BENCH_EXCHANGE_CALLS", "4000"))
    workdir = Path(tempfile.mkdtemp(prefix="sahab-bench-exchange-"))
    (workdir / "provider.py").write_text(PROVIDER_APP)
    home = workdir / "home"
    home.mkdir()
    provider_plain, provider_tls, gw_plain, gw_tls = (free_port() for _ in range(4))
    setup = _setup(home, provider_plain, provider_tls)
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4",
                "--chdir", str(workdir), "provider:app"]
    providers = [
        subprocess.Popen([*gunicorn, "--bind", f"127.0.0.1:{provider_plain}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([*gunicorn, "--bind", f"127.0.0.1:{provider_tls}",
                          "--certfile", setup["tls_cert"], "--keyfile", setup["tls_key"],
                          "--ca-certs", setup["ca"], "--cert-reqs", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    client_tls = ssl.create_default_context(cafile=setup["tls_cert"])
    client_tls.load_cert_chain(str(home / "client.pem"), str(home / "client.key"))
    headers = {"X-Road-Client": setup["client"]}
    token = {**headers, "Authorization": f"Bearer {setup['token']}"}
    path = "persons/08123456"
    plain = ((f"http://127.0.0.1:{provider_plain}/registry/{path}", {}, None),
             (f"http://127.0.0.1:{gw_plain}/r1/{setup['plain']}/{path}", token, None))
    tls = ((f"https://127.0.0.1:{provider_tls}/registry/{path}", {}, client_tls),
           (f"https://127.0.0.1:{gw_tls}/r1/{setup['tls']}/{path}", headers, client_tls))
    try:
        gateway = _gateway(home, gw_plain, gw_tls)
        try:
            for url, _, context in (*plain, *tls):
                asyncio.run(_wait(url.replace(f"/r1/{setup['plain']}/{path}", "/healthz")
                                  .replace(f"/r1/{setup['tls']}/{path}", "/healthz"), context))
            _print("plain HTTP, batch log", *_compare(*plain, calls))
            _print("mutual TLS, batch log", *_compare(*tls, calls))
        finally:
            _stop(gateway)
        gateway = _gateway(home, gw_plain, gw_tls, SAHAB_EXCHANGE_LOG_STRICT="true")
        try:
            asyncio.run(_wait(f"http://127.0.0.1:{gw_plain}/healthz", None))
            _print("plain HTTP, strict log", *_compare(*plain, calls))
        finally:
            _stop(gateway)
    finally:
        _stop(*providers)
    count = subprocess.run(
        [sys.executable, "-m", "sahab.cli", "manage", "shell", "-c",
         "from sahab.exchange.models import Message; print(Message.objects.count())"],
        env=_env(home), capture_output=True, text=True, check=True).stdout.split()[-1]
    print(f"  {CALLERS} callers, best of {ROUNDS} alternating rounds; {count} exchanges in the "
          "message log")


if __name__ == "__main__":
    main()
