"""Checks a scenario against CORRELATION.md from its events alone: expectations hold, nothing else does.

Independent of how the generator built the scenario: it rebuilds the topology from the k8s events and
verifies (1) structure (time order, unique ids, keys exist, objects introduced before use), (2) each
expected correlation's pattern and confidence inside its windows, (3) that the events outside the
expected ones form no pattern, and no stray failure touches a node or workload of an incident.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tapio_common.cli import run_cli
from tapio_common.errors import ContractError
from tapio_common.model import Event, Source
from tapio_common.model.fast import event_from_pb
from tapio_common.scenarios import load_scenario, scenario_folders
from tapio_scenariogen.check_depend import dependency_shape, is_evidence, link, stray_dependencies
from tapio_scenariogen.check_index import (
    Index,
    is_cause,
    is_cni_problem,
    is_critical_unit_failure,
    is_failure,
    is_oom_kill,
    is_pod_failure,
    is_pressure,
    is_restart,
    is_service_impact,
    is_slow_connect,
    retransmit_count,
)
from tapio_scenariogen.corpus import user_path

PROG = "python -m tapio_scenariogen.check"


def problems(events: Sequence[Event], expected: Sequence[Mapping[str, Any]], quiet: bool) -> list[str]:
    """Everything wrong with a scenario; empty when it is consistent with CORRELATION.md."""
    out = structural(events, expected)
    if out:
        return out
    idx = Index.build(events)
    by_id = {e.id: e for e in events}
    keys: set[str] = set()
    for exp in expected:
        keys.update(exp["keyEventIds"])
        out += [f"{exp['type']}: {p}" for p in _shape(idx, [by_id[k] for k in exp["keyEventIds"]], exp)]
    if quiet and expected:
        out.append("a quiet scenario expects correlations")
    out += absent_patterns(idx, [e for e in events if e.id not in keys])
    out += stray_failures(idx, events, keys)
    return out


def structural(events: Sequence[Event], expected: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    if any(a.time > b.time for a, b in itertools.pairwise(events)):
        out.append("events are not in time order")
    ids = [e.id for e in events]
    if len(set(ids)) != len(ids):
        out.append("event ids are not unique")
    known = set(ids)
    for exp in expected:
        if exp["rootCauseEventId"] not in known or not set(exp["keyEventIds"]) <= known:
            out.append(f"{exp['type']}: root cause or key events missing from the events")
        elif exp["keyEventIds"][0] != exp["rootCauseEventId"]:
            out.append(f"{exp['type']}: the root cause is not the first key event")
        if exp["confidence"] not in ("high", "medium"):
            out.append(f"{exp['type']}: confidence {exp['confidence']!r} is not high/medium")
    announced: set[tuple[str, str, str]] = set()
    for e in events:
        c = e.context
        if e.source is Source.K8S and e.action == "created":
            announced.add(
                (e.type, c.namespace, c.pod or c.service or (c.workload.name if c.workload else ""))
            )
        elif c.pod and ("pods", c.namespace, c.pod) not in announced:
            out.append(f"{e.type}/{e.action} {e.id} mentions pod {c.namespace}/{c.pod} before it was created")
        elif e.type == "services" and ("services", c.namespace, c.service) not in announced:
            out.append(f"service {c.namespace}/{c.service} used before it was created")
    return out


def _shape(idx: Index, keys: list[Event], exp: Mapping[str, Any]) -> list[str]:
    root, level, kind = keys[0], exp["confidence"], exp["type"]
    span = max(idx.t(k) for k in keys) - idx.t(root)
    checks = {
        "crash_loop": _crash_loop,
        "network_degradation": _network,
        "performance_degradation": _perf,
        "deployment_failure": _deploy,
        "node_failure": _node,
        "resource_pressure": _pressure,
        "cascading_failure": _cascade,
        "service_dependency_failure": _dependency,
    }
    if kind not in checks:
        return [f"unknown expected type {kind}"]
    if any(idx.t(k) < idx.t(root) for k in keys):
        return ["a key event precedes the root cause"]
    return checks[kind](idx, root, keys[1:], level, span)


def _dependency(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    return dependency_shape(idx, root, rest, level)


def _crash_loop(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    restarts = [root, *rest]
    if (
        not all(is_restart(e) for e in restarts)
        or len({(e.context.namespace, e.context.pod) for e in restarts}) != 1
    ):
        return ["keys are not non-OOM restarts of one pod"]
    if span > 600:
        return [f"restarts spread over {span:.0f}s > 10 min"]
    want = "high" if len(restarts) >= 5 else "medium" if len(restarts) >= 3 else "none"
    return [] if want == level else [f"{len(restarts)} restarts means {want}, expected says {level}"]


def _network(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    if not is_cni_problem(root) or level != "high":
        return ["root is not a CNI loss/errors event, or level is not high"]
    total = sum(retransmit_count(e) for e in rest if idx.node(e) == root.context.node)
    return [] if total >= 50 and span <= 120 else [f"{total} retransmits from the node within {span:.0f}s"]


def _perf(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    slow = [e for e in [root, *rest] if is_slow_connect(e)]
    sick = [e for e in rest if e.action == "unhealthy" and e.type == "pods"]
    impact = [e for e in rest if is_service_impact(e)]
    workloads = {idx.workload(e) for e in [*slow, *sick]}
    if len(slow) < 3 or idx.t(slow[2]) - idx.t(root) > 120 or not sick or len(workloads) != 1 or span > 300:
        return ["not >= 3 slow connects in 2 min then unhealthy pods of that workload within 5 min"]
    want = "high" if impact else "medium"
    return [] if want == level else [f"expected says {level}, pattern says {want}"]


def _deploy(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    if root.type != "deployments" or root.k8s is None or root.k8s.reason != "TemplateChanged":
        return ["root is not a TemplateChanged Deployment update"]
    workload = f"{root.context.namespace}/{root.context.workload.name if root.context.workload else ''}"
    failing = [e for e in rest if is_pod_failure(e)]
    stalled = [
        e
        for e in rest
        if e.type == "deployments" and e.k8s and e.k8s.available_replicas < e.k8s.desired_replicas
    ]
    if not failing or not stalled or span > 600 or level != "high":
        return ["no failing new pods and available < desired within 10 min"]
    if any(idx.workload(e) != workload for e in failing):
        return ["failing pods of another workload"]
    return []


def _node(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    node = root.context.node
    down = [e for e in rest if e.type == "nodes" and e.action == "not_ready" and e.context.node == node]
    pods = [e for e in rest if is_pod_failure(e)]
    if not is_critical_unit_failure(root) or not down or idx.t(down[0]) - idx.t(root) > 300:
        return ["not a critical unit failure followed by its node not ready within 5 min"]
    if any(idx.node(e) != node for e in pods) or any(is_service_impact(e) for e in rest):
        return ["pod effects off the node, or a Service impact (that would be a cascade)"]
    want = "high" if pods else "medium"
    return [] if want == level else [f"expected says {level}, pattern says {want}"]


def _pressure(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    if is_pressure(root):
        evicted = [e for e in rest if e.action == "evicted" and idx.node(e) == root.context.node]
        ok = evicted and span <= 600 and level == "high"
        return [] if ok else ["pressure without evictions on the node within 10 min, or level not high"]
    kills = [e for e in [root, *rest] if is_oom_kill(e)]
    if len(kills) < 2 or len({idx.workload(e) for e in kills}) != 1 or idx.t(kills[1]) - idx.t(root) > 300:
        return ["not >= 2 OOM kills of one workload within 5 min"]
    return [] if level == "medium" else ["repeated OOM must be medium"]


def _cascade(idx: Index, root: Event, rest: list[Event], level: str, span: float) -> list[str]:
    if not is_cause(root) or span > 300:
        return ["root is no cascade cause, or the chain is longer than 5 min"]
    node, own = idx.node(root), idx.workload(root)
    failures = [e for e in rest if is_pod_failure(e)]
    impacts = [s for s in rest if is_service_impact(s)]
    unlinked = [
        e
        for e in failures
        if idx.node(e) != node and idx.workload(e) != own and not any(link(idx, s, e) for s in impacts)
    ]
    callers = {
        idx.workload(e) for e in failures if e not in unlinked and any(link(idx, s, e) for s in impacts)
    }
    if unlinked or not failures:
        return ["failures missing or not linked to the cause by node or workload"]
    failed = {idx.workload(e) for e in failures}
    impact = [s for s in rest if is_service_impact(s) and any(idx.service_selects(s, w) for w in failed)]
    failed -= callers - {own} if impact else set()
    if level == "high":
        return [] if impact else ["high without a Service selecting the failed pods"]
    return [] if len(failed - {own}) >= 2 else ["medium without >= 2 other failed workloads"]


def _windows(times: list[float], size: float, count: int) -> Iterable[tuple[int, int]]:
    """(first, last) indexes of every run of `count` sorted times within `size` seconds."""
    for i in range(len(times) - count + 1):
        if times[i + count - 1] - times[i] <= size:
            yield i, i + count - 1


def absent_patterns(idx: Index, evs: list[Event]) -> list[str]:
    """The patterns of CORRELATION.md that must not occur among these (non-key) events."""
    out: list[str] = []
    groups: dict[str, list[Event]] = {}
    for e in evs:
        if is_restart(e):
            groups.setdefault(f"restarts of {e.context.namespace}/{e.context.pod}", []).append(e)
        if is_oom_kill(e):
            groups.setdefault(f"oom of {idx.workload(e)}", []).append(e)
    for name, items in groups.items():
        times = [idx.t(e) for e in items]
        size, count = (600.0, 3) if name.startswith("restarts") else (300.0, 2)
        if any(True for _ in _windows(times, size, count)):
            out.append(f"stray pattern: {count} {name} within {size:.0f}s")
    for e in evs:
        if not (is_cni_problem(e) or is_pressure(e) or is_cause(e)):
            continue
        t, node = idx.t(e), idx.node(e)
        after = [x for x in evs if idx.t(x) - t > 0]
        if (
            is_cni_problem(e)
            and sum(retransmit_count(x) for x in after if idx.t(x) - t <= 120 and idx.node(x) == node) >= 50
        ):
            out.append(f"stray pattern: CNI loss on {node} with >= 50 retransmits")
        if is_pressure(e) and any(
            x.action == "evicted" and idx.node(x) == node and idx.t(x) - t <= 600 for x in after
        ):
            out.append(f"stray pattern: pressure then eviction on {node}")
        if is_critical_unit_failure(e) and any(
            x.type == "nodes" and x.action == "not_ready" and x.context.node == node and idx.t(x) - t <= 300
            for x in after
        ):
            out.append(f"stray pattern: critical unit failure then node not ready on {node}")
        if is_cause(e):
            out += _stray_cascade(idx, e, [x for x in after if idx.t(x) - t <= 300])
    out += _stray_perf(idx, evs)
    out += _stray_rollout(idx, evs)
    out += stray_dependencies(idx, evs)
    return out


def _stray_rollout(idx: Index, evs: list[Event]) -> list[str]:
    """A template change followed within 10 min by failures of pods of a ReplicaSet not seen before it."""
    out: list[str] = []
    for e in evs:
        if (
            e.type != "deployments"
            or e.k8s is None
            or e.k8s.reason != "TemplateChanged"
            or e.context.workload is None
        ):
            continue
        workload, t = f"{e.context.namespace}/{e.context.workload.name}", idx.t(e)
        old = {
            x.context.owners[0].name
            for x in evs
            if x.context.owners and idx.t(x) <= t and idx.workload(x) == workload
        }
        new_failures = [
            x
            for x in evs
            if is_pod_failure(x)
            and idx.workload(x) == workload
            and 0 < idx.t(x) - t <= 600
            and x.context.owners
            and x.context.owners[0].name not in old
        ]
        if new_failures:
            out.append(f"stray pattern: rollout of {workload} then failing new pods")
    return out


def _stray_cascade(idx: Index, cause: Event, window: list[Event]) -> list[str]:
    node, own = idx.node(cause), idx.workload(cause)
    failures = [
        x for x in window if is_pod_failure(x) and (idx.node(x) == node or (own and idx.workload(x) == own))
    ]
    failed = {idx.workload(x) for x in failures}
    if len(failed - {own}) >= 2:
        return [f"stray pattern: cascade from {cause.type}/{cause.action} to {len(failed)} workloads"]
    impact = [s for s in window if is_service_impact(s) and any(idx.service_selects(s, w) for w in failed)]
    if impact and failures and idx.t(impact[0]) > idx.t(failures[0]):
        return [f"stray pattern: cascade from {cause.type}/{cause.action} to a Service"]
    return []


def _stray_perf(idx: Index, evs: list[Event]) -> list[str]:
    by_workload: dict[str, list[Event]] = {}
    for e in evs:
        if is_slow_connect(e):
            by_workload.setdefault(idx.workload(e), []).append(e)
    out: list[str] = []
    for workload, slow in by_workload.items():
        for _, last in _windows([idx.t(e) for e in slow], 120.0, 3):
            t = idx.t(slow[last])
            if any(
                e.action == "unhealthy" and idx.workload(e) == workload and 0 < idx.t(e) - t <= 300
                for e in evs
            ):
                out.append(f"stray pattern: slow connects then unhealthy pods of {workload}")
    return out


def stray_failures(idx: Index, events: Sequence[Event], keys: set[str]) -> list[str]:
    """Failures outside the expected correlations that touch a node or workload of one of them."""
    key_events = [e for e in events if e.id in keys]
    nodes = {idx.node(e) for e in key_events} - {""}
    workloads = {idx.workload(e) for e in key_events} - {""}
    impacts = [e for e in key_events if is_service_impact(e)]
    return [
        f"stray failure {e.type}/{e.action} {e.id} on an incident's node or workload"
        for e in events
        if e.id not in keys
        and is_failure(e)
        and (idx.node(e) in nodes or idx.workload(e) in workloads)
        and not is_evidence(idx, e, impacts)
    ]


def check_folders(root: Path) -> dict[str, list[str]]:
    """The problems of every scenario folder under `root` (a folder without expectations is quiet),
    read by the one scenario loader; a folder it cannot read is reported, not raised."""
    out: dict[str, list[str]] = {}
    for folder in scenario_folders(root):
        try:
            scenario = load_scenario(folder)
        except ContractError as e:
            out[folder.name] = [str(e)]
            continue
        events = [event_from_pb(ev) for ev in scenario.events]
        out[folder.name] = problems(events, scenario.expected, quiet=not scenario.expected)
    return out


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Checks scenario folders against CORRELATION.md from their events alone: structure,\n"
        "each expected pattern inside its windows with the right confidence, and no other pattern.",
        epilog="example:\n  python -m tapio_scenariogen.check tests/scenarios/public\n\n"
        "exit status: 0 when every scenario is consistent, 3 otherwise, 1 on unreadable input.",
    )
    p.add_argument("folder", help="folder of scenario folders (each with events.jsonl, expected.jsonl)")
    args = p.parse_args(argv)
    results = check_folders(user_path(args.folder))
    for name, found in results.items():
        for problem in found:
            print(f"{name}: {problem}")
    bad = sum(1 for found in results.values() if found)
    print(f"{len(results) - bad}/{len(results)} scenarios consistent")
    return 3 if bad else 0


if __name__ == "__main__":
    from tapio_scenariogen import check as _check  # the importable copy, not __main__

    sys.exit(run_cli(PROG, _check.main))
