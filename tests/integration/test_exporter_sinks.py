"""Exporter sinks against real receivers: rsyslog (TCP, TLS through gnutls, UDP), Alertmanager,
and the protocol-faithful HEC and `_bulk` servers; each reads back what arrived and checks it."""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tapio_common.model import AlertState, Severity
from tapio_exporters.encoders.alertmanager import am_alert
from tapio_exporters.encoders.cef import CefOptions
from tapio_exporters.encoders.document import rfc3339
from tapio_exporters.encoders.syslog import SyslogOptions
from tapio_exporters.errors import RejectedError, SinkConfigError, SinkError
from tapio_exporters.sinks.base import TlsOptions
from tapio_exporters.sinks.elastic import ElasticSettings, ElasticSink
from tapio_exporters.sinks.hec import HecSettings, HecSink
from tapio_exporters.sinks.http_json import (
    AlertmanagerSettings,
    AlertmanagerSink,
    WebhookSettings,
    WebhookSink,
)
from tapio_exporters.sinks.syslog import SyslogSettings, SyslogSink
from tapio_testing.alerts import T0, tricky
from tapio_testing.receivers.alertmanager import Alertmanager
from tapio_testing.receivers.bulk import BulkReceiver
from tapio_testing.receivers.certs import make_certs
from tapio_testing.receivers.hec import HecReceiver, parse_concatenated
from tapio_testing.receivers.httpbase import Receiver, Reply
from tapio_testing.receivers.rsyslog import Rsyslog

pytestmark = pytest.mark.anyio

# --- parsers of what the receivers wrote (independent of the encoders) --------------------

RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) (?P<msg>.*)$",
    re.S,
)
SD_PARAM = re.compile(r'(\S+?)="((?:[^"\\]|\\.)*)"')


def parse_5424(raw: str) -> dict[str, Any]:
    m = RFC5424.match(raw)
    assert m, f"not RFC 5424: {raw!r}"
    sd = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_PARAM.findall(m["sd"])}
    return {**m.groupdict(), "params": sd}


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    assert text.startswith("CEF:0|"), text
    header: list[str] = []
    cur, i = "", 0
    while len(header) < 7:
        c = text[i]
        if c == "\\":
            cur += text[i + 1]
            i += 2
            continue
        if c == "|":
            header.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    ext = text[i:]
    keys = list(re.finditer(r"(?:^| )([A-Za-z0-9]+)=", ext))
    pairs: dict[str, str] = {}
    for n, k in enumerate(keys):
        end = keys[n + 1].start() if n + 1 < len(keys) else len(ext)
        value = ext[k.end() : end]
        pairs[k[1]] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), value)
    return header, pairs


def parse_rfc3339(text: str) -> float:
    """Alertmanager's timestamp (RFC 3339, nanoseconds or fewer digits) as epoch seconds."""
    day, _, rest = text.partition("T")
    clock = rest.rstrip("Z").split("+")[0]
    whole, _, frac = clock.partition(".")
    base = datetime.fromisoformat(f"{day}T{whole}+00:00").timestamp()
    return base + (float(f"0.{frac}") if frac else 0.0)


def unescape_rsyslog(text: str) -> str:
    return text.replace("#012", "\n")


# --- syslog -----------------------------------------------------------------------------------


async def test_rfc5424_over_tcp_arrives_intact(tmp_path: Path) -> None:
    alerts = [tricky(revision=r) for r in range(1, 6)]
    with Rsyslog(tmp_path / "rs") as rs:
        sink = SyslogSink(
            "syslog", SyslogSettings("127.0.0.1", rs.tcp_port, "tcp", syslog=SyslogOptions(hostname="exp-1"))
        )
        await sink.start()
        await sink.deliver(alerts)  # returns once rsyslog read the whole batch
        lines = rs.wait_lines(5)
    assert len(lines) == 5
    got = parse_5424(lines[0]["raw"])
    assert got["pri"] == "130"
    assert got["ts"] == "2025-12-01T09:06:40.250000Z"
    assert (got["host"], got["app"], got["msgid"]) == ("exp-1", "tapio", "alert")
    assert got["params"]["id"] == "a1b2c3"
    assert got["params"]["component"] == "check-out"
    assert unescape_rsyslog(str(got["msg"])) == "\ufeff" + f"{alerts[0].title}: {alerts[0].description}"
    assert [parse_5424(ln["raw"])["params"]["revision"] for ln in lines] == ["1", "2", "3", "4", "5"]
    # rsyslog's own RFC 5424 parser agrees
    assert (lines[0]["app"], lines[0]["msgid"], lines[0]["protocol"]) == ("tapio", "alert", "1")


