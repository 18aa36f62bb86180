"""One message's events through the pipeline, on their bytes: learn, enrich, decide, group by subject.

Fed by the processor with the views and bytes of a message (`views.decode_message`) while the
runtime decodes it, before its dedup window (the ids come back in `Routed.ids` for it), in one
pass. For every event: a pod event teaches the pod index (`learn_view`), any other event gets its
pod's context (`PodIndex.enrichment`, cached by its serialized context), the compiled rules
(`plans.Router`) decide; the event's bytes (behind its pod's context field when enriched; parsed
and serialized again only when redacted) go to the subjects of its destinations.
Pure: the counts come back in `Routed` for the caller's metrics. `reference_route` is the same on
whole messages (learn, enrich, decide, serialize): the specification the tests hold this to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from tapio.events.v1 import events_pb2
from tapio_pipeline.enrich import SOURCE_K8S, Entry, PodIndex
from tapio_pipeline.plans import ENRICH, LEARN_POD, MAX_CONTEXT_OUTCOMES, SOURCE_TOKENS, Outcome, Router
from tapio_pipeline.rules import REDACTED, RuleSet, decide


@attrs.define
class Routed:
    """What one message became: event bytes by output subject, the ids of the events taken (in
    order), and what to count."""

    groups: dict[str, list[bytes]]
    outcomes: dict[Outcome, int]  # events per outcome (destinations, or why dropped)
    ids: list[str] = attrs.Factory(list)
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


def route(
    router: Router,
    index: PodIndex,
    views: Sequence[Any],
    raws: Sequence[bytes],
    only: set[str] | None = None,
) -> Routed:
    """The events of one message (`views.decode_message`), in order; with `only`, just the first
    event of each of those ids (the others were handled before: the runtime's dedup window).
    DecodeError when an event's context is not a Context (each distinct context is parsed once)."""
    groups: dict[str, list[bytes]] = {}
    ids: list[str] = []
    outcomes: list[Outcome] = []
    add_id, tally = ids.append, outcomes.append
    key_of, plan_of, plans = router.key_of, router.plan, router.plans
    learn, enrichment, own = index.learn_view, index.enrichment, index.own_context
    entries, by_raw, touch, owners = index.entries, index.by_raw, index.pods.move_to_end, index.pod_containers
    targets: dict[Outcome, tuple[list[bytes], ...]] = {}  # an outcome's subject lists in `groups`
    enriched = redacted = 0
    unrouted = None
    keys: tuple[str, ...]
    for view, raw in zip(views, raws, strict=True):
        event_id = view.id
        if only is not None:
            if event_id not in only:
                continue
            only.discard(event_id)
        add_id(event_id)
        key = key_of(view)
        plan = plans.get(key) or plan_of(key)
        learning = plan.learn
        entry: Entry | None = None
        if learning == ENRICH:
            context = view.context
            entry = entries.get(context)
            # A live cache hit, inline (`PodIndex.enrichment` has the rule and makes or checks
            # every other case).
            if entry is None or not entry.live or entry.remaps != index.remaps:
                entry = enrichment(context)
        elif learning == LEARN_POD:
            # A pod event whose context was learnt as it is, inline (`PodIndex.learn_view` has the
            # rule and does every other case): the pod seen again, its container ids owned.
            uid = by_raw.get(view.context)
            if uid is None:
                learn(view)  # k8s events carry their own context
            else:
                touch(uid)
                cids = view.k8s.container_ids
                if cids:
                    owned = owners.get(uid)
                    if owned is None or not owned.issuperset(cids):
                        learn(view)
        else:
            own(view.context)  # parsed once per distinct context: a bad one is undecodable
        out = plan.constant
        if out is None:
            quick = plan.redact_only
            if quick is not None:
                out, keys = quick[0], ()
                for key_name, key_bytes in quick[1]:
                    if key_bytes in raw:  # present on the wire: checked on the parsed event
                        keys += (key_name,)
            else:
                cache = plan.by_context
                if cache is None:
                    out, keys = plan.run(
                        view, raw, _context_of(index, view, entry) if plan.needs_context else None
                    )
                else:  # one outcome per context: the rules run once for it
                    known = cache.get(entry if entry is not None else view.context)
                    if known is None:
                        known, _ = plan.run(view, raw, _context_of(index, view, entry))
                        if len(cache) >= MAX_CONTEXT_OUTCOMES:
                            cache.clear()
                        cache[entry if entry is not None else view.context] = known
                    out, keys = known, ()
            if keys and out.subjects:
                raw, n = _redacted(raw, entry, keys)
                redacted += n
                entry = None  # its context is in the rewritten bytes
        tally(out)
        lists = targets.get(out)
        if lists is None:
            lists = targets[out] = tuple(groups.setdefault(subject, []) for subject in out.subjects)
        if lists:
            if entry is not None and entry.prefix:
                raw = entry.prefix + raw
                enriched += 1
            for into in lists:
                into.append(raw)
        elif out.dropped == "unrouted":
            unrouted = view
    return Routed(groups, dict(Counter(outcomes)), ids, enriched, redacted, unrouted)


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
