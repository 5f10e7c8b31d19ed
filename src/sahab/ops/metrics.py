"""Prometheus metrics of every pillar, served on ``/metrics``.

Two kinds:

* events counted where they happen (HTTP requests, OSB calls, SMTP replies, gateway
  calls). ``sahab serve`` runs many processes (gunicorn workers, SMTP processes, the
  worker), so these use prometheus-client's multiprocess mode: each process writes its
  samples under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up. Counters of a
  process that died stay in the sum, so they never go backwards.
* states read from the database when Prometheus scrapes (bids, orders, instances, the
  mail queue, the ledger, witnesses, the task queue): right whatever process changed them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter("sahab_http_requests", "HTTP requests answered, by route and status",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("sahab_http_request_duration_seconds",
                         "Time to answer an HTTP request, by route", ["route", "method"],
                         buckets=LATENCY_BUCKETS)
OSB_CALLS = Counter("sahab_cloud_osb_calls", "Open Service Broker calls to providers' brokers, "
                    "by operation and outcome", ["operation", "outcome"])
OSB_LATENCY = Histogram("sahab_cloud_osb_call_duration_seconds",
                        "Time a provider's broker took to answer, by operation", ["operation"],
                        buckets=LATENCY_BUCKETS)
MAIL_SMTP = Counter("sahab_mail_smtp_messages", "Messages offered over SMTP, by listener and "
                    "outcome (accepted, refused: 5xx, deferred: 4xx)", ["listener", "outcome"])
GATEWAY_CALLS = Counter("sahab_exchange_gateway_calls", "Calls relayed by the exchange gateway, "
                        "by HTTP status", ["status"])
GATEWAY_LATENCY = Histogram("sahab_exchange_provider_duration_seconds",
                            "Time from the gateway's request to the end of the provider's "
                            "answer, by service", ["service"], buckets=LATENCY_BUCKETS)


# --- recording (called by the pillars) ----------------------------------------------------

def observe_osb(operation: str, outcome: str, seconds: float) -> None:
    OSB_CALLS.labels(operation, outcome).inc()
    OSB_LATENCY.labels(operation).observe(seconds)


def count_smtp(listener: str, reply: str) -> None:
    """Count the final reply to a message (MAIL, RCPT refusals or the DATA answer)."""
    outcome = {"2": "accepted", "4": "deferred"}.get(reply[:1], "refused")
    MAIL_SMTP.labels(listener, outcome).inc()


def observe_gateway(service: str, status: int, seconds: float) -> None:
    GATEWAY_CALLS.labels(str(status)).inc()
    if service:
        GATEWAY_LATENCY.labels(service).observe(seconds)


# --- the processes of ``sahab serve`` ---------------------------------------------------

def prepare_multiprocess_dir(env: dict) -> dict:
    """Point the children at an emptied metrics folder; returns their environment."""
    from django.conf import settings

    folder = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or settings.SAHAB_HOME / "run" / "metrics")
    shutil.rmtree(folder, ignore_errors=True)  # samples of a previous run are not ours
    folder.mkdir(parents=True, mode=0o700)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(folder)}


# --- states read from the database ------------------------------------------------------

def _model(label: str):
    from django.apps import apps

    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _by(model_label: str, field: str) -> dict[str, int]:
    from django.db.models import Count

    model = _model(model_label)
    if model is None:
        return {}
    rows = model.objects.order_by().values_list(field).annotate(n=Count("pk"))
    return {str(value): n for value, n in rows}


def _gauge(name: str, doc: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([value], n)
    return family


class DatabaseCollector:
    """Every pillar's state, counted in the database at scrape time."""

    def collect(self):
        from django.utils import timezone

        now = timezone.now()
        bids = _by("procurement.Bid", "status")
        yield _gauge("sahab_procurement_bids", "Bids by status", "status", bids)
        submitted = CounterMetricFamily("sahab_procurement_bids_submitted",
                                        "Bids ever submitted (every bid row was submitted once)")
        submitted.add_metric([], sum(bids.values()))
        yield submitted
        opened = CounterMetricFamily("sahab_procurement_bids_opened", "Bids opened")
        opened.add_metric([], bids.get("opened", 0) + bids.get("tampered", 0))
        yield opened
        yield _gauge("sahab_cloud_orders", "Cloud orders by status", "status",
                     _by("cloud.Order", "status"))
        yield _gauge("sahab_cloud_instances", "Service instances by state", "state",
                     _by("cloud.Instance", "state"))
        yield from self._cloud_retries(now)
        yield from self._mail_queue()
        yield from self._exchange(now)
        yield from self._ledger(now)
        yield from self._tasks(now)
        from sahab.ops import heartbeats

        workers = GaugeMetricFamily("sahab_workers_live", "Workers seen alive in the last "
                                    f"{heartbeats.WORKER_SILENCE_SECONDS} s")
        workers.add_metric([], heartbeats.live_workers(now))
        yield workers

    def _cloud_retries(self, now):
        instance = _model("cloud.Instance")
        if instance is None:
            return
        pending = instance.objects.exclude(operation="")
        waiting = GaugeMetricFamily("sahab_cloud_broker_work_pending",
                                    "Instances with a broker call to make or poll, by whether "
                                    "a retry is scheduled", labels=["scheduled"])
        waiting.add_metric(["yes"], pending.filter(next_attempt_at__isnull=False).count())
        waiting.add_metric(["no"], pending.filter(next_attempt_at__isnull=True).count())
        yield waiting
        overdue = pending.filter(next_attempt_at__lt=now - dt.timedelta(minutes=5)).count()
        late = GaugeMetricFamily("sahab_cloud_broker_work_overdue",
                                 "Instances whose broker call is more than 5 minutes overdue")
        late.add_metric([], overdue)
        yield late

    def _mail_queue(self):
        outbound = _model("mail.OutboundMessage")
        if outbound is None:
            return
        family = GaugeMetricFamily("sahab_mail_outbound", "Mail for other domains: queued "
                                   "(never tried), deferred (tried and waiting), sent, bounced",
                                   labels=["state"])
        queued = outbound.objects.filter(state="queued")
        family.add_metric(["queued"], queued.filter(attempts=0).count())
        family.add_metric(["deferred"], queued.filter(attempts__gt=0).count())
        for state in ("sent", "bounced"):
            family.add_metric([state], outbound.objects.filter(state=state).count())
        yield family

    def _exchange(self, now):
        message = _model("exchange.Message")
        if message is None:
            return
        from django.db.models import Count

        recent = GaugeMetricFamily("sahab_exchange_messages_recent", "Exchanges through the "
                                   "gateway in the last 5 minutes, by HTTP status (message log)",
                                   labels=["status"])
        rows = (message.objects.filter(started_at__gte=now - dt.timedelta(minutes=5))
                .order_by().values_list("status").annotate(n=Count("pk")))
        for status, n in sorted(rows):
            recent.add_metric([str(status)], n)
        yield recent
        backlog = GaugeMetricFamily("sahab_exchange_messages_unledgered",
                                    "Logged exchanges not yet in the ledger")
        backlog.add_metric([], message.objects.filter(ledger_index__isnull=True).count())
        yield backlog

    def _ledger(self, now):
        state = _model("ledger.LogState")
        checkpoint_model = _model("ledger.Checkpoint")
        witness_model = _model("ledger.Witness")
        if state is None or checkpoint_model is None:
            return
        size = state.objects.filter(pk=1).values_list("size", flat=True).first() or 0
        entries = CounterMetricFamily("sahab_ledger_entries", "Entries in the ledger")
        entries.add_metric([], size)
        yield entries
        latest = checkpoint_model.objects.order_by("-size").values("size", "created_at").first()
        signed = GaugeMetricFamily("sahab_ledger_checkpoint_size",
                                   "Size of the latest signed checkpoint")
        signed.add_metric([], latest["size"] if latest else 0)
        yield signed
        unsigned = GaugeMetricFamily("sahab_ledger_unsigned_entries",
                                     "Entries not yet covered by a signed checkpoint")
        unsigned.add_metric([], size - (latest["size"] if latest else 0))
        yield unsigned
        age = GaugeMetricFamily("sahab_ledger_checkpoint_age_seconds",
                                "Age of the latest signed checkpoint")
        age.add_metric([], (now - latest["created_at"]).total_seconds() if latest else 0)
        yield age
        if witness_model is None:
            return
        lag = GaugeMetricFamily("sahab_ledger_witness_lag_entries", "Entries of the latest "
                                "checkpoint that a witness has not cosigned yet",
                                labels=["witness"])
        for name, last_size in witness_model.objects.filter(active=True).values_list(
                "name", "last_size"):
            lag.add_metric([name], max(0, (latest["size"] if latest else 0) - last_size))
        yield lag

    def _tasks(self, now):
        result = _model("django_tasks_database.DBTaskResult")
        if result is None:
            return
        yield _gauge("sahab_tasks", "Background tasks by status", "status",
                     _by("django_tasks_database.DBTaskResult", "status"))
        ready = result.objects.filter(status="READY", run_after__lte=now)
        depth = GaugeMetricFamily("sahab_task_queue_depth", "Tasks ready to run now")
        depth.add_metric([], ready.count())
        yield depth
        oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
        age = GaugeMetricFamily("sahab_task_queue_oldest_age_seconds",
                                "How long the oldest ready task has waited")
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0)
        yield age


# --- exposition -------------------------------------------------------------------------

def exposition() -> tuple[bytes, str]:
    """The metrics text: this process's or all processes' events, and the database states."""
    states = CollectorRegistry(auto_describe=False)
    states.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        events = CollectorRegistry()
        collector = multiprocess.MultiProcessCollector(events)
        # families no process has counted yet are still announced (HELP and TYPE)
        states.register(_Announced({family.name.removesuffix("_total")
                                    for family in collector.collect()}))
    else:
        events = REGISTRY
    return generate_latest(events) + generate_latest(states), CONTENT_TYPE_LATEST


EVENTS = (HTTP_REQUESTS, HTTP_LATENCY, OSB_CALLS, OSB_LATENCY, MAIL_SMTP, GATEWAY_CALLS,
          GATEWAY_LATENCY)


class _Announced:
    def __init__(self, present: set[str]):
        self.present = present

    def collect(self):
        for metric in EVENTS:
            for family in metric.describe():
                if family.name not in self.present:
                    yield family
