"""Golden tests of the encoders: every escaping case of the formats, byte for byte."""

from __future__ import annotations

import json

from tapio_common.model import AlertState, Severity
from tapio_exporters.encoders.alertmanager import (
    active_filter,
    am_alert,
    held_revisions,
    label_name,
    retirements,
    to_look_up,
)
from tapio_exporters.encoders.cef import CefOptions, cef_line, escape_extension, escape_header
from tapio_exporters.encoders.console import console_line
from tapio_exporters.encoders.document import epoch_seconds_text, rfc3339
from tapio_exporters.encoders.ecs import bulk_body, ecs_document
from tapio_exporters.encoders.hec import HecOptions, hec_batch, hec_event
from tapio_exporters.encoders.syslog import (
    SyslogOptions,
    header_field,
    octet_counted,
    sd_name,
    sd_value,
    syslog_message,
)
from tapio_exporters.encoders.webhook import signature, signed_headers, verify, webhook_body
from tapio_testing.alerts import T0, tricky


def test_times() -> None:
    assert rfc3339(T0) == "2025-12-01T09:06:40.250Z"
    assert rfc3339(T0, 6) == "2025-12-01T09:06:40.250000Z"
    assert rfc3339(T0 + 1234, 9) == "2025-12-01T09:06:40.250001234Z"
    assert rfc3339(T0, 0) == "2025-12-01T09:06:40Z"
    assert epoch_seconds_text(1_433_188_255_500_000_000) == "1433188255.500"
    assert epoch_seconds_text(5_000_000) == "0.005"


# --- HEC ------------------------------------------------------------------------------------


def test_hec_event_golden() -> None:
    raw = hec_event(tricky(), HecOptions(host="exp-1", index="alerts"))
    assert raw.startswith(
        b'{"time":1764580000.250,"host":"exp-1","source":"tapio","sourcetype":"_json","index":"alerts",'
    )
    doc = json.loads(raw)
    assert doc["time"] == 1764580000.25
    assert doc["event"]["title"] == 'Cascading failure: a|b\\c "q" ]x'
    assert doc["event"]["description"] == "line1 k=v\\\nline2 \u00fcml\u00e4ut \u2603"
    assert doc["event"]["state"] == "firing"
    assert doc["event"]["revision"] == 2
    assert doc["fields"] == {
        "alert_id": "a1b2c3", "state": "firing", "revision": "2", "severity": "critical",
        "component": "check-out", "correlation_id": "corr-1",
    }  # fmt: skip
    # escapes are JSON's: quote, backslash and newline escaped, UTF-8 kept as is
    assert b'"title":"Cascading failure: a|b\\\\c \\"q\\" ]x"' in raw
    assert '"description":"line1 k=v\\\\\\nline2 \u00fcml\u00e4ut \u2603"'.encode() in raw


def test_hec_event_control_characters_are_escaped() -> None:
    raw = hec_event(tricky(title="bell\x07tab\t"), HecOptions(sourcetype="", source=""))
    assert b'"title":"bell\\u0007tab\\t"' in raw
    assert b'"sourcetype"' not in raw
    assert b'"source"' not in raw


def test_hec_batch_is_concatenated_objects_not_an_array() -> None:
    body = hec_batch([tricky(), tricky(AlertState.UPDATED, revision=3)], HecOptions())
    assert not body.startswith(b"[")
    docs = [json.loads(line) for line in body.split(b"\n")]
    assert [d["event"]["state"] for d in docs] == ["firing", "updated"]


# --- ECS / _bulk ----------------------------------------------------------------------------


