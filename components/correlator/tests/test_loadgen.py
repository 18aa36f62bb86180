"""The benchmark's synthetic load: valid events in time order, protobuf equal to the model, incidents found."""

from __future__ import annotations

from tapio_common.model.fast import event_from_pb
from tapio_correlator.engine import Engine
from tapio_correlator_testing.loadgen import Mix, to_pb


def test_the_mix_is_ordered_encodes_losslessly_and_its_incidents_are_found() -> None:
    mix = Mix(2_000, seed=3, rate=400)  # 400 events/s: 500 s of event time
    setup = mix.setup()
    assert sum(e.type == "pods" for e in setup) == 2_000
    engine = Engine()
    found = set()
    for ev in setup:
        engine.process(ev)
    last = 0
    events = [ev for _ in range(20) for ev in mix.chunk(10_000)]
    for ev in events:
        assert ev.time >= last
        last = ev.time
        for c in engine.process(ev):
            if c.score >= 0.5:
                found.add(c.type)
    found.update(c.type for c in engine.finish() if c.score >= 0.5)
    for ev in events[:5_000] + [e for e in events if e.type not in ("pods", "process_exec", "unit")][:2_000]:
        assert event_from_pb(to_pb(ev)) == ev
    assert mix.incidents >= 20
    assert {
        "cascading_failure",
        "crash_loop",
        "node_failure",
        "network_degradation",
        "deployment_failure",
    } <= found
