"""The correlation engine: events in (any order within the reorder slack), correlations out. Pure.

Time comes only from event timestamps. Events wait in a reorder buffer until the watermark
(latest event time seen minus `reorder_slack_ns`) passes them, then are processed in (time,
cause-before-effect, id) order, so any arrival order within the slack gives exactly the result of
sorted input, ids and revisions included.

What is published while an incident grows: every change of a publishable incident (medium or
high; network_degradation also low) is a new revision with the same id. When precedence changes
the type of an incident already published (repeated OOM kills, or a node_failure, whose chain
then reaches a Service becomes a cascading_failure), the incident keeps its id (fixed at its
first publication: hash of that type + scope + root cause) and the new revision carries the new
type, so no contradicting incident is left behind: consumers keyed by correlation id see one
incident whose latest revision is the truth. Offline replay keeps only final revisions.
potential_issue is decided by time only: when an error's window passes with no link.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from tapio.events.v1 import events_pb2
from tapio_common.model import Correlation, Event
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.handlers import Handler, Handlers
from tapio_correlator.engine.incident import CAUSE_RANK, OTHER_RANK
from tapio_correlator.engine.inputs import EventIn
from tapio_correlator.engine.nodes import LOSS_ACTIONS
from tapio_correlator.engine.routing import FAILURES
from tapio_correlator.engine.state import SEVERE
from tapio_correlator.engine.views import full_event, k8s_of, parsed, pod_parts
from tapio_jetstream.errors import DecodeError

_NS = 1_000_000_000
_END_OF_TIME = 2**63

# Event types a rule or the topology uses, with the actions that matter (empty: all of them).
_RELEVANT: dict[str, frozenset[str]] = {
    "pods": frozenset(),
    "nodes": frozenset(),
    "services": frozenset(),
    "endpoints": frozenset(),
    "deployments": frozenset(),
    "replicasets": frozenset(),
    "unit": frozenset({"failed"}),
    "oom_kill": frozenset(),
    "tcp_retransmit": frozenset(),
    "tcp_reset": frozenset(),
    "tcp_connect": frozenset(),
    "tcp_connect_latency": frozenset(),
    "network": frozenset({"high_latency"}),
    "interface": LOSS_ACTIONS,
}
# Among events with the same timestamp, causes go before their effects.
_RANK = CAUSE_RANK
_RETRANSMIT_RANK = _RANK.get("tcp_retransmit", OTHER_RANK)
_SEVERE_PB = frozenset(events_pb2.Severity.Value(s.value) for s in SEVERE)


class Engine(Handlers):
    """`process(event)` -> correlations created or updated; `advance`/`finish` for what time decides."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        super().__init__(config or EngineConfig())
        # Reorder buffer, a heap of (time, rank, id, arrival number, type, event).
        self.buffer: list[tuple[int, int, str, int, str, EventIn]] = []
        self.seq = 0
        self.max_time = -(2**62)  # latest event time seen
        self.next_sweep = 0
        self.slack = self.cfg.reorder_slack_ns
        self.accepted = 0
        self.lifecycle = 0
        self.ignored = 0
        self.late = 0
        self.duplicates = 0
        self._dispatch: dict[str, Handler] = self.handlers()

    # --- input ------------------------------------------------------------------------------

    def process(self, event: Event) -> list[Correlation]:
        """Takes one event; returns the correlations created or updated (each a new revision)."""
        typ = event.type
        if typ == "pods":
            action = event.action
            if action not in FAILURES:  # lifecycle: topology only, applied on arrival
                t = event.time
                self.topo.pod_event(t, event, action)
                if event.severity not in SEVERE:
                    return self._lifecycle(t)
                typ = "lone"  # e.g. a pod that cannot be scheduled, reported as an error
        actions = _RELEVANT.get(typ)
        if typ == "lone":
            pass
        elif actions is None or (actions and event.action not in actions):
            if event.severity not in SEVERE:
                self.ignored += 1  # used by no rule: it does not even move the watermark
                return []
            typ = "lone"  # a lone error: potential_issue if nothing explains it
        elif typ == "endpoints" and (event.k8s is None or event.k8s.ready_endpoints != 0):
            self.ignored += 1
            return []
        self._push(event.time, typ, event)
        buf = self.buffer
        watermark = self.max_time - self.slack
        return self._release(watermark) if buf[0][0] <= watermark else []

    def process_view(self, view: Any) -> list[Correlation]:
        """Same as process_pb() for an `EventView` (`engine.views`: context and k8s as wire bytes).

        Reads only what each event needs: a pod lifecycle event that repeats what the topology
        applied last for that pod is found by comparing bytes (nothing parsed), any other one has
        its context and k8s parsed alone; an event no rule uses is dropped on its scalars; a TCP
        retransmit is buffered as the view (its rule parses its context only while a
        network_degradation is open); anything else is parsed whole and goes to process_pb."""
        typ = view.type
        if typ == "pods":
            action = view.action
            if action not in FAILURES and view.severity not in _SEVERE_PB:
                ts = view.time
                t = ts.seconds * _NS + ts.nanos
                context = view.context
                k8s = view.k8s
                if action == "deleted":
                    if not self.topo.pod_gone(t, context, k8s):
                        self.topo.pod_event(t, pod_parts(view, context, k8s), action)
                elif not self.topo.pod_unchanged(t, context, k8s, action):
                    self.topo.pod_event(t, pod_parts(view, context, k8s), action, (context, k8s))
                # _lifecycle(t), inline: nearly half of the events come this way
                self.lifecycle += 1
                if t > self.max_time:
                    self.max_time = t
                    buf = self.buffer
                    if buf:
                        watermark = t - self.slack
                        if buf[0][0] <= watermark:
                            return self._release(watermark)
                return []
        elif typ == "tcp_retransmit":
            # buffered as the view (its rule parses it only when it reads it); _take, inline
            ts = view.time
            t = ts.seconds * _NS + ts.nanos
            self.accepted += 1
            if t > self.max_time:
                self.max_time = t
            elif t < self.clock:
                self.late += 1
            self.seq += 1
            buf = self.buffer
            heapq.heappush(buf, (t, _RETRANSMIT_RANK, view.id, self.seq, typ, view))
            watermark = self.max_time - self.slack
            return self._release(watermark) if buf[0][0] <= watermark else []
        else:
            actions = _RELEVANT.get(typ)
            if actions is None or (actions and view.action not in actions):
                if view.severity not in _SEVERE_PB:
                    self.ignored += 1
                    return []
            elif typ == "endpoints" and k8s_of(view).ready_endpoints != 0:
                self.ignored += 1
                return []
        return self.process_pb(full_event(view))

    def process_pb(self, message: events_pb2.Event) -> list[Correlation]:
        """Same as process() for a decoded protobuf Event, without building the model on hot paths."""
        typ = message.type
        if typ == "pods":
            action = message.action
            if action not in FAILURES:
                ts = message.time
                t = ts.seconds * _NS + ts.nanos
                self.topo.pod_event(t, message, action)
                if message.severity not in _SEVERE_PB:
                    return self._lifecycle(t)
                typ = "lone"
        actions = _RELEVANT.get(typ)
        if typ == "lone":
            pass
        elif actions is None or (actions and message.action not in actions):
            if message.severity not in _SEVERE_PB:
                self.ignored += 1
                return []
            typ = "lone"
        elif typ == "endpoints" and message.k8s.ready_endpoints != 0:
            self.ignored += 1
            return []
        ts = message.time
        return self._take(ts.seconds * _NS + ts.nanos, typ, message)

    def _take(self, t: int, typ: str, ev: Any) -> list[Correlation]:
        self._push(t, typ, ev)
        watermark = self.max_time - self.slack
        return self._release(watermark) if self.buffer[0][0] <= watermark else []

    def process_many(self, events: Iterable[Event]) -> list[Correlation]:
        """process() for a batch (e.g. one EventBatch): the same correlations, in the same order."""
        out: list[Correlation] = []
        for ev in events:
            out += self.process(ev)
        return out

    def process_pb_many(self, messages: Iterable[events_pb2.Event]) -> list[Correlation]:
        """process_pb() for a batch of decoded protobuf Events."""
        out: list[Correlation] = []
        for m in messages:
            out += self.process_pb(m)
        return out

    def _lifecycle(self, t: int) -> list[Correlation]:
        self.lifecycle += 1
        if t > self.max_time:
            self.max_time = t
            buf = self.buffer
            if buf:
                watermark = t - self.slack
                if buf[0][0] <= watermark:
                    return self._release(watermark)
        return []

    def _push(self, t: int, typ: str, ev: EventIn) -> None:
        """Buffers an event in (time, cause-before-effect rank, id) order: a heap, so arrivals far
        out of order (batches of one subject interleaving with others) cost O(log n), not O(n)."""
        self.accepted += 1
        if t > self.max_time:
            self.max_time = t
        elif t < self.clock:
            self.late += 1
        self.seq += 1
        heapq.heappush(self.buffer, (t, _RANK.get(typ, OTHER_RANK), ev.id, self.seq, typ, ev))

    def _release(self, watermark: int) -> list[Correlation]:
        out: list[Correlation] = []
        buf = self.buffer
        dispatch = self._dispatch
        pop = heapq.heappop
        seen = self.seen
        while buf and buf[0][0] <= watermark:
            t, _rank, event_id, _seq, typ, ev = pop(buf)
            if event_id in seen:
                self.duplicates += 1  # redelivered (or replayed after a restart): already taken
                continue
            if t >= self.next_sweep:
                self.sweep(t, out)
                self.next_sweep = t + self.cfg.sweep_interval_ns
            if t > self.clock:
                self.clock = t
            if typ == "tcp_retransmit" and not self.network:
                continue  # what on_retransmit does with no network_degradation open (a fifth of the mix)
            if dispatch[typ](t, ev, out):
                self.took(event_id, t)
        return out

    # --- time -------------------------------------------------------------------------------

    def advance(self, watermark_ns: int) -> list[Correlation]:
        """Declares that no event older than `watermark_ns` will come (e.g. wall clock minus slack).

        Processes buffered events up to it, closes windows it passed and reports what only time
        decides (potential_issue, incidents that never became publishable).
        """
        out = self._release(watermark_ns)
        if watermark_ns > self.max_time:
            self.max_time = watermark_ns
        if watermark_ns > self.clock:
            self.clock = watermark_ns
        self.sweep(watermark_ns, out)
        self.next_sweep = watermark_ns + self.cfg.sweep_interval_ns
        return out

    def finish(self) -> list[Correlation]:
        """End of input: processes every buffered event and closes every incident and window."""
        out = self._release(_END_OF_TIME)
        self.sweep(_END_OF_TIME, out)
        return out

    # --- inspection and persistence -------------------------------------------------------------

    def open_incidents(self) -> list[Correlation]:
        """The latest revision of every published incident that can still grow."""
        return self.open_correlations()

    def counters(self) -> dict[str, int]:
        """Counts since start: events received/ignored/late/buffered, correlations, incidents."""
        return {
            **self.stats,
            "events": self.accepted + self.lifecycle + self.ignored,
            "accepted": self.accepted,
            "lifecycle": self.lifecycle,
            "ignored": self.ignored,
            "late": self.late,
            "duplicates": self.duplicates,
            "buffered": len(self.buffer),
        }

    def state_size(self) -> dict[str, int]:
        sizes = super().state_size()
        sizes["buffered"] = len(self.buffer)
        return sizes

    def snapshot(self) -> bytes:
        """The whole engine state (topology, buffer, incidents, windows) as bytes, for restart
        safety (a JetStream KV bucket): a versioned msgpack object graph (`engine.snapshot`), not code."""
        from tapio_correlator.engine import snapshot  # the format scans the engine's own modules

        return snapshot.dumps(self)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """The engine a snapshot() was taken of; SnapshotRefused (a ContractError) for anything else:
        corrupt, foreign, written by another engine version, or newer. Runs no code from the data."""
        from tapio_correlator.engine import snapshot

        engine = snapshot.loads(data)
        if not isinstance(engine, cls):
            raise snapshot.SnapshotRefused("snapshot does not hold a correlator engine")
        return engine

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_dispatch"]
        # Buffered views are snapshotted as the Events they are (same keys: still a heap).
        buffer = []
        for entry in self.buffer:
            try:
                buffer.append((*entry[:5], parsed(entry[5])))
            except DecodeError:  # a malformed view: skipped (and counted) when it is released
                continue
        if len(buffer) != len(self.buffer):
            heapq.heapify(buffer)
        state["buffer"] = buffer
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._dispatch = self.handlers()
