"""Structured logs: one JSON object per line, with the request id that caused it.

A request id is taken from the client's ``X-Request-ID`` (when it looks like one) or
made up; it is returned in the response, set on every log line written while the
request runs, stored with each background task the request enqueues, and set again
while a worker runs that task. Ledger entries keep their fixed format: the log line that
records an append carries the request id and the entries' indexes, which ties them.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import uuid

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID = re.compile(r"[A-Za-z0-9._:-]{8,100}")
# LogRecord attributes that are not extra fields given by the caller
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "request"}


def new_request_id(offered: str | None = None) -> str:
    """The client's id when it is a sane token (a proxy's or a caller's), else a new one."""
    if offered and _VALID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current_request_id() -> str:
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (empty outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            # Django logs a response's error status after the middleware returned
            record.request_id = REQUEST_ID.get() or getattr(
                getattr(record, "request", None), "request_id", "")
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "process", "pid", "request_id", "message", …extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": os.environ.get("SAHAB_PROCESS", ""),
            "pid": record.process,
            "request_id": getattr(record, "request_id", "") or REQUEST_ID.get(),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# --- background tasks --------------------------------------------------------------------

TASK_KEY = "request_id"


def _store_on_task(sender, instance, **kwargs) -> None:
    """Keep the enqueuing request's id beside the task's arguments (not passed to it)."""
    request_id = REQUEST_ID.get()
    if request_id and instance._state.adding and isinstance(instance.args_kwargs, dict):
        instance.args_kwargs.setdefault(TASK_KEY, request_id)


_TASK_TOKEN: contextvars.ContextVar = contextvars.ContextVar("task_request_id", default=None)


def _task_started(sender, task_result, **kwargs) -> None:
    """In a worker, log under the id of the request that enqueued the task."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    backend = sender if isinstance(sender, type) else type(sender)
    if not issubclass(backend, DatabaseBackend):
        return  # run inline (tests): the request's own id is still current
    stored = (DBTaskResult.objects.filter(id=task_result.id)
              .values_list("args_kwargs", flat=True).first()) or {}
    request_id = stored.get(TASK_KEY, "") if isinstance(stored, dict) else ""
    _TASK_TOKEN.set(REQUEST_ID.set(request_id))


def _task_finished(sender, task_result, **kwargs) -> None:
    token = _TASK_TOKEN.get()
    if token is not None:
        _TASK_TOKEN.set(None)
        REQUEST_ID.set("")


def connect_task_signals() -> None:
    from django.db.models.signals import pre_save
    from django_tasks.signals import task_finished, task_started
    from django_tasks_db.models import DBTaskResult

    pre_save.connect(_store_on_task, sender=DBTaskResult, dispatch_uid="sahab-request-id")
    task_started.connect(_task_started, dispatch_uid="sahab-request-id")
    task_finished.connect(_task_finished, dispatch_uid="sahab-request-id")
