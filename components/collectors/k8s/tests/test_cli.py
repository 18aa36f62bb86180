"""`tapio-collector-k8s`: --help documents every flag and the environment; bad settings and a bad
kubeconfig are one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from tapio_collector_k8s.cli import build_parser, main
from tapio_collector_k8s.settings import K8sSettings


def test_help_documents_every_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for f in attrs.fields(K8sSettings):
        assert "--" + f.name.replace("_", "-") in text
    for var in ("NATS_URL", "NODE_NAME", "TAPIO_DATA_DIR", "TAPIO_CONFIG", "TAPIO_METRICS_PORT"):
        assert var in text
    assert "spec.nodeName" in text
    assert "Lease" in text
    assert "RBAC" in text


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_kubeconfig(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--kubeconfig", str(tmp_path / "nope"), "--nats-url", "nats://127.0.0.1:1"]) == 2
    assert (
        one_line(capsys)
        == f"tapio-collector-k8s: error: kubeconfig {tmp_path / 'nope'} does not exist or is not a file"
    )


def test_broken_kubeconfig(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kc = tmp_path / "kc.yaml"
    kc.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    assert main(["--kubeconfig", str(kc), "--nats-url", "nats://127.0.0.1:1"]) == 2
    line = one_line(capsys)
    assert line.startswith(f"tapio-collector-k8s: error: bad kubeconfig {kc}: ")


def test_bad_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--renew-interval", "20", "--nats-url", "nats://127.0.0.1:1"]) == 2
    assert one_line(capsys) == (
        "tapio-collector-k8s: error: bad settings in k8s-collector: need renew_interval < renew_deadline < lease_duration"
    )
    assert main(["--page-size", "lots", "--nats-url", "nats://127.0.0.1:1"]) == 2
    assert "--page-size" in one_line(capsys)


def test_unknown_yaml_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("k8s-collector:\n  lease_nmae: x\n")
    assert main(["--config", str(conf), "--nats-url", "nats://127.0.0.1:1"]) == 2
    assert "unknown setting k8s-collector.lease_nmae" in one_line(capsys)