def test_ecs_document_golden() -> None:
    doc = ecs_document(tricky(AlertState.RESOLVED, ends_at=T0, time=T0))
    assert doc["event"] == {
        "kind": "alert", "category": ["process", "host"], "type": ["end"], "severity": 99,
        "id": "a1b2c3", "created": "2025-12-01T09:06:40.250Z", "start": "2025-12-01T09:05:40.250Z",
        "dataset": "tapio.alerts", "provider": "tapio", "reason": "line1 k=v\\\nline2 \u00fcml\u00e4ut \u2603",
        "risk_score": 93.0, "end": "2025-12-01T09:06:40.250Z", "duration": 60_000_000_000,
    }  # fmt: skip
    assert doc["@timestamp"] == "2025-12-01T09:06:40.250Z"
    assert doc["orchestrator"] == {"type": "kubernetes", "namespace": "shop"}
    assert doc["host"] == {"name": "node-1"}
    assert doc["service"] == {"name": "check out"}
    assert doc["rule"] == {
        "id": "cascading_failure",
        "name": "Cascading failure",
        "ruleset": "tapio-correlation",
    }
    assert doc["tapio"]["alert"] == {
        "id": "a1b2c3", "state": "resolved", "revision": 2, "severity": "critical", "component": "check-out",
        "runbook_url": "https://runbooks.example/cascading_failure",
    }  # fmt: skip
    assert doc["tapio"]["correlation"]["id"] == "corr-1"
    assert doc["labels"] == {}  # the known context went to ECS fields, not labels


def test_ecs_labels_have_no_dots_and_firing_has_no_end() -> None:
    doc = ecs_document(tricky(labels={"team.name": "payments", "type": "crash_loop"}))
    assert doc["labels"] == {"team_name": "payments"}
    assert "end" not in doc["event"]
    assert "duration" not in doc["event"]
    assert doc["event"]["type"] == ["start"]
    assert doc["event"]["category"] == ["process"]


def test_bulk_body_uses_alert_id_and_a_growing_version() -> None:
    body = bulk_body([tricky(), tricky(AlertState.RESOLVED, ends_at=T0)], "tapio-alerts")
    lines = body.decode().split("\n")
    assert lines[-1] == ""
    assert len(lines) == 5
    assert (
        lines[0]
        == '{"index":{"_index":"tapio-alerts","_id":"a1b2c3","version":9,"version_type":"external_gte"}}'
    )
    assert json.loads(lines[2])["index"]["version"] == 11
    assert json.loads(lines[1])["tapio"]["alert"]["state"] == "firing"


# --- CEF ------------------------------------------------------------------------------------


def test_cef_header_escapes_pipe_and_backslash() -> None:
    assert escape_header("a|b\\c", 63) == "a\\|b\\\\c"
    assert escape_header("two\nlines", 63) == "two lines"
    assert escape_header("x" * 70, 63) == "x" * 63
    assert escape_header("|" * 70, 63) == "\\|" * 63  # cut before escaping: no half escape


def test_cef_extension_escapes_equals_backslash_newline() -> None:
    assert escape_extension("k=v") == "k\\=v"
    assert escape_extension("a\\b") == "a\\\\b"
    assert escape_extension("l1\nl2\r\nl3\rl4") == "l1\\nl2\\nl3\\rl4"
    assert escape_extension("pipe | and space stay") == "pipe | and space stay"
    assert escape_extension("\u00fcml\u00e4ut \u2603") == "\u00fcml\u00e4ut \u2603"


def test_cef_line_golden() -> None:
    line = cef_line(tricky(), CefOptions(vendor="Ta|pio", product="Tapio", version="1.0"))
    assert line == (
        'CEF:0|Ta\\|pio|Tapio|1.0|cascading_failure|Cascading failure: a\\|b\\\\c "q" ]x|9|'
        "rt=1764580000250 externalId=a1b2c3 act=firing cat=cascading_failure "
        "msg=line1 k\\=v\\\\\\nline2 \u00fcml\u00e4ut \u2603 dvchost=node-1 "
        "cs1Label=component cs1=check-out cs2Label=correlationId cs2=corr-1 cs3Label=namespace cs3=shop "
        "cs4Label=runbook cs4=https://runbooks.example/cascading_failure cs5Label=confidence cs5=high "
        "cn1Label=revision cn1=2"
    )


