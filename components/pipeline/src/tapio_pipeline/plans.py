"""The rule set compiled to one plan per event key, so most events are decided by one dict lookup.

Fed by the processor with each event's key: its source, type, and the action and severity when a
rule tests them (`Router.key_fields`). A plan is made the first time a key is seen: every rule's
conditions on those fields are resolved then, and the rules that hold for the key become its
steps. The leading steps that test nothing per event (no namespace, node or labels condition, no
sampling, no redaction) are applied right away; when no step is left the plan's outcome is a
constant, else `Plan.run` applies the remaining steps to the event with the same semantics as
`rules.decide` (which stays the reference, on whole messages). Redaction is only decided here (the
keys present); the processor rewrites the event. Pure; plans are cached (bounded).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import attrs

from tapio.events.v1 import events_pb2
from tapio_pipeline.rules import FIELDS, Condition, Rule, RuleSet, sampler

STATIC = ("source", "type", "action", "severity")
"""Fields of the event itself: resolved when a plan is made."""
SOURCE_TOKENS = {
    events_pb2.SOURCE_K8S: "k8s",
    events_pb2.SOURCE_SYSTEMD: "systemd",
    events_pb2.SOURCE_EBPF: "ebpf",
    events_pb2.SOURCE_CNI: "cni",
}
LEARN_POD, OWN, ENRICH = 1, 2, 3  # Plan.learn: a pod event; another k8s event; any other source
MAX_PLANS = 10_000  # distinct keys kept; beyond, the cache starts again (keys are few in practice)
MAX_CONTEXT_OUTCOMES = 10_000  # outcomes by context kept per plan; beyond, that cache starts again

Context = events_pb2.Context


@attrs.frozen(eq=False)  # compared and hashed by identity: the processor counts events per outcome
class Outcome:
    """Where an event goes (subjects in destination order), or why it goes nowhere."""

    destinations: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    dropped: str = ""  # "rule", "sampled" or "unrouted" when there is no destination
    rule: str = ""  # the rule that dropped it


@attrs.frozen
class Step:
    """A rule whose static conditions hold for the plan's key: what is left to check per event."""

    rule: Rule
    tests: tuple[tuple[Callable[[Context], Any], Callable[[Any], bool]], ...]  # context field, test
    keep: Callable[[str], bool] | None  # the rule's sampling, by event id
    redact: tuple[tuple[str, bytes], ...]  # attribute keys, and their bytes (a cheap test on the wire)
    dropped: Outcome  # the outcome when this rule drops the event (or samples it out)

    @property
    def static(self) -> bool:
        return not (self.tests or self.keep or self.redact)


class Plan:
    """What the rules do to the events of one key. `constant` is the outcome when no step is left."""

    __slots__ = (
        "_outcomes",
        "_routes",
        "by_context",
        "constant",
        "default",
        "learn",
        "needs_context",
        "redact_only",
        "steps",
        "subject_of",
    )

    def __init__(
        self,
        steps: tuple[Step, ...],
        routes: tuple[str, ...],
        default: tuple[str, ...],
        subject_of: Callable[[str], str],
    ) -> None:
        self.steps = steps
        self._routes = routes  # destinations the static leading steps gave
        self.default = default
        self.subject_of = subject_of
        self._outcomes: dict[tuple[str, ...], Outcome] = {}
        self.needs_context = any(s.tests for s in steps)
        # Steps that test the context and neither sample nor redact: the outcome is one per
        # context, cached by it (the enrichment entry, or a k8s event's own serialized context).
        self.by_context: dict[Any, Outcome] | None = (
            {} if self.needs_context and all(s.keep is None and not s.redact for s in steps) else None
        )
        self.constant: Outcome | None = None if steps else self.routed(routes)
        self.learn = 0  # what the event teaches or needs: set by the router (LEARN_POD, OWN, ENRICH)
        # Steps that only redact: the outcome is known, the keys are those found on the wire.
        self.redact_only: tuple[Outcome, tuple[tuple[str, bytes], ...]] | None = None
        if steps and all(not s.tests and s.keep is None and not s.rule.drop for s in steps):
            final = next((i for i, s in enumerate(steps) if s.rule.final), len(steps) - 1)
            kept = steps[: final + 1]
            for step in kept:
                if step.rule.route:
                    routes = routes + tuple(d for d in step.rule.route if d not in routes)
            keys = tuple(dict.fromkeys(k for step in kept for k in step.redact))
            self.redact_only = (self.routed(routes), keys)

    def routed(self, routes: tuple[str, ...]) -> Outcome:
        """The outcome of these destinations (the file's default when none), made once."""
        out = self._outcomes.get(routes)
        if out is None:
            dests = routes or self.default
            out = Outcome(dests, tuple(self.subject_of(d) for d in dests), "" if dests else "unrouted")
            self._outcomes[routes] = out
        return out

    def run(
        self, view: Any, raw: bytes, context: Callable[[], Context] | None
    ) -> tuple[Outcome, tuple[str, ...]]:
        """The steps on one event (its view and bytes): its outcome and the attribute keys to
        redact (present on the wire; the processor checks each on the parsed event). `context()`
        gives the enriched context; it is asked for only when a step tests it (`needs_context`)."""
        routes = self._routes
        redact: tuple[str, ...] = ()
        ctx: Context | None = None
        for step in self.steps:
            if step.tests:
                if ctx is None:
                    assert context is not None, "a plan that tests the context is run with it"
                    ctx = context()
                if not all(test(get(ctx)) for get, test in step.tests):
                    continue
            rule = step.rule
            if rule.drop or (step.keep is not None and not step.keep(view.id)):
                return step.dropped, redact
            for key, key_bytes in step.redact:
                if key_bytes in raw and key not in redact:
                    redact += (key,)
            if rule.route:
                routes = (
                    rule.route if not routes else routes + tuple(d for d in rule.route if d not in routes)
                )
            if rule.final:
                break
        return self.routed(routes), redact


