"""One message's events through the pipeline, on their bytes: learn, enrich, decide, group by subject.

Fed by the processor with the (view, bytes) items of a message (`views.decode_routed`, after the
runtime's dedup window). For every event: a pod event teaches the pod index (`learn_view`), any
other event gets its pod's context (`PodIndex.enrichment`, cached by its serialized context), the
compiled rules (`plans.Router`) decide; the event's bytes (behind its pod's context field when
enriched; parsed and serialized again only when redacted) go to the subjects of its destinations.
Pure: the counts come back in `Routed` for the caller's metrics. `reference_route` is the same on
whole messages (learn, enrich, decide, serialize): the specification the tests hold this to.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from tapio.events.v1 import events_pb2
from tapio_pipeline.enrich import SOURCE_K8S, Entry, PodIndex
from tapio_pipeline.plans import ENRICH, LEARN_POD, SOURCE_TOKENS, Outcome, Router
from tapio_pipeline.rules import REDACTED, RuleSet, decide
from tapio_pipeline.views import RouteItem


@attrs.define
class Routed:
    """What one message became: event bytes by output subject, and what to count."""

    groups: dict[str, list[bytes]]
    outcomes: dict[Outcome, int]  # events per outcome (destinations, or why dropped)
    enriched: int = 0
    redacted: int = 0  # attribute values replaced
    unrouted: Any = None  # the view of one event no rule routed (for the log), if any

    def routed(self) -> dict[str, int]:
        """Events per destination."""
        out: dict[str, int] = {}
        for outcome, n in self.outcomes.items():
            for dest in outcome.destinations:
                out[dest] = out.get(dest, 0) + n
        return out

    def dropped(self) -> dict[str, int]:
        """Events per drop reason (rule, sampled, unrouted)."""
        out: dict[str, int] = {}
        for outcome, n in self.outcomes.items():
            if not outcome.destinations:
                out[outcome.dropped] = out.get(outcome.dropped, 0) + n
        return out


def route(router: Router, index: PodIndex, items: Sequence[RouteItem]) -> Routed:
    groups: defaultdict[str, list[bytes]] = defaultdict(list)
    key_of, plan_of, plans = router.key_of, router.plan, router.plans
    learn, enrichment = index.learn_view, index.enrichment
    outcomes: list[Outcome] = []
    tally = outcomes.append
    enriched = redacted = 0
    unrouted = None
    for view, raw in items:
        key = key_of(view)
        plan = plans.get(key) or plan_of(key)
        entry: Entry | None = None
        if plan.learn == ENRICH:
            entry = enrichment(view.context)
        elif plan.learn == LEARN_POD:
            learn(view)  # k8s events carry their own context
        out = plan.constant
        if out is None:
            quick = plan.redact_only
            if quick is not None:
                out = quick[0]
                keys = tuple(k for k, b in quick[1] if b in raw)
            else:
                out, keys = plan.run(
                    view, raw, _context_of(index, view, entry) if plan.needs_context else None
                )
            if keys and out.subjects:
                raw, n = _redacted(raw, entry, keys)
                redacted += n
                entry = None  # its context is in the rewritten bytes
        tally(out)
        subjects = out.subjects
        if subjects:
            if entry is not None and entry.prefix:
                raw = entry.prefix + raw
                enriched += 1
            for subject in subjects:
                groups[subject].append(raw)
        elif out.dropped == "unrouted":
            unrouted = view
    return Routed(dict(groups), dict(Counter(outcomes)), enriched, redacted, unrouted)


def _context_of(index: PodIndex, view: Any, entry: Entry | None) -> Callable[[], events_pb2.Context]:
    """The event's context for rules on namespace, node and labels (enriched), when asked."""
    if entry is not None:
        return lambda: entry.context
    return lambda: index.own_context(view.context)


def _redacted(raw: bytes, entry: Entry | None, keys: tuple[str, ...]) -> tuple[bytes, int]:
    """The event parsed whole (with its pod's context), the attributes replaced, serialized again."""
    event = events_pb2.Event.FromString(entry.prefix + raw if entry is not None else raw)
    attributes = event.attributes
    n = 0
    for key in keys:
        if key in attributes and attributes[key] != REDACTED:
            attributes[key] = REDACTED
            n += 1
    return event.SerializeToString(), n


def reference_route(
    rules: RuleSet, index: PodIndex, events: Sequence[events_pb2.Event], subject: Callable[[str, str], str]
) -> dict[str, list[events_pb2.Event]]:
    """The same decisions on whole messages, one event at a time (slow; tests compare with it).
    The events are changed in place (enriched, redacted)."""
    out: dict[str, list[events_pb2.Event]] = {}
    for event in events:
        index.learn(event)
        if event.source != SOURCE_K8S:
            index.enrich(event)
        decision = decide(rules, event)
        for dest in decision.destinations:
            out.setdefault(subject(SOURCE_TOKENS.get(event.source, "unknown"), dest), []).append(event)
    return out