def test_cef_empty_extension_and_severity_scale() -> None:
    line = cef_line(tricky(severity=Severity.WARNING), CefOptions(), extension=[])
    assert line.endswith("|5|")
    assert cef_line(tricky(severity=Severity.INFO), CefOptions(), extension=[]).endswith("|3|")


def test_cef_name_is_cut_to_512() -> None:
    line = cef_line(tricky(title="n" * 600), CefOptions(), extension=[])
    assert line.split("|")[5] == "n" * 512


# --- RFC 5424 -------------------------------------------------------------------------------


def test_syslog_message_golden() -> None:
    raw = syslog_message(tricky(), SyslogOptions(hostname="exp-1", procid="42"))
    assert raw.decode() == (
        "<130>1 2025-12-01T09:06:40.250000Z exp-1 tapio 42 alert "
        '[tapio@32473 id="a1b2c3" state="firing" revision="2" severity="critical" component="check-out" '
        'correlation="corr-1" namespace="shop"] '
        '\ufeffCascading failure: a|b\\c "q" ]x: line1 k=v\\\nline2 \u00fcml\u00e4ut \u2603'
    )


def test_syslog_header_fields_and_nilvalue() -> None:
    assert header_field("", 48) == "-"
    assert header_field("host name\u00e9", 255) == "host_name_"
    assert header_field("a" * 60, 48) == "a" * 48
    raw = syslog_message(tricky(), SyslogOptions(hostname="", app_name="tapio", procid="")).decode()
    assert raw.startswith("<130>1 2025-12-01T09:06:40.250000Z - tapio - alert [")


def test_syslog_structured_data_escaping() -> None:
    assert sd_value('say "hi" \\ [x]') == 'say \\"hi\\" \\\\ [x\\]'
    assert sd_name('a b=c]d"e' + "x" * 40) == "a_b_c_d_e" + "x" * 23
    raw = syslog_message(tricky(component='c"]\\'), SyslogOptions(hostname="h")).decode()
    assert 'component="c\\"\\]\\\\"' in raw


def test_syslog_priority_from_facility_and_severity() -> None:
    assert syslog_message(tricky(severity=Severity.INFO), SyslogOptions(facility=1)).startswith(b"<14>1 ")
    assert syslog_message(tricky(severity=Severity.WARNING), SyslogOptions(facility=23)).startswith(
        b"<188>1 "
    )


def test_cef_inside_syslog_and_octet_counting() -> None:
    cef = cef_line(tricky(), CefOptions(), extension=[])
    raw = syslog_message(tricky(), SyslogOptions(hostname="h"), msg=cef, msgid="cef")
    assert raw.endswith(b"] " + cef.encode())
    assert b"\xef\xbb\xbf" not in raw  # CEF goes without the BOM
    framed = octet_counted("é".encode())
    assert framed == b"2 \xc3\xa9"  # octets, not characters


# --- Alertmanager ---------------------------------------------------------------------------


def test_alertmanager_alert_golden() -> None:
    firing = am_alert(tricky())
    assert firing == {
        "labels": {
            "alertname": "TapioCascadingFailure", "alert_id": "a1b2c3", "severity": "critical",
            "component": "check-out", "namespace": "shop", "node": "node-1", "service": "check out",
            "type": "cascading_failure",
        },
        "annotations": {
            "summary": 'Cascading failure: a|b\\c "q" ]x', "description": "line1 k=v\\\nline2 \u00fcml\u00e4ut \u2603",
            "revision": "2", "state": "firing", "correlation_id": "corr-1",
            "runbook_url": "https://runbooks.example/cascading_failure",
            "event_starts_at": "2025-12-01T09:05:40.250Z",
        },
        "startsAt": "2025-12-01T09:05:40.250Z",
    }  # fmt: skip
    done = am_alert(tricky(AlertState.RESOLVED, revision=3, ends_at=T0))
    assert done["labels"] == firing["labels"]  # the same alert for Alertmanager
    assert done["endsAt"] == "2025-12-01T09:06:40.250Z"
    assert done["annotations"]["event_ends_at"] == "2025-12-01T09:06:40.250Z"


