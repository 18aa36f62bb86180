"""The checker on scenario folders: consistent ones pass, a wrong expectation is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tapio_common.cli import run_cli
from tapio_common.scenarios import EXPECTED_FILE, load_scenario, public_root, scenario_folders
from tapio_scenariogen.check import check_folders, main

PUBLIC = public_root()


def test_public_and_generated_folders_are_consistent(tmp_path: Path) -> None:
    assert check_folders(PUBLIC) == {p.name: [] for p in scenario_folders(PUBLIC)}
    assert run_cli("check", main, [str(PUBLIC)]) == 0


def test_a_wrong_expectation_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(PUBLIC / "crash-00", tmp_path / "crash-00")
    shutil.copytree(PUBLIC / "network_unlinked-00", tmp_path / "network_unlinked-00")
    expected_file = tmp_path / "crash-00" / EXPECTED_FILE
    exp = dict(load_scenario(tmp_path / "crash-00").expected[0])
    exp["confidence"] = "medium"
    expected_file.write_text(json.dumps(exp) + "\n")
    found = check_folders(tmp_path)
    assert found["network_unlinked-00"] == []
    assert found["crash-00"] == ["crash_loop: 8 restarts means high, expected says medium"]
    assert run_cli("check", main, [str(tmp_path)]) == 3
    assert "1/2 scenarios consistent" in capsys.readouterr().out
    expected_file.write_text("")
    assert any("stray pattern: 3 restarts" in p for p in check_folders(tmp_path)["crash-00"])
