"""A provider that hangs holds only its own calls: the gateway relays on an event loop, and
each service has its own concurrency limit and timeout."""

from __future__ import annotations

import concurrent.futures

import httpx

from sahab.exchange import services
from sahab.exchange.models import Message


def _second_service(intranet):
    """The same ministry's birth-certificate service, quick and granted to the client."""
    actes = services.register_service(
        actor=intranet.it_interior, subsystem=intranet.service.subsystem, code="actes",
        name="Actes de naissance", base_url=intranet.service.base_url + "/actes", owner="DSI",
        timeout_seconds=10)
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.client,
                                   service=actes, legal_basis="Loi", purpose="Actes")
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True,
                          rate_per_minute=10_000)
    return actes


def test_one_hanging_provider_does_not_slow_64_calls_to_another_service(intranet):
    import asyncio

    import aiohttp

    services.update_service(actor=intranet.it_interior, service=intranet.service,
                            timeout_seconds=30)
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="rate")
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.client,
                                   service=intranet.service, legal_basis="Loi", purpose="x")
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True,
                          rate_per_minute=10_000)
    actes = _second_service(intranet)
    quick_url = f"{intranet.gateway.url}/r1/{actes.identifier}/naissances/1"
    hung_url = f"{intranet.base}/hang-long"

    async def scenario():
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, headers=intranet.headers(),
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            async def get(url):
                async with http.get(url) as response:
                    await response.read()
                    return response.status

            hung = [asyncio.ensure_future(get(hung_url)) for _ in range(24)]
            await asyncio.sleep(0.5)  # the provider holds them now
            quick = await asyncio.gather(*(get(quick_url) for _ in range(64)))
            still_hanging = sum(not h.done() for h in hung)
            return quick, still_hanging, await asyncio.gather(*hung)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a client loop of its own
        quick, still_hanging, hung = pool.submit(asyncio.run, scenario()).result()
    assert quick == [200] * 64
    assert still_hanging == 24  # all 64 were answered while the 24 still hung
    assert hung == [200] * 24
    durations = Message.objects.filter(service=actes.identifier).values_list("duration_ms",
                                                                             flat=True)
    hung_durations = Message.objects.filter(service=intranet.service.identifier).values_list(
        "duration_ms", flat=True)
    assert len(durations) == 64 and max(durations) < min(hung_durations)


def test_a_service_at_its_limit_answers_busy_and_the_others_go_on(intranet):
    import time

    from tests.exchange.conftest import Provider

    services.update_service(actor=intranet.it_interior, service=intranet.service,
                            max_concurrency=2, timeout_seconds=10)
    actes = _second_service(intranet)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        hung = [pool.submit(intranet.call, "hang") for _ in range(2)]
        deadline = time.monotonic() + 10
        while len(Provider.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # both places are taken by calls the provider holds
        services.update_service(actor=intranet.it_interior, service=intranet.service,
                                timeout_seconds=1)
        waiting = intranet.call("quick")
        quick = httpx.get(f"{intranet.gateway.url}/r1/{actes.identifier}/x",
                          headers=intranet.headers(), timeout=10)
        assert not any(f.done() for f in hung)
        assert [f.result().status_code for f in hung] == [200, 200]
    assert waiting.status_code == 503
    assert waiting.headers["X-Road-Error"] == "Server.ServerProxy.ServiceBusy"
    assert quick.status_code == 200
    assert Message.objects.get(status=503).error == "Server.ServerProxy.ServiceBusy"