def test_alertmanager_times_ahead_of_our_clock_are_clamped_to_now() -> None:
    # The node that saw the incident runs 1 h ahead of the exporter: Alertmanager would refuse a
    # firing alert starting after now + resolve_timeout, and keep a resolved one active until endsAt.
    ahead = 3600 * 10**9
    now = T0 - ahead
    firing = am_alert(tricky(), now_ns=now)
    assert firing["startsAt"] == rfc3339(now)
    assert firing["annotations"]["event_starts_at"] == "2025-12-01T09:05:40.250Z"  # the event's own time
    done = am_alert(tricky(AlertState.RESOLVED, revision=3, ends_at=T0), now_ns=now)
    assert done["startsAt"] == done["endsAt"] == rfc3339(now)  # ends no earlier than it starts
    assert done["annotations"]["event_ends_at"] == "2025-12-01T09:06:40.250Z"
    behind = am_alert(tricky(AlertState.RESOLVED, revision=3, ends_at=T0), now_ns=T0 + ahead)
    assert (behind["startsAt"], behind["endsAt"]) == ("2025-12-01T09:05:40.250Z", "2025-12-01T09:06:40.250Z")


def test_label_sets_an_earlier_revision_left_active_are_retired() -> None:
    # Revision 1 was a medium node_failure (severity error); revision 2 is high (critical).
    now = am_alert(tricky(AlertState.UPDATED, revision=3))
    old = {**now, "labels": {**now["labels"], "severity": "error"}}
    other = am_alert(tricky(id="ffff"))
    retired = retirements([tricky(AlertState.UPDATED, revision=3)], [now, old, other], T0)
    assert retired == [{"labels": old["labels"], "annotations": old["annotations"],
                        "startsAt": old["startsAt"], "endsAt": "2025-12-01T09:06:40.250Z"}]  # fmt: skip
    known = {"a1b2c3", "b2"}
    assert to_look_up([tricky(revision=1), tricky(AlertState.UPDATED, id="b2", revision=2)], known) == ["b2"]
    assert to_look_up([tricky(revision=1, id="new")], known) == ["new"]  # no revision of it known
    assert active_filter(["a1", "b2"]) == 'alert_id=~"a1|b2"'


def test_held_revisions_are_read_from_the_annotations() -> None:
    held = am_alert(tricky(AlertState.UPDATED, revision=3))
    foreign = {"labels": {"alertname": "HighLoad"}, "annotations": {}}
    garbled = {"labels": {"alert_id": "x"}, "annotations": {"revision": "three", "state": "updated"}}
    assert held_revisions([held, foreign, garbled]) == [("a1b2c3", (3, 2))]


def test_label_names() -> None:
    assert label_name("team.name") == "team_name"
    assert label_name("9lives") == "_9lives"


# --- webhook --------------------------------------------------------------------------------


def test_webhook_signature_golden_and_verify() -> None:
    body = webhook_body([tricky()])
    assert json.loads(body)["alerts"][0]["id"] == "a1b2c3"
    # HMAC-SHA256("secret", "1700000000.{}") computed independently (openssl dgst -sha256 -hmac secret)
    assert signature(b"secret", 1_700_000_000, b"{}") == (
        "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    )
    headers = signed_headers(b"secret", 1_700_000_000, body)
    assert verify(b"secret", headers, body, now=1_700_000_100)
    assert not verify(b"secret", headers, body, now=1_700_001_000)  # too old: a replay
    assert not verify(b"other", headers, body, now=1_700_000_100)
    assert not verify(b"secret", headers, body + b" ", now=1_700_000_100)


def test_console_line() -> None:
    line = console_line(tricky(AlertState.RESOLVED, ends_at=T0))
    assert line.startswith("2025-12-01T09:06:40Z RESOLVED critical Cascading failure: a|b\\c")
    assert "[rev 2, alert a1b2c3] line1 k=v\\" in line
