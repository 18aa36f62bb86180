"""The rule file: every rule kind, deterministic sampling, routing defaults and errors naming the line."""

from __future__ import annotations

from typing import Any

import pytest

from tapio.events.v1 import events_pb2
from tapio_pipeline.errors import RuleFileError
from tapio_pipeline.rules import REDACTED, RuleSet, decide, keep_sample, load_rules

RULES = """\
destinations: [siem, archive, metrics]
default: [archive]
rules:
  - name: no-debug
    match: {severity: debug}
    drop: true
  - name: exec-sampled
    match: {source: ebpf, type: process_exec}
    sample: 10
  - name: hide-secrets
    match: {source: [ebpf, systemd]}
    redact: [cmdline, env]
  - name: security
    match: {min_severity: error, namespace: ["team-*", payments]}
    route: [siem, archive]
  - name: team-a-web
    match:
      labels: {app: web, tier: "front*"}
      node: "node-?"
    route: [metrics]
    final: true
  - name: never-reached-for-web
    match: {labels: {app: web}}
    route: [siem]
"""


def event(context: dict[str, Any] | None = None, **kw: Any) -> events_pb2.Event:
    kw.setdefault("id", "e-1")
    return events_pb2.Event(context=events_pb2.Context(**(context or {})), **kw)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES, "routes.yaml")


def test_drop_by_severity(rules: RuleSet) -> None:
    d = decide(rules, event(severity=events_pb2.SEVERITY_DEBUG, source=events_pb2.SOURCE_K8S))
    assert (d.destinations, d.dropped, d.rule) == ((), "rule", "no-debug")


def test_unmatched_event_takes_the_default(rules: RuleSet) -> None:
    d = decide(rules, event(severity=events_pb2.SEVERITY_INFO, source=events_pb2.SOURCE_K8S))
    assert d.destinations == ("archive",)


def test_route_by_min_severity_and_namespace_glob(rules: RuleSet) -> None:
    e = event(severity=events_pb2.SEVERITY_CRITICAL, context={"namespace": "team-b"})
    assert decide(rules, e).destinations == ("siem", "archive")
    e = event(severity=events_pb2.SEVERITY_WARNING, context={"namespace": "team-b"})
    assert decide(rules, e).destinations == ("archive",)  # below error: default
    e = event(severity=events_pb2.SEVERITY_ERROR, context={"namespace": "kube-system"})
    assert decide(rules, e).destinations == ("archive",)


def test_labels_and_node_and_final(rules: RuleSet) -> None:
    e = event(context={"node": "node-1", "labels": {"app": "web", "tier": "frontend"}})
    assert decide(rules, e).destinations == ("metrics",)  # final: the next rule does not add siem
    e = event(context={"node": "node-12", "labels": {"app": "web", "tier": "frontend"}})
    assert decide(rules, e).destinations == ("siem",)  # node-? does not match node-12


def test_redact_in_place(rules: RuleSet) -> None:
    e = event(source=events_pb2.SOURCE_SYSTEMD, attributes={"cmdline": "--password=x", "unit": "kubelet"})
    d = decide(rules, e)
    assert d.redacted == ("cmdline",)
    assert dict(e.attributes) == {"cmdline": REDACTED, "unit": "kubelet"}
    assert decide(rules, e).redacted == ()  # already redacted: nothing more to say


def test_sampling_is_deterministic_and_about_one_in_n(rules: RuleSet) -> None:
    kept = [
        i
        for i in range(20_000)
        if decide(
            rules, event(id=f"exec-{i}", source=events_pb2.SOURCE_EBPF, type="process_exec")
        ).destinations
    ]
    again = [
        i
        for i in range(20_000)
        if decide(
            rules, event(id=f"exec-{i}", source=events_pb2.SOURCE_EBPF, type="process_exec")
        ).destinations
    ]
    assert kept == again
    assert 1_700 < len(kept) < 2_300  # 1 in 10 of 20,000
    assert keep_sample("any", "r", 1)
    dropped = decide(rules, event(id="exec-1", source=events_pb2.SOURCE_EBPF, type="process_exec"))
    if not dropped.destinations:
        assert (dropped.dropped, dropped.rule) == ("sampled", "exec-sampled")


def test_without_default_an_event_is_unrouted() -> None:
    rules = load_rules("destinations: [siem]\nrules:\n  - match: {source: cni}\n    route: [siem]\n")
    assert decide(rules, event(source=events_pb2.SOURCE_K8S)).dropped == "unrouted"
    assert decide(rules, event(source=events_pb2.SOURCE_CNI)).destinations == ("siem",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "destinations: [siem]\nrules:\n  - match: {source: k8s}\n    route: [archive]\n",
            "routes.yaml:3: 'route' names 'archive', which is not in 'destinations'",
        ),
        (
            "destinations: [siem]\nrules:\n  - name: a\n    route: [siem]\n  - name: b\n    match: {colour: red}\n    route: [siem]\n",
            "routes.yaml:6: unknown match key of rule 'b' 'colour'",
        ),
        (
            "destinations: [siem]\nrules:\n  - name: a\n    match: {severity: loud}\n    route: [siem]\n",
            "routes.yaml:4: severity 'loud' is not one of debug, info, warning, error, critical",
        ),
        (
            "destinations: [siem]\nrules:\n  - name: a\n    match: {source: k8s}\n",
            "routes.yaml:3: rule 'a' has no action",
        ),
        (
            "destinations: [siem]\nrules:\n  - name: a\n    sample: -1\n",
            "routes.yaml:3: 'sample' of rule 'a' must be a whole number",
        ),
        (
            "destinations: [siem]\nrules:\n  - {name: a, drop: true, route: [siem]}\n",
            "routes.yaml:3: rule 'a': 'drop' cannot be combined",
        ),
        (
            "destinations: [siem]\nrules:\n  - {name: a, drop: true}\n  - {name: a, drop: true}\n",
            "routes.yaml:4: rule name 'a' is used twice",
        ),
        ("destinations: [Siem!]\n", "routes.yaml:1: destination 'Siem!' must match"),
        ("destinations: []\n", "routes.yaml:1: 'destinations' must name at least one"),
        ("destinations: [siem]\nrules: [\n", "malformed YAML in routes.yaml at line 3"),
        ("- just a list\n", "rule file routes.yaml must hold a mapping at the top, not list"),
        ("destinations: [siem]\nroutes: []\n", "routes.yaml:1: unknown top-level key 'routes'"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(RuleFileError) as info:
        load_rules(text, "routes.yaml")
    assert str(info.value).startswith(message), str(info.value)
