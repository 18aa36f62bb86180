"""Leader election on a coordination.k8s.io Lease: acquire, renew every `renew_interval`, step
down when a renewal could not be made within `renew_deadline` (before anyone may take over), hand
the Lease over on shutdown (holder cleared, so another node takes it at its next try). While this
node leads, `run` runs `lead()` (the cluster-scoped watches); losing the Lease cancels it."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import anyio

from tapio_collector_k8s.adapters.client import Api
from tapio_collector_k8s.domain.lease import LeaseRecord, Observed, decide, still_leader
from tapio_collector_k8s.errors import ApiUnavailableError, ConflictError, K8sCollectorError
from tapio_common.logging import get_logger

log = get_logger(__name__)


def micro_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_of(obj: dict[str, Any] | None) -> LeaseRecord | None:
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    return LeaseRecord(
        holder=spec.get("holderIdentity") or "",
        duration=float(spec.get("leaseDurationSeconds") or 15),
        renew_time=spec.get("renewTime") or "",
        transitions=int(spec.get("leaseTransitions") or 0),
        rv=str((obj.get("metadata") or {}).get("resourceVersion", "")),
    )


class Elector:
    def __init__(
        self,
        api: Api,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_interval: float = 5.0,
        renew_deadline: float = 10.0,
        on_leader: Callable[[bool], None] = lambda _: None,
    ) -> None:
        if not 0 < renew_interval < renew_deadline < lease_duration:
            raise K8sCollectorError("need 0 < renew interval < renew deadline < lease duration")
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self.lease_duration = lease_duration
        self.renew_interval = renew_interval
        self.renew_deadline = renew_deadline
        self.on_leader = on_leader
        self.leader = False
        self._seen: Observed | None = None
        self._renewed = 0.0  # monotonic time of the last successful acquire/renew
        self.rounds = 0  # Lease rounds made (read, and written when acquiring or renewing)
        self.acquired_at: float | None = None  # monotonic time of the last acquire or takeover
        # a takeover's: the expired holder's record as this node first saw it (its `at` is when)
        self.took_over: Observed | None = None
        self._obj: dict[str, Any] | None = None

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            await self._until_leader()
            async with anyio.create_task_group() as tg:
                tg.start_soon(lead)
                await self._hold()
                tg.cancel_scope.cancel()

    async def _until_leader(self) -> None:
        while not await self._try():  # noqa: ASYNC110 - polling the Lease on the API server
            await anyio.sleep(self.renew_interval)
        self._set(True)

    async def _hold(self) -> None:
        """Renews until a renewal fails past the deadline or someone else holds the Lease."""
        while True:
            await anyio.sleep(self.renew_interval)
            if not await self._try():
                self._set(False)
                return

    async def _try(self) -> bool:
        """One round: read the Lease and act on it. True when we hold it afterwards."""
        now = time.monotonic()
        try:
            obj = await anyio.to_thread.run_sync(self.api.read_lease, self.namespace, self.name)
            record = record_of(obj)
            decision = decide(record, self.identity, self._seen, now)
            self._seen = decision.observed
            self.rounds += 1
            if decision.action == "wait":
                self._obj = obj
                return False
            body = self._body(obj, record, decision.action)
            self._obj = await anyio.to_thread.run_sync(
                lambda: self.api.write_lease(self.namespace, body, create=decision.action == "create")
            )
            self._renewed = now
            if decision.action != "renew":
                self.acquired_at = now
                self.took_over = decision.observed if decision.action == "takeover" else None
                log.info("lease acquired", lease=f"{self.namespace}/{self.name}", identity=self.identity,
                         previous=record.holder if record else "")  # fmt: skip
            return True
        except ConflictError:
            self._obj = None  # someone else wrote first: re-read next round
            return False
        except ApiUnavailableError as e:
            log.debug("lease round failed", error=str(e))
            return self.leader and still_leader(self._renewed, time.monotonic(), self.renew_deadline)

    def _body(self, obj: dict[str, Any] | None, record: LeaseRecord | None, action: str) -> dict[str, Any]:
        now = micro_time(time.time())
        body: dict[str, Any] = obj or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                       "metadata": {"name": self.name, "namespace": self.namespace}}  # fmt: skip
        spec = body.setdefault("spec", {})
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = int(self.lease_duration)
        spec["renewTime"] = now
        if action in ("create", "takeover"):
            spec["acquireTime"] = now
            spec["leaseTransitions"] = (record.transitions + 1) if record else 0
        return body

    def _set(self, leader: bool) -> None:
        if leader != self.leader:
            self.leader = leader
            if not leader:
                log.warning(
                    "lease lost: stopping cluster-scoped watches", lease=f"{self.namespace}/{self.name}"
                )
            self.on_leader(leader)

    async def release(self) -> None:
        """Hands the Lease over (holder cleared) if we hold it; bounded, never raises."""
        if not self.leader or self._obj is None:
            return
        body = self._obj
        body.setdefault("spec", {})["holderIdentity"] = ""
        body["spec"]["renewTime"] = micro_time(time.time())
        self.leader = False
        self.on_leader(False)
        try:
            with anyio.move_on_after(3):
                await anyio.to_thread.run_sync(
                    lambda: self.api.write_lease(self.namespace, body, create=False)
                )
                log.info("lease handed over", lease=f"{self.namespace}/{self.name}")
        except (ConflictError, ApiUnavailableError) as e:
            log.warning("could not hand the lease over; it expires by itself", error=str(e))
