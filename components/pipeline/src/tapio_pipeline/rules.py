"""The pipeline's rule file: parsed and validated into compiled rules, then applied to one event.

Fed by `load_rules` (the YAML text of `--rules FILE`); used by the processor for every event it
takes. Pure: no I/O besides what the caller hands in, no clock. Rules run in file order; every
matching rule applies its action:

- ``drop``: the event goes nowhere (counted as dropped with reason ``rule``).
- ``sample: N``: keeps 1 event in N, chosen by a hash of the event id and the rule name, so a
  replay keeps the same events (the others are dropped with reason ``sampled``).
- ``redact: [key, ...]``: replaces those attributes' values with ``[redacted]``.
- ``route: [destination, ...]``: adds destinations; ``final: true`` stops at this rule.

An event no rule routed goes to the file's ``default`` destinations, or, without a default, is
counted as ``unrouted`` (never lost silently: it stays in TAPIO_EVENTS).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from tapio.events.v1 import events_pb2
from tapio_common.config.yamldoc import Section, parse_yaml
from tapio_common.errors import ConfigError
from tapio_pipeline.errors import RuleFileError

REDACTED = "[redacted]"
SOURCES = {"k8s": 1, "systemd": 2, "ebpf": 3, "cni": 4}
SEVERITIES = {"debug": 1, "info": 2, "warning": 3, "error": 4, "critical": 5}
DESTINATION_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
MATCH_KEYS = ("source", "type", "action", "severity", "min_severity", "namespace", "node", "labels")
RULE_KEYS = ("name", "match", "drop", "sample", "redact", "route", "final")
TOP_KEYS = ("destinations", "default", "rules")

Matcher = Callable[[events_pb2.Event], bool]


@attrs.frozen
class Condition:
    """One match key of a rule: `test` of the event's `field` (see FIELDS)."""

    field: str
    test: Callable[[Any], bool]


FIELDS: dict[str, Callable[[events_pb2.Event], Any]] = {
    "source": lambda e: e.source,
    "type": lambda e: e.type,
    "action": lambda e: e.action,
    "severity": lambda e: e.severity,
    "namespace": lambda e: e.context.namespace,
    "node": lambda e: e.context.node,
    "labels": lambda e: e.context.labels,
}
"""What each condition field reads of an event; source, type, action and severity are the event's
own, namespace, node and labels those of its (enriched) context."""


@attrs.frozen
class Rule:
    name: str
    line: int
    conditions: tuple[Condition, ...]
    drop: bool = False
    sample: int = 0  # keep 1 in `sample`; 0 = no sampling
    redact: tuple[str, ...] = ()
    route: tuple[str, ...] = ()
    final: bool = False
    applies: Matcher = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "applies", _all_of(tuple(_matcher(c) for c in self.conditions)))


def _all_of(matches: tuple[Matcher, ...]) -> Matcher:
    """One callable for a rule's conditions (the message path calls it once per rule and event)."""
    if not matches:
        return lambda e: True
    if len(matches) == 1:
        return matches[0]
    return lambda e: all(m(e) for m in matches)


def _matcher(condition: Condition) -> Matcher:
    get, test = FIELDS[condition.field], condition.test
    return lambda e: test(get(e))


@attrs.frozen
class RuleSet:
    destinations: tuple[str, ...]
    default: tuple[str, ...]
    rules: tuple[Rule, ...]
    # Decisions are immutable: one per distinct set of destinations, made once.
    decisions: dict[tuple[str, ...], Decision] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen
class Decision:
    """What happens to one event: its destinations, or why it goes nowhere."""

    destinations: tuple[str, ...] = ()
    dropped: str = ""  # "rule", "sampled" or "unrouted" when destinations is empty
    rule: str = ""  # the rule that dropped it
    redacted: tuple[str, ...] = ()  # attribute keys replaced


_UNROUTED = Decision(dropped="unrouted")


def keep_sample(event_id: str, rule: str, every: int) -> bool:
    """Deterministic 1-in-`every` choice by event id (same answer on every replay and process)."""
    return sampler(rule, every)(event_id)