async def test_cef_over_tls_is_parsed_back(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki")
    alert = tricky(component='c"]\\x')
    with Rsyslog(tmp_path / "rs", tls=certs) as rs:
        settings = SyslogSettings(
            "127.0.0.1", rs.tcp_port, "tls", format="cef", cef=CefOptions(vendor="Ta|pio"),
            tls=TlsOptions(ca=str(certs.ca)), syslog=SyslogOptions(hostname="exp-1"),
        )  # fmt: skip
        sink = SyslogSink("cef", settings)
        await sink.start()
        await sink.deliver([alert, tricky(AlertState.RESOLVED, ends_at=T0)])
        lines = rs.wait_lines(2)
    assert len(lines) == 2
    outer = parse_5424(lines[0]["raw"])
    assert outer["msgid"] == "cef"
    assert outer["params"]["component"] == 'c"]\\x'
    header, ext = parse_cef(unescape_rsyslog(str(outer["msg"])))
    assert header == ["CEF:0", "Ta|pio", "Tapio", "0.1", "cascading_failure", alert.title, "9"]
    assert ext["msg"] == alert.description
    assert ext["externalId"] == "a1b2c3"
    assert ext["act"] == "firing"
    assert ext["cs1"] == 'c"]\\x'
    assert parse_cef(unescape_rsyslog(str(parse_5424(lines[1]["raw"])["msg"])))[1]["act"] == "resolved"


async def test_tls_with_the_wrong_ca_is_refused(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki")
    other = make_certs(tmp_path / "other")
    with Rsyslog(tmp_path / "rs", tls=certs) as rs:
        sink = SyslogSink(
            "tls", SyslogSettings("127.0.0.1", rs.tcp_port, "tls", tls=TlsOptions(ca=str(other.ca)))
        )
        await sink.start()
        with pytest.raises(SinkError, match=r"broke the connection|certificate"):
            await sink.deliver([tricky()])


async def test_udp_datagrams(tmp_path: Path) -> None:
    with Rsyslog(tmp_path / "rs") as rs:
        sink = SyslogSink("udp", SyslogSettings("127.0.0.1", rs.udp_port, "udp"))
        await sink.start()
        await sink.deliver([tricky(revision=r) for r in range(3)])
        await sink.close()
        lines = rs.wait_lines(3, timeout=10)
    assert sorted(parse_5424(ln["raw"])["params"]["revision"] for ln in lines) == ["0", "1", "2"]
    assert {ln["input"] for ln in lines} == {"udp"}


async def test_syslog_receiver_down_is_a_retry(tmp_path: Path) -> None:
    rs = Rsyslog(tmp_path / "rs")  # never started
    sink = SyslogSink("down", SyslogSettings("127.0.0.1", rs.tcp_port, "tcp"))
    await sink.start()
    with pytest.raises(SinkError, match="cannot connect"):
        await sink.deliver([tricky()])


def test_unreadable_ca_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SinkConfigError, match=r"sink s: cannot use CA bundle .*missing\.pem"):
        TlsOptions(ca=str(tmp_path / "missing.pem")).context("s")


# --- Alertmanager -----------------------------------------------------------------------------


async def test_alertmanager_sees_firing_then_resolved(tmp_path: Path) -> None:
    now = time.time_ns()
    with Alertmanager(tmp_path / "am") as am:
        sink = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await sink.start()
        await sink.deliver([tricky(starts_at=now - 60 * 10**9, time=now)])
        active = am.alerts()
        assert len(active) == 1
        assert active[0]["labels"]["alert_id"] == "a1b2c3"
        assert active[0]["labels"]["alertname"] == "TapioCascadingFailure"
        assert active[0]["annotations"]["revision"] == "2"
        assert active[0]["status"]["state"] in ("active", "unprocessed")
        await sink.deliver([tricky(AlertState.UPDATED, revision=3, starts_at=now - 60 * 10**9, time=now)])
        assert [a["annotations"]["revision"] for a in am.alerts()] == ["3"]  # same alert, updated
        await sink.deliver(
            [tricky(AlertState.RESOLVED, revision=3, starts_at=now - 60 * 10**9, ends_at=now - 10**9)]
        )
        assert am.alerts() == []  # resolved: no longer active
        await sink.close()


async def test_alertmanager_keeps_one_alert_when_a_revision_changes_its_labels(tmp_path: Path) -> None:
    # A node_failure first medium (severity error), then high (critical): the severity label changes,
    # which Alertmanager would hold as a second alert; the sink ends the old label set.
    now = time.time_ns()
    start = now - 60 * 10**9
    node = {"type": "node_failure", "node": "node-1"}
    with Alertmanager(tmp_path / "am") as am:
        sink = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await sink.start()
        await sink.deliver(
            [tricky(revision=1, severity=Severity.ERROR, labels=node, starts_at=start, time=now)]
        )
        assert [a["labels"]["severity"] for a in am.alerts()] == ["error"]
        await sink.deliver([tricky(AlertState.UPDATED, revision=2, labels=node, starts_at=start, time=now)])
        active = am.alerts()
        assert [(a["labels"]["severity"], a["annotations"]["revision"]) for a in active] == [
            ("critical", "2")
        ]
        await sink.deliver([tricky(AlertState.UPDATED, revision=3, labels=node, starts_at=start, time=now)])
        assert [a["annotations"]["revision"] for a in am.alerts()] == ["3"]  # same labels: nothing to end
        await sink.close()


async def test_alertmanager_never_goes_back_to_an_older_revision(tmp_path: Path) -> None:
    # After a NATS node is lost an ack can be lost too: revision 1 comes again after revision 2.
    now = time.time_ns()
    start = now - 60 * 10**9
    with Alertmanager(tmp_path / "am") as am:
        sink = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await sink.start()
        await sink.deliver([tricky(revision=1, starts_at=start, time=now)])
        await sink.deliver([tricky(AlertState.UPDATED, revision=2, starts_at=start, time=now)])
        stale = await sink.deliver([tricky(revision=1, starts_at=start, time=now)])
        assert [a["annotations"]["revision"] for a in am.alerts()] == ["2"]
        assert stale == 1  # acked, counted as dropped stale_revision by the delivery
        stale = await sink.deliver([tricky(AlertState.UPDATED, revision=2, starts_at=start, time=now),
                                    tricky(revision=1, starts_at=start, time=now)])  # fmt: skip
        assert stale == 2
        await sink.close()
        # a restarted exporter knows no revision: it reads back the one Alertmanager holds
        again = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await again.start()
        stale = await again.deliver([tricky(revision=1, starts_at=start, time=now)])
        assert [a["annotations"]["revision"] for a in am.alerts()] == ["2"]
        assert stale == 1
        await again.deliver([tricky(AlertState.RESOLVED, revision=2, starts_at=start, ends_at=now - 10**9)])
        stale = await again.deliver([tricky(AlertState.UPDATED, revision=2, starts_at=start, time=now)])
        assert am.alerts() == []  # resolved stays resolved
        assert stale == 1
        await again.close()


async def test_alertmanager_shows_an_alert_whose_node_clock_runs_ahead(tmp_path: Path) -> None:
    # The incident's events come from a node whose clock is 1 h ahead of the exporter's (and of
    # Alertmanager's): posted as it is, Alertmanager refuses the alert (it would start after it ends,
    # now + resolve_timeout) and it would be lost to the dead letters. The sink clamps it to its now.
    ahead = time.time_ns() + 3600 * 10**9
    firing = tricky(starts_at=ahead - 60 * 10**9, time=ahead)
    with Alertmanager(tmp_path / "am") as am:
        async with httpx.AsyncClient() as client:  # the alert as the node's clock has it: refused
            raw = await client.post(f"{am.url}/api/v2/alerts", json=[am_alert(firing)])
        assert raw.status_code == 400, raw.text
        sink = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await sink.start()
        await sink.deliver([firing])
        [shown] = am.alerts()
        assert shown["annotations"]["revision"] == "2"
        assert shown["annotations"]["event_starts_at"] == rfc3339(ahead - 60 * 10**9)  # its own time kept
        assert parse_rfc3339(shown["startsAt"]) <= time.time() + 1
        await sink.deliver(
            [tricky(AlertState.RESOLVED, revision=3, starts_at=ahead - 60 * 10**9, ends_at=ahead)]
        )
        assert am.alerts() == []  # resolved now, not an hour later by the node's clock
        await sink.close()


async def test_alertmanager_rejects_a_bad_alert(tmp_path: Path) -> None:
    with Alertmanager(tmp_path / "am") as am:
        sink = AlertmanagerSink("am", AlertmanagerSettings(am.url))
        await sink.start()
        # endsAt before startsAt: Alertmanager answers 400, which no retry can fix
        with pytest.raises(RejectedError, match="HTTP 400"):
            await sink.deliver([tricky(AlertState.RESOLVED, starts_at=T0, ends_at=T0 - 10**12)])


# --- Splunk HEC -------------------------------------------------------------------------------


async def test_hec_gzip_token_channel_and_acks() -> None:
    with HecReceiver(token="t0k", ack=True) as hec:
        sink = HecSink("hec", HecSettings(hec.url, "t0k", ack=True, max_batch_bytes=5_000))
        await sink.start()
        alerts = [tricky(revision=r) for r in range(20)]
        await sink.deliver(alerts)
        await sink.close()
    assert hec.requests > 1  # batched by size
    assert hec.acked_polls >= 1
    assert sorted(hec.arrivals()) == sorted(("a1b2c3", r, "firing") for r in range(20))
    assert hec.alerts()[0]["description"] == alerts[0].description


async def _fails_then_delivers(
    hec: HecReceiver, settings: HecSettings, attribute: str, error: str, failing: bool
) -> None:
    """With `hec.<attribute>` set to `failing` a delivery raises SinkError matching `error`; once it
    is set back, the same alert is delivered."""
    sink = HecSink("hec", settings)
    await sink.start()
    setattr(hec, attribute, failing)
    with pytest.raises(SinkError, match=error):
        await sink.deliver([tricky()])
    setattr(hec, attribute, not failing)
    await sink.deliver([tricky()])
    await sink.close()


async def test_hec_busy_is_retried_and_bad_token_is_held() -> None:
    with HecReceiver(token="t0k", ack=True) as hec:
        await _fails_then_delivers(hec, HecSettings(hec.url, "t0k", ack=True), "busy", "busy", True)
        wrong = HecSink("hec2", HecSettings(hec.url, "wrong"))
        await wrong.start()
        with pytest.raises(SinkError, match="HTTP 403"):
            await wrong.deliver([tricky()])
    assert hec.arrivals() == {("a1b2c3", 2, "firing"): 1}


async def test_hec_receiver_down_then_back() -> None:
    hec = HecReceiver(token="t0k", ack=True)
    sink = HecSink("hec", HecSettings(hec.url, "t0k", ack=True))
    await sink.start()
    with pytest.raises(SinkError):
        await sink.deliver([tricky()])
    with hec:
        await sink.deliver([tricky()])
    assert len(hec.alerts()) == 1


class _BusyOnce(HecReceiver):
    """Answers 503 busy to its second event request, once (HEC unavailable in the middle of a batch)."""

    tripped = False

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path.startswith("/services/collector/event") and self.requests == 1 and not self.tripped:
            self.tripped = True
            return Reply(503, {"text": "Server is busy", "code": 9})
        return super().handle(method, path, headers, body)


async def test_hec_never_sends_again_what_it_accepted_while_its_ack_may_come() -> None:
    with _BusyOnce(token="t0k", ack=True) as hec:
        sink = HecSink("hec", HecSettings(hec.url, "t0k", ack=True, max_batch_bytes=3_000))
        await sink.start()
        alerts = [tricky(revision=r) for r in range(8)]
        with pytest.raises(SinkError, match="busy"):
            await sink.deliver(alerts)  # the first part accepted (its ack not read), the next one 503
        assert hec.requests == 1
        hec.stop()  # then HEC unreachable (its indexer alive: the ack state stays)
        with pytest.raises(SinkError):
            await sink.deliver(alerts)
        hec.start()
        await sink.deliver(alerts)  # the accepted part's ack is polled, only the rest is sent
        await sink.close()
    assert hec.arrivals() == {("a1b2c3", r, "firing"): 1 for r in range(8)}


async def test_hec_sends_again_what_was_not_indexed_within_the_ack_timeout() -> None:
    # at least once: an indexer that lost its acks (restarted) never reports them indexed
    with HecReceiver(token="t0k", ack=True) as hec:
        settings = HecSettings(hec.url, "t0k", ack=True, ack_timeout=0.5)
        await _fails_then_delivers(hec, settings, "indexing", "not acknowledged within", False)
    assert hec.arrivals() == {("a1b2c3", 2, "firing"): 2}


class _RefusesOne(Receiver):
    """A HEC-shaped server answering 400 invalid-event-number for batches holding one bad alert."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = HecReceiver(token="t")

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        events, _ = parse_concatenated(gzip.decompress(body))
        for n, ev in enumerate(events):
            if ev["event"]["revision"] == 7:
                return Reply(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": n})
        return self.inner.handle(method, path, headers, body)


async def test_hec_invalid_event_goes_alone_to_the_dead_letters() -> None:
    with _RefusesOne() as srv:
        sink = HecSink("hec", HecSettings(srv.url, "t"))
        await sink.start()
        with pytest.raises(RejectedError) as info:
            await sink.deliver([tricky(revision=r) for r in range(5, 10)])
    assert info.value.alert_ids == ("a1b2c3",)
    assert sorted(r for _, r, _ in srv.inner.arrivals().elements()) == [5, 6, 8, 9]


async def test_hec_sends_the_requests_after_one_holding_a_refused_event() -> None:
    # a batch larger than max_batch_bytes goes in several requests (two alerts each here); the one
    # holding the bad event goes one by one to name it, and the requests after it still go
    with _RefusesOne() as srv:
        sink = HecSink("hec", HecSettings(srv.url, "t", max_batch_bytes=1_000))
        await sink.start()
        with pytest.raises(RejectedError) as info:
            await sink.deliver([tricky(revision=r) for r in range(5, 13)])
        await sink.close()
    assert info.value.alert_ids == ("a1b2c3",)
    assert sorted(r for _, r, _ in srv.inner.arrivals().elements()) == [5, 6, 8, 9, 10, 11, 12]


# --- Elasticsearch _bulk ----------------------------------------------------------------------


async def test_bulk_replaces_in_place_and_checks_items() -> None:
    with BulkReceiver() as es:
        sink = ElasticSink("es", ElasticSettings(es.url, index="alerts"))
        await sink.start()
        await sink.deliver([tricky(revision=1), tricky(id="other")])
        await sink.deliver([tricky(AlertState.UPDATED, revision=2)])
        await sink.deliver([tricky(revision=1)])  # a stale redelivery: 409, nothing overwritten
        _version, doc = es.docs[("alerts", "a1b2c3")]
        assert doc["tapio"]["alert"]["revision"] == 2
        assert doc["event"]["kind"] == "alert"
        assert len(es.docs) == 2
        es.throttle_next = 1
        with pytest.raises(SinkError, match="1 of 2 documents to retry"):
            await sink.deliver([tricky(revision=3), tricky(id="other", revision=3)])
        await sink.deliver([tricky(revision=3), tricky(id="other", revision=3)])
        es.reject_ids = {"bad"}
        with pytest.raises(RejectedError, match="failed to parse field") as info:
            await sink.deliver([tricky(id="bad"), tricky(revision=4)])
        assert info.value.alert_ids == ("bad",)
        assert es.docs[("alerts", "a1b2c3")][1]["tapio"]["alert"]["revision"] == 4


# --- webhook ----------------------------------------------------------------------------------


class _WebhookReceiver(Receiver):
    def __init__(self, secret: bytes) -> None:
        super().__init__()
        self.secret = secret
        self.bodies: list[dict[str, object]] = []

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        from tapio_exporters.encoders.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

        signed = {TIMESTAMP_HEADER: headers.get(TIMESTAMP_HEADER.lower(), ""),
                  SIGNATURE_HEADER: headers.get(SIGNATURE_HEADER.lower(), "")}  # fmt: skip
        if not verify(self.secret, signed, body, now=int(time.time())):
            return Reply(401, {"error": "bad signature"})
        self.bodies.append(json.loads(body))
        return Reply(204, b"")


async def test_webhook_is_signed() -> None:
    with _WebhookReceiver(b"s3cret") as srv:
        good = WebhookSink("wh", WebhookSettings(f"{srv.url}/hook", secret=b"s3cret"))
        await good.start()
        await good.deliver([tricky()])
        bad = WebhookSink("wh", WebhookSettings(f"{srv.url}/hook", secret=b"guess"))
        await bad.start()
        with pytest.raises(SinkError, match="HTTP 401"):
            await bad.deliver([tricky()])
    assert len(srv.bodies) == 1
