"""A thin Open Service Broker API v2.17 client (the platform side), on httpx.

It sends the version, originating-identity and request-identity headers, and turns every
answer into a ``Reply`` that says how the platform must read it — success, accepted
(poll), gone, rejected, or a failure that needs orphan mitigation — following the
spec's table of response codes. It keeps no state: the services decide what to do.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from django.conf import settings

from sahab.core import outbound
from sahab.core.outbound import UNREACHABLE
from sahab.ops import metrics

log = logging.getLogger(__name__)
API_VERSION = "2.17"
PLATFORM = "sahab"


class Outcome:
    DONE = "done"          # 200/201: the operation completed
    ACCEPTED = "accepted"  # 202: asynchronous, poll last_operation
    GONE = "gone"          # 410: the resource does not exist (deletion is complete)
    REJECTED = "rejected"  # other 4xx, 408 included: the request was refused, nothing made
    FAILED = "failed"      # 5xx, timeout, malformed 2xx: the broker may have made something


@dataclass
class Reply:
    outcome: str
    status: int | None
    body: dict = field(default_factory=dict)
    error: str = ""

    @property
    def description(self) -> str:
        if self.error:
            return self.error
        text = self.body.get("description") or self.body.get("error") or ""
        return f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"


def originating_identity(user_id: str, username: str) -> str:
    """``X-Broker-API-Originating-Identity``: the platform and base64(JSON of the user)."""
    value = json.dumps({"user_id": user_id, "username": username}, sort_keys=True)
    return f"{PLATFORM} {base64.b64encode(value.encode()).decode()}"


class Client:
    """One broker, reached at ``url`` with HTTP basic credentials."""

    def __init__(self, url: str, username: str, password: str, *,
                 timeout: float | None = None, transport: httpx.BaseTransport | None = None):
        self.base = url.rstrip("/") + "/v2"
        # Over the network the URL goes through the outbound policy and the connection to
        # the address checked then (sahab.core.outbound); a test transport is not network.
        self.pinned = transport is None
        self._target: outbound.Target | None = None
        self.http = httpx.Client(auth=(username, password), transport=transport,
                                 timeout=httpx.Timeout(timeout or settings.CLOUD_BROKER_TIMEOUT,
                                                       connect=outbound.CONNECT_TIMEOUT_SECONDS),
                                 follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------------

    def catalog(self) -> Reply:
        return self._call("GET", "/catalog", expect=("services",))

    def provision(self, instance_id: str, *, service_id: str, plan_id: str, context: dict,
                  parameters: dict, identity: str) -> Reply:
        body = {"service_id": service_id, "plan_id": plan_id, "context": context,
                "organization_guid": context.get("organization_guid", ""),
                "space_guid": context.get("space_guid", ""), "parameters": parameters}
        return self._call("PUT", f"/service_instances/{_id(instance_id)}", json_body=body,
                          params={"accepts_incomplete": "true"}, identity=identity)

    def update(self, instance_id: str, *, service_id: str, plan_id: str,
               previous_plan_id: str, context: dict, parameters: dict | None,
               identity: str) -> Reply:
        body = {"service_id": service_id, "plan_id": plan_id, "context": context,
                "previous_values": {"plan_id": previous_plan_id, "service_id": service_id}}
        if parameters is not None:
            body["parameters"] = parameters
        return self._call("PATCH", f"/service_instances/{_id(instance_id)}", json_body=body,
                          params={"accepts_incomplete": "true"}, identity=identity)

    def deprovision(self, instance_id: str, *, service_id: str, plan_id: str,
                    identity: str) -> Reply:
        return self._call("DELETE", f"/service_instances/{_id(instance_id)}",
                          params={"accepts_incomplete": "true", "service_id": service_id,
                                  "plan_id": plan_id}, identity=identity)

    def last_operation(self, instance_id: str, *, service_id: str, plan_id: str,
                       operation: str = "") -> Reply:
        params = {"service_id": service_id, "plan_id": plan_id}
        if operation:
            params["operation"] = operation
        return self._call("GET", f"/service_instances/{_id(instance_id)}/last_operation",
                          params=params, expect=("state",))

    def bind(self, instance_id: str, binding_id: str, *, service_id: str, plan_id: str,
             context: dict, parameters: dict, identity: str) -> Reply:
        body = {"service_id": service_id, "plan_id": plan_id, "context": context,
                "bind_resource": {}, "parameters": parameters}
        return self._call("PUT", _binding_path(instance_id, binding_id), json_body=body,
                          params={"accepts_incomplete": "true"}, identity=identity)

    def get_binding(self, instance_id: str, binding_id: str, *, service_id: str,
                    plan_id: str) -> Reply:
        return self._call("GET", _binding_path(instance_id, binding_id),
                          params={"service_id": service_id, "plan_id": plan_id})

    def binding_last_operation(self, instance_id: str, binding_id: str, *, service_id: str,
                               plan_id: str, operation: str = "") -> Reply:
        params = {"service_id": service_id, "plan_id": plan_id}
        if operation:
            params["operation"] = operation
        return self._call("GET", _binding_path(instance_id, binding_id) + "/last_operation",
                          params=params, expect=("state",))

    def unbind(self, instance_id: str, binding_id: str, *, service_id: str, plan_id: str,
               identity: str) -> Reply:
        return self._call("DELETE", _binding_path(instance_id, binding_id),
                          params={"accepts_incomplete": "true", "service_id": service_id,
                                  "plan_id": plan_id}, identity=identity)

    # --- plumbing ----------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json_body: dict | None = None,
              params: dict | None = None, identity: str = "",
              expect: tuple[str, ...] = ()) -> Reply:
        headers = {"X-Broker-API-Version": API_VERSION,
                   "X-Broker-API-Request-Identity": str(uuid.uuid4())}
        if identity:
            headers["X-Broker-API-Originating-Identity"] = identity
        operation = method + " " + _IDS.sub(r"\1/*", path)
        started = time.perf_counter()
        url, extensions = self.base + path, {}
        try:
            if self.pinned:
                if self._target is None:  # resolved once, then every call goes there
                    self._target = outbound.check_url(self.base)
                url = self._target.pinned_url() + path
                headers.update(outbound.http_client_options(self._target)["headers"])
                extensions = outbound.sni_extensions(self._target)
            response = self.http.request(method, url, json=json_body, params=params,
                                         headers=headers, extensions=extensions)
        except httpx.TimeoutException:
            metrics.observe_osb(operation, "timeout", time.perf_counter() - started)
            return Reply(Outcome.FAILED, None, error=UNREACHABLE)
        except (httpx.HTTPError, outbound.OutboundRefused) as exc:
            # the same words whatever happened: no port-scan oracle (docs/security.md)
            log.info("broker %s: %s", self.base, getattr(exc, "reason", "") or type(exc).__name__)
            metrics.observe_osb(operation, "unreachable", time.perf_counter() - started)
            return Reply(Outcome.FAILED, None, error=UNREACHABLE)
        reply = _interpret(response, expect)
        metrics.observe_osb(operation, reply.outcome, time.perf_counter() - started)
        return reply


_IDS = re.compile(r"(service_instances|service_bindings)/[^/]+")


def _id(value: str) -> str:
    return quote(value, safe="")


def _binding_path(instance_id: str, binding_id: str) -> str:
    return f"/service_instances/{_id(instance_id)}/service_bindings/{_id(binding_id)}"


def _interpret(response: httpx.Response, expect: tuple[str, ...]) -> Reply:
    status = response.status_code
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = None
    if status in (200, 201, 202):
        if body is None or any(key not in body for key in expect):
            return Reply(Outcome.FAILED, status, error=f"HTTP {status} with a malformed body")
        return Reply(Outcome.ACCEPTED if status == 202 else Outcome.DONE, status, body)
    if status == 410:
        return Reply(Outcome.GONE, status, body or {})
    if 400 <= status < 500:
        return Reply(Outcome.REJECTED, status, body or {})
    # 5xx, and any other 2xx: a failure the broker may have acted on
    return Reply(Outcome.FAILED, status, body or {})