def sampler(rule: str, every: int) -> Callable[[str], bool]:
    """`keep_sample` of one rule as a function of the event id (the rule's part hashed once)."""
    if every <= 1:
        return lambda _event_id: True
    base = hashlib.blake2b(f"{rule}\x00".encode(), digest_size=8)

    def keep(event_id: str) -> bool:
        h = base.copy()
        h.update(event_id.encode())
        return int.from_bytes(h.digest(), "big") % every == 0

    return keep


def decide(rules: RuleSet, event: events_pb2.Event) -> Decision:
    """Applies the rules to `event` (redactions are made in place on the message)."""
    routes: tuple[str, ...] = ()
    redacted: tuple[str, ...] = ()
    for rule in rules.rules:
        if not rule.applies(event):
            continue
        if rule.drop:
            return Decision(dropped="rule", rule=rule.name, redacted=redacted)
        if rule.sample and not keep_sample(event.id, rule.name, rule.sample):
            return Decision(dropped="sampled", rule=rule.name, redacted=redacted)
        if rule.redact:
            attributes = event.attributes
            for key in rule.redact:
                if key in attributes and attributes[key] != REDACTED:
                    attributes[key] = REDACTED
                    redacted += (key,)
        if rule.route:
            routes = rule.route if not routes else routes + tuple(d for d in rule.route if d not in routes)
        if rule.final:
            break
    if not routes:
        if not rules.default:
            return _UNROUTED if not redacted else Decision(dropped="unrouted", redacted=redacted)
        routes = rules.default
    if not redacted:
        cached = rules.decisions.get(routes)
        if cached is None:
            cached = rules.decisions[routes] = Decision(destinations=routes)
        return cached
    return Decision(destinations=routes, redacted=redacted)


# ---------------------------------------------------------------- parsing, with line numbers


