"""The real collectors of the e2e scenarios, each as its own process (the command line `tapio-admin up`
gives it, plus the flags that point it at what the test made), and what the scenarios count.

Fed by the scenarios with a NATS URL, a data directory and what the collector watches (a kubeconfig
of the test API server, a namespaced systemd's bus, this kernel); everything started here is
stopped by the context manager, whatever the test did. `confirmed` reads a collector's own
`events_published_total` (what JetStream acknowledged to it) from its /metrics."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from tapio.events.v1 import events_pb2
from tapio_admin.plan import HostFacts, plan
from tapio_admin.up import DEFAULT_RULES
from tapio_jetstream import decode_events
from tapio_jetstream.layout import ALERTS, DLQ, EVENTS, PROCESSED
from tapio_testing.natscluster import NatsCluster
from tapio_testing.receivers.alertmanager import Alertmanager
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.receivers.rsyslog import Rsyslog
from tapio_testing.wait import eventually
from tests.integration.e2e.flows import hec_arrivals, msg_ids, processed_events, routed
from tests.integration.e2e.product import HEC_TOKEN, Component, drained, hec_sink, stream_messages
from tests.integration.e2e.report import Entry, Report


@contextmanager
def collectors(
    url: str, data: Path, wanted: Mapping[str, Sequence[str]], *, kubeconfig: Path | None = None,
    cluster: NatsCluster | None = None,
) -> Iterator[dict[str, Component]]:  # fmt: skip
    """The collectors named in `wanted` (tapio-admin's names) as their own processes against `url`,
    each with its launch line plus the extra flags given for it; on a production `cluster`, each as
    its own workload (tapio-<name>: its certificate, user tapio-collectors). Stopped with SIGTERM."""
    facts = HostFacts(root=True, bcc=True, pid1="systemd", kubeconfig=str(kubeconfig) if kubeconfig else None)
    launches = {x.name: x for x in plan(facts, str(DEFAULT_RULES))[0]}
    missing = set(wanted) - set(launches)
    assert not missing, f"tapio-admin has no launch line for {sorted(missing)}"
    running = {
        name: Component(
            attrs.evolve(launches[name], args=(*launches[name].args, *extra)),
            url,
            data,
            cluster.identity(f"tapio-{name}").env(cluster.urls) if cluster else None,
        )
        for name, extra in wanted.items()
    }
    try:
        for c in running.values():
            c.start()
        yield running
    finally:
        codes = {name: c.stop() for name, c in running.items()}
        bad = {n: code for n, code in codes.items() if code not in (0, None)}
        assert not bad, f"collectors did not stop cleanly: {bad}"


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


def ready(c: Component) -> bool:
    """The component's /readyz says ready (its source running: programs loaded, lists done, bus up)."""
    assert c.alive(), f"{c.launch.name} exited:\n{c.log_tail()}"
    return _get(c.metrics_port, "/readyz")[0] == 200


def metric(c: Component, name: str) -> float:
    """The sum of every sample of `<prefix>_<name>` on the component's /metrics (0 when absent)."""
    code, text = _get(c.metrics_port, "/metrics")
    assert code == 200, f"{c.launch.name} /metrics answered {code}:\n{c.log_tail()}"
    prefix = "tapio_" + c.launch.name.replace("-", "_")  # component "ebpf-collector": tapio_ebpf_collector_*
    pattern = re.compile(rf"^{prefix}_{name}(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def confirmed(c: Component) -> int:
    """Events JetStream acknowledged to this collector."""
    return int(metric(c, "events_published_total"))


def emitted(c: Component) -> int:
    """Events this collector handed to its publisher."""
    return int(metric(c, "events_received_total"))


def events_of(msgs: Iterable[Msg]) -> list[events_pb2.Event]:
    """Every event of TAPIO_EVENTS' messages, in stream order."""
    return [e for m in msgs for e in decode_events(m.headers, m.data)]


def id_repeats(events: Iterable[events_pb2.Event]) -> int:
    """How many stored events repeat an id already stored."""
    return sum(n - 1 for n in Counter(e.id for e in events).values())


_SD = re.compile(r'\bid="([0-9a-f]+)" state="(\w+)" revision="(\d+)"')
_STATE_ORDER = {"firing": 0, "updated": 1, "resolved": 2}


@attrs.frozen
class Receivers:
    """Where the SIEM exporter delivers: the HEC receiver (indexer acks), Debian's rsyslog (TCP),
    Prometheus Alertmanager."""

    hec: HecReceiver
    rsyslog: Rsyslog
    alertmanager: Alertmanager

    def sinks(self) -> list[str]:
        """The exporter's --sink specs for the three."""
        return [hec_sink(self.hec.url), f"syslog=tcp://127.0.0.1:{self.rsyslog.tcp_port}",
                f"alertmanager={self.alertmanager.url}"]  # fmt: skip

    def at_syslog(self) -> Counter[str]:
        """How often each alert (id:revision:state) arrived at rsyslog (its RFC 5424 structured data)."""
        found = (_SD.search(str(line.get("raw", ""))) for line in self.rsyslog.lines())
        return Counter(f"{m[1]}:{m[3]}:{m[2]}" for m in found if m)

    def active(self) -> dict[str, str]:
        """Alertmanager's active alerts: alert id -> revision."""
        return {a["labels"]["alert_id"]: a["annotations"]["revision"] for a in self.alertmanager.alerts()}


@contextmanager
def receivers(data: Path) -> Iterator[Receivers]:
    with ExitStack() as stack:
        yield Receivers(
            stack.enter_context(HecReceiver(token=HEC_TOKEN, ack=True)),
            stack.enter_context(Rsyslog(data / "rsyslog")),
            stack.enter_context(Alertmanager(data / "alertmanager")),
        )


def alertmanager_view(stored: Iterable[str]) -> dict[str, str]:
    """What Alertmanager must show once every stored alert (id:revision:state) arrived: each alert id
    whose last state is not resolved, active with its last revision."""
    last: dict[str, tuple[int, int, str]] = {}
    for key in stored:
        alert_id, revision, state = key.split(":")
        rank = (int(revision), _STATE_ORDER[state], state)
        if alert_id not in last or rank > last[alert_id]:
            last[alert_id] = rank
    return {i: str(rev) for i, (rev, _, state) in last.items() if state != "resolved"}


@attrs.frozen(kw_only=True)
class Outcome:
    """What came out of a real-collector scenario, read once every collector's events were confirmed
    and every durable consumer drained."""

    published: dict[str, int]  # collector -> events JetStream confirmed to it
    restarted: tuple[str, ...] = ()  # collectors restarted during the flow (they listed again)
    events: list[events_pb2.Event]  # TAPIO_EVENTS, in stream order
    stored_alerts: Counter[str]  # TAPIO_ALERTS Nats-Msg-Ids
    processed: Counter[tuple[str, str]]  # (processed subject, event id) of TAPIO_PROCESSED
    dlq: int
    backlog: dict[str, tuple[int, int]]
    at_hec: Counter[str]  # id:revision:state arrivals at the HEC receiver
    hec_alerts: list[dict[str, Any]]
    at_syslog: Counter[str]  # id:revision:state arrivals at rsyslog
    am_active: dict[str, str]  # Alertmanager's active alerts: id -> revision

    def entry(self, scenario: str, **detail: Any) -> Entry:
        """The report entry: lost counts confirmed events missing from the stream, routed events
        missing from TAPIO_PROCESSED, stored alerts missing at HEC or rsyslog and alerts Alertmanager
        does not show at their last revision; duplicates counts repeats of each of those (with a
        collector restarted, confirmed and stored events are not compared: see `outcome`)."""
        total = sum(self.published.values())
        expected_routes = routed(self.events)
        routes = {i for _, i in self.processed}
        return Entry(
            scenario=scenario,
            published=total,
            delivered=len(set(self.at_hec)),
            lost=(0 if self.restarted else max(0, total - len(self.events)))
            + len(expected_routes - routes)
            + len(set(self.stored_alerts) - set(self.at_hec))
            + len(set(self.stored_alerts) - set(self.at_syslog))
            + len(set(alertmanager_view(self.stored_alerts).items()) - set(self.am_active.items())),
            duplicates=(0 if self.restarted else id_repeats(self.events))
            + sum(n - 1 for n in self.processed.values())
            + sum(n - 1 for n in self.stored_alerts.values())
            + sum(n - 1 for n in self.at_hec.values())
            + sum(n - 1 for n in self.at_syslog.values()),
            dlq=self.dlq,
            detail={
                "confirmed_per_collector": self.published,
                "events_stored": len(self.events),
                "restarted": list(self.restarted),
                "stored_repeats_dropped_by_the_consumers": id_repeats(self.events),
                "events_by_type": sorted({f"{e.type}/{e.action}" for e in self.events}),
                "alerts_stored": len(self.stored_alerts),
                "alerts_at_hec": sorted(self.at_hec),
                "alerts_at_rsyslog": sorted(self.at_syslog),
                "alertmanager_active": self.am_active,
                "alert_titles": sorted({f"{a['labels'].get('type')}: {a['title']}" for a in self.hec_alerts}),
                "backlogs": {k: list(v) for k, v in self.backlog.items()},
                **detail,
            },
        )

    def alerts_of_type(self, type_: str) -> list[dict[str, Any]]:
        return [a for a in self.hec_alerts if a["labels"].get("type") == type_]


_STOPPED = re.compile(r"\bstopped events_emitted=(\d+) events_confirmed=(\d+) spooling=(\w+)")


def stop_counted(c: Component) -> int:
    """Stops a collector (SIGTERM: it drains its source and flushes its publisher) and returns the
    events JetStream confirmed to it, from the harness's last log line; fails when it did not stop
    cleanly or left anything unconfirmed."""
    code = c.stop()
    assert code == 0, f"{c.launch.name} exited {code}:\n{c.log_tail()}"
    found = _STOPPED.findall(c.log_tail(200))
    assert found, f"{c.launch.name} logged no 'stopped' line:\n{c.log_tail()}"
    emitted_, confirmed_, spooling = found[-1]
    assert (emitted_, spooling) == (confirmed_, "False"), found[-1]
    return int(confirmed_)


async def outcome(
    nc: Client, rx: Receivers, cols: dict[str, Component], stopped: Mapping[str, int] | None = None,
    earlier: Mapping[str, int] | None = None,
) -> Outcome:  # fmt: skip
    """Waits until every running collector's emitted events are confirmed, the consumers drained and
    every stored alert reached every receiver; then reads the streams and the receivers. `stopped`:
    the collectors stopped before (`stop_counted`) with what was confirmed to them; `earlier`: the
    collectors killed and started again during the flow, with what their first run had confirmed (a
    restarted collector lists again: what it re-emits in another batch is stored again and dropped
    by the consumers' dedup window, so stored repeats are reported, not counted as duplicates, and
    the routes and receivers are counted strictly)."""
    stopped = stopped or {}
    running = {name: c for name, c in cols.items() if name not in stopped}
    await eventually(
        lambda: all(confirmed(c) == emitted(c) for c in running.values()), "every emitted event confirmed", 30
    )
    published = {**{name: confirmed(c) for name, c in running.items()}, **stopped}
    for name, n in (earlier or {}).items():
        published[name] += n
    backlog = await drained(nc)
    stored = msg_ids(await stream_messages(nc, ALERTS))
    await eventually(lambda: set(hec_arrivals(rx.hec)) >= set(stored), "every stored alert at HEC", 30)
    await eventually(lambda: set(rx.at_syslog()) >= set(stored), "every stored alert at rsyslog", 30)
    want = alertmanager_view(stored)
    try:
        await eventually(lambda: rx.active() == want, f"Alertmanager showing {want}", 60)
    except AssertionError as e:
        raise AssertionError(f"{e}; it shows {rx.alertmanager.alerts()}") from None
    return Outcome(
        published=published,
        restarted=tuple(earlier or ()),
        events=events_of(await stream_messages(nc, EVENTS)),
        stored_alerts=stored,
        processed=processed_events(await stream_messages(nc, PROCESSED)),
        dlq=len(await stream_messages(nc, DLQ)),
        backlog=backlog,
        at_hec=hec_arrivals(rx.hec),
        hec_alerts=rx.hec.alerts(),
        at_syslog=rx.at_syslog(),
        am_active=rx.active(),
    )


async def why(nc: Client, hec: HecReceiver) -> str:
    """What the stream and the receiver hold, for a scenario's failure message."""
    lines = [f"{e.type}/{e.action} {events_pb2.Source.Name(e.source)} node={e.context.node} "
             f"pod={e.context.pod} id={e.id}" for e in events_of(await stream_messages(nc, EVENTS))]  # fmt: skip
    lines = lines[-80:]  # the latest (a collector of the whole machine's kernel adds many)
    lines += [f"alert {a['id']} r{a['revision']} {a['state']} {a['labels'].get('type')} "
              f"{a['labels'].get('confidence')}: {a['description']}" for a in hec.alerts()]  # fmt: skip
    return "\n".join(lines)


async def has(found: Awaitable[Sequence[object]]) -> bool:
    """Whether an awaited look-up found anything (for `eventually`)."""
    return bool(await found)


async def wait_alert(
    nc: Client, rx: Receivers, type_: str, *, confidence: str | None = None, within: float = 60
) -> None:
    """Waits until an alert of `type_` (at `confidence`, when given) fired or updated at the HEC
    receiver; on timeout fails with what TAPIO_EVENTS and the receiver hold."""

    def arrived() -> bool:
        return any(
            a["state"] in ("firing", "updated") and a["labels"].get("type") == type_
            and confidence in (None, a["labels"].get("confidence"))
            for a in rx.hec.alerts()
        )  # fmt: skip

    what = f"a {confidence or ''} {type_} alert at the HEC receiver".replace("  ", " ")
    try:
        await eventually(arrived, what, within)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{await why(nc, rx.hec)}") from None


def one_incident(
    report: Report, out: Outcome, scenario: str, *, type_: str, root: events_pb2.Event,
    confidence: str = "high", stored_once: bool = True, **detail: Any,
) -> dict[str, Any]:  # fmt: skip
    """What every real-collector scenario asserts at the end: its report entry (added to `report`)
    has no problem (nothing lost or repeated in the streams or at a receiver, DLQ empty); every
    confirmed event stored once (`stored_once`; a restarted collector re-emits what it listed, which
    the consumers drop); every durable consumer drained; ONE alert id at HEC, rsyslog and
    Alertmanager, of `type_`, fired once, its last revision at `confidence` rooted at `root`.
    Returns that last revision as HEC got it."""
    entry = report.add(out.entry(scenario, root_cause_event_id=root.id, **detail))
    assert not entry.problems(), entry
    if stored_once:
        assert len(out.events) == sum(out.published.values()), out.published
    assert all(v == (0, 0) for v in out.backlog.values()), out.backlog
    assert {a["id"] for a in out.hec_alerts} == {a["id"] for a in out.alerts_of_type(type_)}, out.hec_alerts
    firing = [a for a in out.hec_alerts if a["state"] == "firing"]
    assert len(firing) == 1, out.at_hec  # one incident, one alert id, fired once
    assert {k.split(":")[0] for k in out.at_syslog} == {firing[0]["id"]}, out.at_syslog
    assert set(out.am_active) == {firing[0]["id"]}, out.am_active
    last = max(out.hec_alerts, key=lambda a: int(a["revision"]))
    assert (last["labels"]["confidence"], last["labels"]["root_cause_event_id"]) == (confidence, root.id), (
        last
    )
    return last


CORRELATOR_STATE = "KV_TAPIO_CORRELATOR_STATE"  # the correlator's snapshot bucket (its stream)


async def fresh(nc: Client) -> None:
    """Empties the streams and the correlator's saved state, so a scenario on a cluster another one
    used first (a module's cluster) starts with no incident open: a correlator restoring the state
    of the scenario before would add this one's events to that one's incident."""
    from tests.integration.e2e.clusterflow import STREAMS  # here: clusterflow imports this module

    js = nc.jetstream()
    for stream in (*STREAMS, CORRELATOR_STATE):
        try:
            await js.purge_stream(stream)
        except NotFoundError:
            continue  # no correlator ran on this cluster yet: no bucket
