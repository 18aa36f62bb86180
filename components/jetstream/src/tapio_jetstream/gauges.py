"""The runtime's Prometheus gauges and counters, registered once per component registry (several
consumers of one component share them, told apart by the `consumer` label)."""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

from tapio_common.metrics import ComponentMetrics

_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Gauge]] = weakref.WeakKeyDictionary()
_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Counter]] = weakref.WeakKeyDictionary()


def gauge(metrics: ComponentMetrics, suffix: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    """`tapio_<component>_<suffix>` in the component's registry (created on first use)."""
    known = _GAUGES.setdefault(metrics.registry, {})
    if suffix not in known:
        known[suffix] = Gauge(f"tapio_{metrics.component}_{suffix}", doc, labels, registry=metrics.registry)
    return known[suffix]


def counter(metrics: ComponentMetrics, suffix: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    """`tapio_<component>_<suffix>_total` in the component's registry (created on first use)."""
    known = _COUNTERS.setdefault(metrics.registry, {})
    if suffix not in known:
        known[suffix] = Counter(f"tapio_{metrics.component}_{suffix}", doc, labels, registry=metrics.registry)
    return known[suffix]