def load_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parses and validates a rule file; RuleFileError names the file and the line."""
    try:
        doc = parse_yaml(text, source, "rule file")
    except ConfigError as e:
        raise RuleFileError(str(e)) from e
    line = doc.line or 1
    _unknown(doc, TOP_KEYS, source, line, "top-level key")
    destinations = _names(doc.get("destinations"), source, line, "destinations")
    if not destinations:
        raise RuleFileError(f"{source}:{line}: 'destinations' must name at least one destination")
    known = set(destinations)
    default = _names(doc.get("default", []), source, line, "default")
    _known(default, known, source, line, "default")
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleFileError(f"{source}:{doc.lines.get('rules', line)}: 'rules' must be a list")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, i, source, doc.lines.get("rules", line), known)
        if rule.name in seen:
            raise RuleFileError(f"{source}:{rule.line}: rule name {rule.name!r} is used twice")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(destinations=destinations, default=default, rules=tuple(rules))


def _rule(raw: Any, index: int, source: str, parent_line: int, known: set[str]) -> Rule:
    if not isinstance(raw, Section):
        raise RuleFileError(f"{source}:{parent_line}: rule {index + 1} must be a mapping")
    line = raw.line or parent_line
    _unknown(raw, RULE_KEYS, source, line, "rule key")
    name = raw.get("name", f"rule-{index + 1}")
    if not isinstance(name, str) or not name:
        raise RuleFileError(f"{source}:{line}: 'name' must be a non-empty string")
    match = raw.get("match", {})
    if not isinstance(match, Mapping):
        raise RuleFileError(f"{source}:{line}: 'match' of rule {name!r} must be a mapping")
    drop = _bool(raw.get("drop", False), source, line, "drop")
    final = _bool(raw.get("final", False), source, line, "final")
    sample = raw.get("sample", 0)
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise RuleFileError(
            f"{source}:{line}: 'sample' of rule {name!r} must be a whole number N (keep 1 in N)"
        )
    redact = tuple(_strings(raw.get("redact", []), source, line, "redact"))
    route = _names(raw.get("route", []), source, line, "route")
    _known(route, known, source, line, "route")
    if not (drop or sample or redact or route):
        raise RuleFileError(f"{source}:{line}: rule {name!r} has no action (drop, sample, redact or route)")
    if drop and (sample or route):
        raise RuleFileError(f"{source}:{line}: rule {name!r}: 'drop' cannot be combined with sample or route")
    matches = _matchers(match, source, getattr(match, "line", line), name)
    return Rule(name, line, matches, drop, sample, redact, route, final)


def _matchers(match: Mapping[str, Any], source: str, line: int, name: str) -> tuple[Condition, ...]:
    _unknown(match, MATCH_KEYS, source, line, f"match key of rule {name!r}")
    out: list[Condition] = []
    if "source" in match:
        sources = frozenset(_choices(match["source"], SOURCES, source, line, "source"))
        out.append(Condition("source", sources.__contains__))
    if "severity" in match:
        severities = frozenset(_choices(match["severity"], SEVERITIES, source, line, "severity"))
        out.append(Condition("severity", severities.__contains__))
    if "min_severity" in match:
        (floor,) = _choices(match["min_severity"], SEVERITIES, source, line, "min_severity", single=True)
        out.append(Condition("severity", lambda s: s >= floor))
    for key in ("type", "action", "namespace", "node"):
        if key in match:
            out.append(Condition(key, _glob(_strings(match[key], source, line, key))))
    if "labels" in match:
        labels = match["labels"]
        if not isinstance(labels, Mapping) or not labels:
            raise RuleFileError(f"{source}:{line}: 'labels' must map label names to values (globs)")
        pairs = tuple((str(k), _glob(_strings(v, source, line, f"labels.{k}"))) for k, v in labels.items())
        out.append(Condition("labels", _labels_match(pairs)))
    return tuple(out)


def _labels_match(pairs: tuple[tuple[str, Callable[[str], bool]], ...]) -> Callable[[Any], bool]:
    return lambda labels: all(test(labels.get(key, "")) for key, test in pairs)


def _glob(patterns: Sequence[str]) -> Callable[[str], bool]:
    exact = frozenset(p for p in patterns if not any(c in p for c in "*?["))
    globs = tuple(re.compile(fnmatch.translate(p)) for p in patterns if p not in exact)
    if not globs:
        return lambda v: v in exact
    return lambda v: v in exact or any(g.match(v) for g in globs)


def _choices(
    raw: Any, table: Mapping[str, int], source: str, line: int, key: str, *, single: bool = False
) -> list[int]:
    values = _strings(raw, source, line, key)
    if single and len(values) != 1:
        raise RuleFileError(f"{source}:{line}: '{key}' takes one value")
    out = []
    for v in values:
        if v.lower() not in table:
            raise RuleFileError(f"{source}:{line}: {key} {v!r} is not one of {', '.join(table)}")
        out.append(table[v.lower()])
    return out


def _strings(raw: Any, source: str, line: int, key: str) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise RuleFileError(f"{source}:{line}: '{key}' must be a string or a list of strings")
    return list(values)


def _names(raw: Any, source: str, line: int, key: str) -> tuple[str, ...]:
    names = _strings(raw, source, line, key) if raw else []
    for n in names:
        if not DESTINATION_RE.match(n):
            raise RuleFileError(f"{source}:{line}: destination {n!r} must match [a-z0-9_-]{{1,64}}")
    return tuple(dict.fromkeys(names))


def _known(names: Iterable[str], known: set[str], source: str, line: int, key: str) -> None:
    for n in names:
        if n not in known:
            raise RuleFileError(f"{source}:{line}: '{key}' names {n!r}, which is not in 'destinations'")


def _bool(raw: Any, source: str, line: int, key: str) -> bool:
    if not isinstance(raw, bool):
        raise RuleFileError(f"{source}:{line}: '{key}' must be true or false")
    return raw


def _unknown(doc: Mapping[str, Any], allowed: Sequence[str], source: str, line: int, what: str) -> None:
    for key in doc:
        if key not in allowed:
            raise RuleFileError(
                f"{source}:{line}: unknown {what} {key!r} (expected one of {', '.join(allowed)})"
            )
