"""``sahab serve`` heals: a killed child comes back; readiness and metrics tell operators."""

import os
import signal

import httpx
import pytest

from tests.ops.served import Served, alive, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def served():
    platform = Served()
    platform.prepare(demo=False)
    platform.start()
    yield platform
    platform.remove()


def test_every_child_killed_comes_back_within_seconds_and_the_others_keep_serving(served):
    children = served.children()
    assert {"web", "exchange-gateway", "worker", "smtp"} <= set(children)
    wait_for(lambda: all(served.answers(name) for name in children), 60, "every child to serve")
    for name, pid in children.items():
        os.kill(pid, signal.SIGKILL)
        new_pid = wait_for(lambda n=name, p=pid: (served.children()[n] != p
                                                  and served.children()[n]), 15,
                           f"{name} to be restarted")
        assert alive(new_pid)
        wait_for(lambda n=name: served.answers(n), 30, f"{name} to serve again")
        others = [other for other in children if other != name]
        assert all(alive(served.children()[other]) for other in others)
        assert served.proc.poll() is None
    log = served.log()
    for name, pid in children.items():
        assert f"{name} (pid {pid}) killed by SIGKILL" in log
        assert f"restarted {name} (pid " in log
    assert served.ready().status_code == 200, served.ready().json()


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(served):
    name = "worker"
    delays = []
    for _ in range(3):
        pid = served.children()[name]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: served.children()[name] != p, 20, "the worker to come back")
        line = [line for line in served.log().splitlines()
                if f"{name} (pid {pid}) killed by SIGKILL" in line][-1]
        delays.append(float(line.rsplit("restarting it in ", 1)[1].split(" s")[0]))
    assert delays == sorted(delays) and delays[-1] > delays[0]


def test_readiness_fails_while_dovecot_or_the_worker_is_stopped_and_recovers(served):
    wait_for(served.is_ready, 60, "readiness")
    frozen = []
    if "imap" in served.children():
        frozen.append(("imap", "imap"))
    frozen.append(("worker", "queue"))
    for child, check in frozen:
        group = served.children()[child]
        os.killpg(group, signal.SIGSTOP)  # stopped, not dead: the supervisor cannot help
        try:
            answer = wait_for(lambda: (r := served.ready()).status_code == 503 and r, 40,
                              f"/readyz to notice {child} is stopped")
            assert not answer.json()["checks"][check]["ok"]
        finally:
            os.killpg(group, signal.SIGCONT)
        wait_for(served.is_ready, 40, "readiness to come back")


def test_metrics_of_the_served_platform_show_every_family_and_add_up_processes(served):
    from tests.ops.test_monitoring import EVENT_FAMILIES, FAMILIES

    for _ in range(3):
        httpx.get(f"{served.url}/api/administrations")
    text = httpx.get(f"{served.url}/metrics").text
    for family in FAMILIES + EVENT_FAMILIES:
        base = family.removesuffix("_total")
        assert f"# TYPE {base} " in text or f"# TYPE {base}_total " in text, family
    assert text.count("# TYPE sahab_http_requests") == 1
    assert "sahab_http_requests_total{" in text and 'route="api/administrations"' in text
    assert "sahab_ledger_entries_total " in text
    assert "sahab_workers_live 1.0" in text
