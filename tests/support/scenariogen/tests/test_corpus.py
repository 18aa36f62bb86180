"""Corpus writing and the scenariogen command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tapio_common.cli import run_cli
from tapio_common.model.fast import event_from_pb
from tapio_common.scenarios import load_scenario
from tapio_scenariogen import generate, write_corpus
from tapio_scenariogen.cli import PROG, main
from tapio_scenariogen.errors import ScenarioError


def test_write_corpus_writes_public_style_folders(tmp_path: Path) -> None:
    written = write_corpus(tmp_path, range(2), ["crash_loop", "near_miss"])
    assert [s.name for s in written] == [generate(s.family, s.seed).name for s in written]
    for s in written:
        loaded = load_scenario(tmp_path / s.name)
        assert [event_from_pb(ev) for ev in loaded.events] == list(s.events)
        assert list(loaded.expected) == list(s.expected)
    index = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert [row["name"] for row in index] == [s.name for s in written]


def test_all_variants_and_only_variants(tmp_path: Path) -> None:
    written = write_corpus(tmp_path / "a", [5], ["node_failure"], all_variants=True)
    assert sorted(s.variant for s in written) == ["evictions", "no_pods", "with_pods"]
    only = write_corpus(tmp_path / "b", [5, 6], ["node_failure", "crash_loop"], only_variants=["high"])
    assert [s.name for s in only] == ["crash_loop-high-5", "crash_loop-high-6"]
    with pytest.raises(ScenarioError, match="unknown variant"):
        write_corpus(tmp_path / "c", [1], ["crash_loop"], only_variants=["with_pods"])


def test_command_writes_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--out", str(tmp_path), "--count", "2", "--seed", "40", "--family", "deployment_failure"]
    assert run_cli(PROG, main, argv) == 0
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2
    assert all(f.startswith("deployment_failure-") and f.endswith(("-40", "-41")) for f in folders)
    assert "wrote 2 scenarios (2 expected correlations)" in capsys.readouterr().out


def test_command_help_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--all-variants" in text
    assert "cascading_failure" in text
    assert "near_miss" in text
    assert run_cli(PROG, main, ["--out", str(tmp_path), "--count", "0"]) == 1
    assert capsys.readouterr().err.strip() == "scenariogen: error: --count must be at least 1"
    assert run_cli(PROG, main, ["--out", str(tmp_path), "--family", "mixed", "--variant", "bogus"]) == 1
    assert "unknown variant(s) for mixed: bogus" in capsys.readouterr().err


def test_files_are_byte_identical_in_every_process(tmp_path: Path) -> None:
    """Same seed, other hash seed (map order), other process: the very same bytes."""
    code = (
        "import sys; from tapio_scenariogen import write_corpus; "
        "write_corpus(sys.argv[1], [3], ['node_failure', 'mixed'], all_variants=True)"
    )
    for hash_seed in ("1", "4"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(sys.path)}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], env=env, check=True)
    first = sorted((tmp_path / "1").rglob("*.jsonl"))
    assert len(first) > 10
    for path in first:
        assert path.read_bytes() == (tmp_path / "4" / path.relative_to(tmp_path / "1")).read_bytes(), (
            path.name
        )
