"""Exchange gateway: latency and throughput through the gateway against calling the
provider directly, in the same run.

The provider is a small WSGI service under gunicorn (a civil-registry lookup answering
a JSON record); the gateway is sahab under gunicorn on SQLite, as `sahab serve` runs
it, with a granted client and its token. The load generator calls both the same way
(sequential calls for latency, 16 parallel callers for throughput). Goal: overhead under
2 ms at p50 and at least 70 % of direct throughput.

    SAHAB_BENCH_EXCHANGE_CALLS=3000 python -m bench exchange
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port

PROVIDER_APP = '''
import json
BODY = json.dumps({"cin": "08123456", "prenom": "Sonia", "nom": "Gharbi",
                   "date_naissance": "1985-03-12", "lieu_naissance": "Tunis"}).encode()

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
'''


def _wait(url: str, headers: dict | None = None) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, headers=headers, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def _setup(home: Path, provider_url: str) -> dict:
    """Registry, grant and token in a fresh SAHAB_HOME (runs in a child process)."""
    code = f'''
import json
from sahab.core.setup import initialise
list(initialise(verbose=False))
from sahab.directory.models import Administration
from sahab.directory.selectors import SYSTEM
from sahab.exchange import services
mi = Administration.objects.create(code="MI", kind="ministry", name_fr="Intérieur",
                                   name_ar="الداخلية", path="/MI/")
mf = Administration.objects.create(code="MF", kind="ministry", name_fr="Finances",
                                   name_ar="المالية", path="/MF/")
registry = services.register_subsystem(actor=SYSTEM, administration=mi, code="ETAT-CIVIL",
                                       name="État civil")
service = services.register_service(actor=SYSTEM, subsystem=registry, code="personnes",
                                    name="Personnes", base_url="{provider_url}", owner="DSI")
tax = services.register_subsystem(actor=SYSTEM, administration=mf, code="IMPOTS", name="Impôts")
grant = services.request_grant(actor=SYSTEM, client=tax, service=service, legal_basis="Loi",
                               purpose="Bench")
services.decide_grant(actor=SYSTEM, grant=grant, approve=True, rate_per_minute=100000)
token = services.issue_client_token(actor=SYSTEM, subsystem=tax, name="bench")[1]
print(json.dumps({{"token": token, "client": tax.identifier, "service": service.identifier}}))
'''
    env = {**os.environ, "SAHAB_HOME": str(home), "DJANGO_SETTINGS_MODULE": "sahab.settings"}
    env.pop("DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "shell", "-c", code],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _latencies(url: str, headers: dict, n: int) -> list[float]:
    import httpx

    samples = []
    with httpx.Client(headers=headers, timeout=10) as http:
        for _ in range(n):
            start = time.perf_counter()
            response = http.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
    return samples


def _throughput(url: str, headers: dict, n: int, callers: int = 16) -> float:
    import httpx

    def worker(count: int) -> None:
        with httpx.Client(headers=headers, timeout=10) as http:
            for _ in range(count):
                assert http.get(url).status_code == 200

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        list(pool.map(worker, [n // callers] * callers))
    return (n // callers * callers) / (time.perf_counter() - start)


def main() -> None:
    from bench.common import percentile, report

    calls = int(os.environ.get("SAHAB_BENCH_EXCHANGE_CALLS", "3000"))
    workdir = Path(tempfile.mkdtemp(prefix="sahab-bench-exchange-"))
    (workdir / "provider.py").write_text(PROVIDER_APP)
    provider_port, gateway_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}/registry"
    env = {**os.environ, "SAHAB_HOME": str(workdir / "home"),
           "DJANGO_SETTINGS_MODULE": "sahab.settings", "SAHAB_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    setup = _setup(workdir / "home", provider_url)
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8"]
    provider = subprocess.Popen([*gunicorn, "--bind", f"127.0.0.1:{provider_port}",
                                 "--chdir", str(workdir), "provider:app"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = subprocess.Popen([*gunicorn, "--bind", f"127.0.0.1:{gateway_port}",
                                "sahab.wsgi:application"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    direct_url = f"{provider_url}/persons/08123456"
    gateway_url = (f"http://127.0.0.1:{gateway_port}/exchange/r1/{setup['service']}"
                   "/persons/08123456")
    headers = {"X-Road-Client": setup["client"], "Authorization": f"Bearer {setup['token']}"}
    try:
        _wait(direct_url)
        _wait(gateway_url, headers)
        _latencies(direct_url, {}, 100)  # warm both up
        _latencies(gateway_url, headers, 100)
        direct = _latencies(direct_url, {}, calls // 3)
        through = _latencies(gateway_url, headers, calls // 3)
        d50, g50 = percentile(direct, 50), percentile(through, 50)
        d95, g95 = percentile(direct, 95), percentile(through, 95)
        direct_rate = _throughput(direct_url, {}, calls)
        gateway_rate = _throughput(gateway_url, headers, calls)
    finally:
        for proc in (provider, gateway):
            proc.terminate()
            proc.wait(timeout=20)
    print(f"  latency p50: direct {d50:.2f} ms, gateway {g50:.2f} ms -> overhead "
          f"{g50 - d50:.2f} ms (goal < 2 ms); p95 {d95:.2f} / {g95:.2f} ms")
    report("gateway throughput (16 callers)", gateway_rate, "req/s", "direct", direct_rate)
    print("  goal: ratio >= 0.70")


if __name__ == "__main__":
    main()
