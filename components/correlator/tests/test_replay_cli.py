"""`tapio-correlator replay`: JSON Lines out, readable table, stdin, bad input, --help."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tapio_common.model.convert import correlation_from_json
from tapio_common.scenarios import load_scenarios
from tapio_correlator.cli import main

CASCADE = load_scenarios(pattern="cascade-00")[0].events_file


def test_replay_writes_final_revisions_as_canonical_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["replay", "--input", str(CASCADE), "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    correlations = [correlation_from_json(line) for line in lines]
    assert len({c.id for c in correlations}) == len(correlations), "one line per correlation"
    assert [c.type for c in correlations if c.score >= 0.5] == ["cascading_failure"]
    assert json.loads(lines[0])["confidence"] == "CONFIDENCE_HIGH"
    assert "1 correlation" in capsys.readouterr().err


def test_replay_without_output_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--input", str(CASCADE), "--quiet"]) == 0
    text = capsys.readouterr().out
    header, row = text.splitlines()[:2]
    assert header.split()[:4] == ["TYPE", "CONF", "SCORE", "ROOT"]
    assert row.startswith("cascading_failure")
    assert "high" in row
    assert "OOM" in row
    assert "1 high, 0 medium, 0 low" in text


def test_replay_reads_stdin_and_writes_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(CASCADE.read_text()))
    assert main(["replay", "--input", "-", "--output", "-", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [correlation_from_json(line).type for line in lines] == ["cascading_failure"]


def test_a_bad_line_is_one_clear_error_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = CASCADE.read_text().splitlines()
    bad.write_text("\n".join([*lines[:3], '{"id": "x", "time": "yesterday"}', *lines[3:]]) + "\n")
    assert main(["replay", "--input", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"tapio-correlator: error: {bad}:4: not a valid Event")


def test_skip_invalid_counts_and_reports_skipped_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = CASCADE.read_text().splitlines()
    bad.write_text("\n".join([*lines[:3], "not json", "", '{"nope": 1}', *lines[3:]]) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["replay", "--input", str(bad), "--output", str(out), "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 invalid line(s)" in err
    assert f"{bad}:4" in err
    assert [correlation_from_json(x).type for x in out.read_text().splitlines()] == ["cascading_failure"]


def test_missing_input_and_bad_slack_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--input", str(tmp_path / "nope.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["replay", "--input", str(CASCADE), "--reorder-slack", "-1"]) == 2


def test_help_describes_flags_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--input", "--output", "--skip-invalid", "--reorder-slack", "examples:", "file:line"):
        assert needle in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "replay" in capsys.readouterr().out


def test_serve_is_the_default_and_refuses_a_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nats-url", "http://nats:4222"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "tapio-correlator: error: bad NATS URL 'http://nats:4222': expected nats|tls|ws|wss://host[:port], e.g. nats://nats:4222"
    ]


def test_serve_help_teaches_the_runner(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for needle in (
        "tapio.dlq.correlator",
        "TAPIO_CORRELATOR_STATE",
        "--reorder-slack",
        "NATS_URL",
        "--provision",
    ):
        assert needle in out
