"""The runtime's Prometheus gauges, registered once per component registry (several consumers of
one component share them, told apart by the `consumer` label)."""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Gauge

from tapio_common.metrics import ComponentMetrics

_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Gauge]] = weakref.WeakKeyDictionary()


def gauge(metrics: ComponentMetrics, suffix: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    """`tapio_<component>_<suffix>` in the component's registry (created on first use)."""
    known = _GAUGES.setdefault(metrics.registry, {})
    if suffix not in known:
        known[suffix] = Gauge(f"tapio_{metrics.component}_{suffix}", doc, labels, registry=metrics.registry)
    return known[suffix]
