"""`tapio-admin streams apply|status` against a real server: tables, idempotency, clear errors."""

from __future__ import annotations

import pytest

from tapio_admin.cli import build_parser, main
from tapio_common.nats.embedded import free_port
from tapio_testing.jetstream import JetStreamServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_has_commands_flags_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["streams", "apply", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--replicas",
        "--dry-run",
        "--nats-url",
        "NATS_URL",
        "examples:",
        "tapio-admin streams apply",
    ):
        assert text in out


def test_without_a_nats_url_it_says_it_needs_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    code, out, err = run(capsys, "streams", "status")
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "tapio-admin: error: tapio-admin manages a real NATS server: set NATS_URL or --nats-url (e.g. nats://nats:4222)"
    ]


def test_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "streams", "apply", "--nats-url", url)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"cannot reach NATS at {url}" in err


def test_apply_is_idempotent_and_status_shows_the_streams(
    capsys: pytest.CaptureFixture[str], jetstream: JetStreamServer
) -> None:
    url = jetstream.url
    code, out, _ = run(capsys, "streams", "apply", "--nats-url", url, "--dry-run")
    assert code == 0
    assert out.count("would create") == 9  # 8 rows and the summary
    code, out, _ = run(capsys, "streams", "apply", "--nats-url", url, "--limits-scale", "0.001")
    assert code == 0
    assert "create 8" in out.splitlines()[-1]
    code, out, _ = run(capsys, "streams", "apply", "--nats-url", url, "--limits-scale", "0.001")
    assert out.splitlines()[-1] == "unchanged 8"
    code, out, _ = run(capsys, "streams", "apply", "--nats-url", url, "--limits-scale", "0.002")
    assert "max_msgs: 10000 -> 20000" in out
    assert out.splitlines()[-1] == "update 1, unchanged 7"
    code, out, _ = run(capsys, "streams", "status", "--nats-url", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["STREAM", "MESSAGES", "BYTES"]
    assert lines[1].split()[:7] == ["TAPIO_EVENTS", "0", "0", "B", "file", "1", "correlator"]
    assert any(line.split() == ["pipeline", "0", "0", "0"] for line in lines)
    assert any(line.startswith("TAPIO_DLQ") for line in lines)


def test_replicas_3_on_one_server_and_missing_streams(
    capsys: pytest.CaptureFixture[str], jetstream: JetStreamServer
) -> None:
    code, out, _ = run(capsys, "streams", "status", "--nats-url", jetstream.url)
    assert code == 0
    assert "(missing: run `tapio-admin streams apply`)" in out
    code, _, err = run(capsys, "streams", "apply", "--nats-url", jetstream.url, "--replicas", "3")
    assert code == 1
    assert "single server takes --replicas 1" in err
    assert len(err.strip().splitlines()) == 1
