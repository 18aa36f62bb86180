"""tools/check_repo.py catches what it is for: references outside the repository, protobuf encoded
by hand outside tapio_publisher.wire, and scenario files read without tapio_common.scenarios (each
example below is code that was in the tree before the rule)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_repo", Path(__file__).parents[1] / "check_repo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_repo"] = module
    spec.loader.exec_module(module)
    return module


check_repo = _load()
SHARED = "sha" + "red"
OUTSIDE = f"../{SHARED}/design/CONTRACT.md"  # spelled apart: this file is checked too


def rules(path: str, text: str) -> list[str]:
    return [finding.split(": ")[1] for finding in check_repo.check_file(path, text)]


def test_outside_references_in_any_text_file() -> None:
    assert rules("docs/X.md", f"see {OUTSIDE}\n") == ["outside"]
    assert rules("proto/a.proto", f"// (see {SHARED}/design/CONTRACT.md §1)\n") == ["outside"]
    assert rules("docs/X.md", "a shared subscription, shared/ nothing else\n") == []


@pytest.mark.parametrize(
    "code",
    [
        # a varint encoder and decoder, as the benchmarks and encoder had them
        "def varint(n):\n    while n > 0x7F:\n        out.append((n & 0x7F) | 0x80)\n        n >>= 7\n",
        "n |= (b & 0x7F) << shift\nshift = shift + 7\nx = y >> 7\n",
        "from google.protobuf.internal.encoder import _VarintBytes\n",
        "from tapio_publisher.wire import varint\n",
        "from tapio_publisher import wire\n",
    ],
)
def test_hand_encoding_outside_the_wire_module(code: str) -> None:
    assert "wire" in rules("components/pipeline/src/tapio_pipeline/fast.py", code)


def test_the_wire_module_and_its_users_may() -> None:
    varint = "def varint(n):\n    n >>= 7\n"
    assert rules(check_repo.WIRE_MODULE, varint) == []
    assert (
        rules("components/publisher/src/tapio_publisher/batching.py", "from tapio_publisher import wire\n")
        == []
    )
    assert rules("bench/wire.py", "from tapio_publisher.wire import frame_batch\n") == []
    # not protobuf: a wait status, a UUID version nibble
    assert rules("components/x.py", "sig = status & 0x7F\nb = (d & 0x0F) | 0x80\n") == []


@pytest.mark.parametrize(
    "code",
    [
        'SCENARIOS.glob("*/events.jsonl")\n',
        'lines = (scenarios_dir() / name / "events.jsonl").read_text()\n',
        'CASCADE = public_root() / "cascade-00" / "events.jsonl"\n',
        'P = Path(__file__).parents[1] / "scenarios" / "public" / "cascade-00" / "events.jsonl"\n',
        'shutil.copy(ROOT / "tests/scenarios/public/crash-00/events.jsonl", dst)\n',
        'expected = read_jsonl(folder / "expected.jsonl")\n',
    ],
)
def test_a_second_scenario_reader(code: str) -> None:
    assert "scenarios" in rules("tests/integration/test_x.py", code)


def test_scenario_loader_users_and_other_jsonl_files_pass() -> None:
    ok = (
        'events = load_scenarios(pattern="cascade-00")[0].events\n'
        'feed = tmp_path / "events.jsonl"\n'  # a file of its own, not a scenario folder's
        'help = "--input events.jsonl  the events to replay"\n'
        'def f():\n    """Reads tests/scenarios/public/*/events.jsonl (a docstring)."""\n'
    )
    assert rules("tests/integration/test_x.py", ok) == []
    assert rules(check_repo.SCENARIO_LOADER[0], 'EXPECTED_FILE = "expected.jsonl"\n') == []


def test_main_reports_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("x = y >> 7\n")
    good = tmp_path / "good.md"
    good.write_text("fine\n")
    assert check_repo.main(["check_repo", str(good)]) == 0
    assert check_repo.main(["check_repo", str(good), str(bad)]) == 1
    assert "bad.py:1: wire: varint arithmetic" in capsys.readouterr().err


def test_cited_sections_must_exist() -> None:
    sections = {"CONTRACT.md": {"1", "3"}}
    cite = "CONTRACT.md " + "\u00a7"  # spelled apart: this file is checked too
    assert check_repo.check_file("a.py", f"# see {cite}3\n", sections) == []
    [finding] = check_repo.check_file("a.py", f"# see {cite}7 and\n", sections)
    assert f"citations: {cite}7 is no section" in finding


def test_runtime_targets_do_not_depend_on_test_support() -> None:
    lib = 'py_library(\n    name = "lib",\n    deps = ["//tests/support/testing"],\n)\n'
    test = 'py_pytest(\n    name = "tests",\n    deps = ["//tests/support/testing"],\n)\n'
    assert rules("components/x/BUILD.bazel", lib) == ["test-support"]
    assert rules("components/x/BUILD.bazel", test) == []
    assert rules("bench/BUILD.bazel", lib.replace("lib", "bench")) == []


def test_settings_only_through_the_loader() -> None:
    src = "components/admin/src/tapio_admin/cli.py"
    assert rules(src, 'x = os.environ.get("TAPIO_LOG_LEVEL")\n') == ["config"]
    assert rules(src, 'x = os.getenv("NATS_URL")\ny = os.environ["NODE_NAME"]\n') == ["config", "config"]
    assert rules(src, 'k = os.environ.get("KUBECONFIG")\n') == []
    assert rules("components/common/src/tapio_common/config/common.py", 'os.environ.get("NATS_URL")\n') == []
    assert rules("components/admin/tests/test_x.py", 'os.environ["TAPIO_DATA_DIR"]\n') == []


def test_conflict_markers() -> None:
    marker = "<" * 7
    assert rules("docs/X.md", f"a\n{marker} HEAD\nours\n" + "=" * 7 + "\ntheirs\n" + ">" * 7 + " main\n") == [
        "conflict",
        "conflict",
        "conflict",
    ]
    assert rules("docs/X.md", "Title\n" + "=" * 5 + "\n") == []