class Router:
    """Plans of a rule set by key; `key_of(view)` gives an event's key (a C-level attribute getter)."""

    def __init__(self, rules: RuleSet, subject: Callable[[str, str], str]) -> None:
        self.rules = rules
        self.subject = subject
        used = {c.field for r in rules.rules for c in r.conditions}
        self.key_fields = tuple(f for f in STATIC if f in ("source", "type") or f in used)
        self.key_of: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*self.key_fields)
        self.plans: dict[tuple[Any, ...], Plan] = {}

    def plan(self, key: tuple[Any, ...]) -> Plan:
        plan = self.plans.get(key)
        if plan is None:
            if len(self.plans) >= MAX_PLANS:
                self.plans.clear()
            plan = self.plans[key] = self._compile(dict(zip(self.key_fields, key, strict=True)))
        return plan

    def _compile(self, values: dict[str, Any]) -> Plan:
        source = SOURCE_TOKENS.get(values["source"], "unknown")
        steps = [s for s in (self._step(r, values) for r in self.rules.rules) if s is not None]
        routes: tuple[str, ...] = ()
        subject_of = lambda d: self.subject(source, d)  # noqa: E731 - bound to this plan's source
        while steps and steps[0].static:  # apply what needs no event
            rule = steps.pop(0).rule
            if rule.drop:
                plan = Plan((), (), (), subject_of)
                plan.constant = Outcome(dropped="rule", rule=rule.name)
                plan.learn = _learning(values)
                return plan
            if rule.route:
                routes = routes + tuple(d for d in rule.route if d not in routes)
            if rule.final:
                steps = []
        plan = Plan(tuple(steps), routes, self.rules.default, subject_of)
        plan.learn = _learning(values)
        return plan

    @staticmethod
    def _step(rule: Rule, values: dict[str, Any]) -> Step | None:
        tests: list[tuple[Callable[[Context], Any], Callable[[Any], bool]]] = []
        for c in rule.conditions:
            if c.field in STATIC:
                if not c.test(values[c.field]):
                    return None
            else:
                tests.append((_context_getter(c), c.test))
        return Step(
            rule,
            tuple(tests),
            sampler(rule.name, rule.sample) if rule.sample > 1 else None,
            tuple((k, k.encode()) for k in rule.redact),
            Outcome(dropped="rule" if rule.drop else "sampled", rule=rule.name),
        )


def _learning(values: dict[str, Any]) -> int:
    if values["source"] != events_pb2.SOURCE_K8S:
        return ENRICH
    return LEARN_POD if values["type"] == "pods" else OWN


def _context_getter(condition: Condition) -> Callable[[Context], Any]:
    """namespace, node, labels: read from the (enriched) Context, as FIELDS reads them of an event."""
    assert condition.field in FIELDS
    assert condition.field not in STATIC
    return operator.attrgetter(condition.field)
