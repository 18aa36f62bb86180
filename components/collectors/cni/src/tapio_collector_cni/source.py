"""The CNI collector's Source: samples every interface each interval (netlink, in a worker
thread), turns counter deltas over the thresholds into packet_loss/errors events with their veth
peer's container and pod, and reports CNI configuration changes.

Fed by the harness (`tapio_collector`): `run(out)` until cancelled. A sample that fails is
counted (`errors{kind="sample"}`), makes /readyz fail with the reason, and is retried next
interval; a namespace that cannot be entered at start is fatal (SourceError).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from tapio_collector import Output, SourceError
from tapio_collector_cni.adapters.cnidir import read_directory
from tapio_collector_cni.adapters.peers import PeerResolver
from tapio_collector_cni.adapters.sampler import Sample, Sampler
from tapio_collector_cni.domain.cniconf import CniConfig, change_action
from tapio_collector_cni.domain.events import Peer, config_event, finding_event
from tapio_collector_cni.domain.select import InterfaceFilter
from tapio_collector_cni.domain.thresholds import Finding, findings
from tapio_collector_cni.domain.tracker import Observation, Tracker
from tapio_collector_cni.errors import CniError, SamplingError
from tapio_collector_cni.metrics import CniMetrics
from tapio_collector_cni.settings import CniSettings
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_common.model import Event
from tapio_common.model.convert import event_to_proto

log = get_logger(__name__)
CONFIG_STATE_FILE = "cni-config.json"


class SourceStartError(CniError, SourceError):
    """The collector cannot start sampling (namespace missing, no netlink): fatal."""


class CniSource:
    """One per node. `cluster` is copied into every event's context when set."""

    def __init__(self, settings: CniSettings, cluster: str = "", sleep: Callable[[float], Any] | None = None):
        self.settings = settings
        self.cluster = cluster
        self.tracker = Tracker(settings.max_interfaces)
        self.filter = InterfaceFilter(settings.interfaces, settings.exclude)
        self.thresholds = settings.thresholds
        self._limiter = anyio.CapacityLimiter(1)  # one netlink call at a time
        self._sleep = sleep or anyio.sleep
        self.samples = 0
        self.last_sample_seconds = 0.0
        self._sampler: Sampler | None = None
        self._peers: PeerResolver | None = None
        self._own_metrics: tuple[ComponentMetrics, CniMetrics] | None = None

    async def open(self) -> None:
        """Opens the netlink socket in the configured namespace (SourceStartError if it cannot)."""
        if self._sampler is not None:
            return
        settings = self.settings
        try:
            sampler = await anyio.to_thread.run_sync(
                lambda: Sampler(settings.netns_path, settings.link_refresh), limiter=self._limiter
            )
        except SamplingError as e:
            raise SourceStartError(str(e)) from e
        self._sampler = sampler
        self._peers = PeerResolver(
            sampler.route.nsid_of, settings.proc, settings.container_runtime, settings.peer_retry
        )

    async def close(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(sampler.close, limiter=self._limiter)

    async def run(self, out: Output) -> None:
        await self.open()
        log.info(
            "sampling interfaces",
            netns=self.settings.netns_path or "(own)",
            interval_s=self.settings.interval,
            cni_conf_dir=self.settings.cni_conf_dir,
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._config_loop, out)
                await self._sample_loop(out)
        finally:
            await self.close()

    # --- interface counters ---------------------------------------------------------------

    async def _sample_loop(self, out: Output) -> None:
        interval = self.settings.interval
        next_at = time.monotonic()
        while True:
            await self.sample_once(out)
            next_at += interval
            now = time.monotonic()
            if next_at < now:  # a sample took longer than the interval: skip, never pile up
                missed = int((now - next_at) // interval) + 1
                self._metrics(out).overruns.inc(missed)
                log.warning("sampling fell behind; windows merged", missed=missed)
                next_at += missed * interval
            await self._sleep(next_at - now)

    async def sample_once(self, out: Output) -> list[Event]:
        """One sample: the events it produced (already emitted)."""
        sampler = self._sampler
        if sampler is None or self._peers is None:
            raise RuntimeError("CniSource.open() first")
        metrics = self._metrics(out)
        try:
            sample = await anyio.to_thread.run_sync(sampler.sample, limiter=self._limiter)
        except SamplingError as e:
            out.metrics.error("sample")
            out.set_ready(False, str(e))
            log.warning("sample failed; retrying next interval", error=str(e))
            return []
        self.samples += 1
        self.last_sample_seconds = sample.seconds
        metrics.sample_seconds.observe(sample.seconds)
        metrics.interfaces.set(len(sample.stats))
        obs = self.tracker.observe(sample.mono_ns, sample.wall_ns, sample.stats, sample.qdiscs, sample.names)
        self._account(out, obs)
        found = [f for w in obs.windows if self.filter.selected(w.name) for f in findings(w, self.thresholds)]
        if sample.links_refreshed:
            self._peers.forget(
                {link.peer_netnsid for link in sample.links.values() if link.peer_netnsid >= 0}
            )
        events = await self._events(out, sample, found) if found else []
        out.set_ready(True, f"{len(sample.stats)} interfaces sampled")
        if events:
            for f in found:
                metrics.findings.labels(action=f.action, direction=f.direction).inc()
            await out.emit_many([event_to_proto(e) for e in events])
        return events

    def _metrics(self, out: Output) -> CniMetrics:
        if self._own_metrics is None or self._own_metrics[0] is not out.metrics:
            self._own_metrics = (out.metrics, CniMetrics(out.metrics))
        return self._own_metrics[1]

    def _account(self, out: Output, obs: Observation) -> None:
        if obs.over_cap:
            out.metrics.drop("interfaces_over_cap", obs.over_cap)
        if obs.resets:
            self._metrics(out).resets.inc(obs.resets)
            log.info("interface counters went back (reset); new baseline", interfaces=obs.resets)

    async def _events(self, out: Output, sample: Sample, found: list[Finding]) -> list[Event]:
        assert self._peers is not None
        peers_of = self._peers
        nsids = {
            link.peer_netnsid
            for f in found
            if (link := sample.links.get(f.window.index)) is not None
            and link.kind == "veth"
            and link.peer_netnsid >= 0
        }
        peers: dict[int, Peer] = {}
        if nsids:
            try:
                peers = await anyio.to_thread.run_sync(peers_of.resolve, nsids, limiter=self._limiter)
            except OSError as e:
                out.metrics.error("peer_lookup")
                log.warning("veth peers could not be resolved", error=str(e))
            found_n = sum(1 for n in nsids if n in peers)
            self._metrics(out).peers.labels(result="found").inc(found_n)
            self._metrics(out).peers.labels(result="unknown").inc(len(nsids) - found_n)
        config = self._config
        plugin = config.active.plugin if config is not None and config.active is not None else ""
        events = []
        for f in found:
            link = sample.links.get(f.window.index)
            peer = peers.get(link.peer_netnsid) if link is not None and link.kind == "veth" else None
            role = config.role(f.window.name) if config is not None else ""
            events.append(finding_event(f, out.node_name, link, peer, self.cluster, plugin, role))
        return events

    # --- CNI configuration ------------------------------------------------------------------

    _config: CniConfig | None = None

    async def _config_loop(self, out: Output) -> None:
        state = Path(out.data_dir) / CONFIG_STATE_FILE
        previous = await anyio.to_thread.run_sync(_load_digest, state)
        while True:
            current = await anyio.to_thread.run_sync(read_directory, self.settings.cni_conf_dir)
            self._config = current
            action = change_action(None if previous is None else CniConfig(digest=previous), current)
            if action:
                event = config_event(
                    action,
                    previous or "",
                    current,
                    out.node_name,
                    time.time_ns(),
                    self.settings.cni_conf_dir,
                    self.cluster,
                )
                log.info("CNI configuration", action=action, summary=event.message)
                await out.emit_many([event_to_proto(event)])
                await anyio.to_thread.run_sync(_store_digest, state, current.digest)
                previous = current.digest
            elif previous is None:
                previous = current.digest
            await self._sleep(self.settings.cni_check_interval)


def _load_digest(path: Path) -> str | None:
    """The configuration digest last reported (survives restarts: a change made while the
    collector was down is reported as `changed`, an unchanged one is not re-reported)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("CNI config state unreadable; treating as first start", path=str(path), error=str(e))
        return None
    digest = doc.get("digest") if isinstance(doc, dict) else None
    return str(digest) if isinstance(digest, str) else None


def _store_digest(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"digest": digest}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
