"""`make lint`: one way to do each thing, checked over every file git tracks.

- conflict: no merge conflict marker was committed.
- outside: nothing refers to design files outside the repository (docs/ is the design).
- wire: protobuf is encoded or decoded by hand only in tapio_publisher.wire, the one hot path its
  benchmark justifies (`bazel run //bench:wire`), and its sibling tapio_publisher.k8s_wire (pod
  events, on wire's varints; `bazel run //bench:k8s_collector -- --compare`): no varint arithmetic elsewhere, no
  google.protobuf.internal, and tapio_publisher.wire imported only by the publisher, its tests,
  the pipeline's batch republishing (processor.py) and the benchmarks.
- scenarios: scenario folders (events.jsonl, expected.jsonl) are read only through
  tapio_common.scenarios: no other Python file names those files or the public scenarios' path.
- config: components read Tapio's settings (NATS_*, TAPIO_*, NODE_NAME) only through the one
  loader, tapio_common.config: no os.environ / os.getenv of those names in components/*/src.
- test-support: no runtime Bazel target (a py_library or py_binary under components/) depends
  on //tests/support (the import contract test-support-stays-out checks the Python side).
- citations: a section the code cites as `CONTRACT.md §3` exists in docs/ (`## 3. ...`).

Fed by `git ls-files` in the current directory (or the paths given). Exit 1 lists each finding as
`path:line: rule: what`; `tools/tests/test_check_repo.py` shows what each rule catches.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

WIRE_MODULE = "components/publisher/src/tapio_publisher/wire.py"
WIRE_IMPORTERS = (
    "components/publisher/",
    "bench/",
)
SCENARIO_LOADER = (
    "components/common/src/tapio_common/scenarios.py",
    "components/common/tests/test_scenarios.py",
)
SELF = "tools/check_repo.py"

_SHARED = "sha" + "red"  # spelled apart so this file does not match itself
OUTSIDE = re.compile(rf"\.\./{_SHARED}\b|/work/{_SHARED}\b|\b{_SHARED}/(design|seed|scenarios|reference)\b")
SCENARIO_PATH = re.compile(r"(^|/)expected\.jsonl$|./events\.jsonl$|scenarios/public")
TEXT_SUFFIXES = {".py", ".md", ".bazel", ".bzl", ".sh", ".toml", ".yaml", ".yml", ".json", ".conf", ".txt",
                 ".cfg", ".in", ".nix", ".tf", ".c", ".h", ".proto", ".importlinter", ""}  # fmt: skip


CONFLICT = re.compile(r"^(<{7}|>{7})( |$)|^={7}$")


def outside_references(path: str, text: str) -> Iterator[str]:
    for number, line in enumerate(text.splitlines(), 1):
        if CONFLICT.match(line):
            yield f"{path}:{number}: conflict: a merge conflict marker"
        if OUTSIDE.search(line):
            yield f"{path}:{number}: outside: refers to a file outside the repository (use docs/)"


def _is_seven(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 7


def _wire_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == "tapio_publisher.wire" for a in node.names)
    if isinstance(node, ast.ImportFrom):
        if node.module == "tapio_publisher.wire":
            return True
        return node.module == "tapio_publisher" and any(a.name == "wire" for a in node.names)
    return False


def _internal_import(node: ast.stmt) -> bool:
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
    if isinstance(node, ast.ImportFrom):
        names = [node.module or ""]
    return any(n.startswith("google.protobuf.internal") for n in names)


def hand_encoding(path: str, tree: ast.AST) -> Iterator[str]:
    """Varint arithmetic (a shift by 7 bits), protobuf internals, or the wire module imported
    where it does not belong."""
    if path == WIRE_MODULE:
        return
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}: wire:"
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            right = node.right if isinstance(node, ast.BinOp) else node.value
            if isinstance(node.op, (ast.RShift, ast.LShift)) and _is_seven(right):
                yield f"{where} varint arithmetic (shift by 7): use the generated classes (or tapio_publisher.wire)"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if _internal_import(node):
                yield f"{where} google.protobuf.internal (hand encoding): use the generated classes"
            if _wire_import(node) and not path.startswith(WIRE_IMPORTERS):
                yield f"{where} imports tapio_publisher.wire: only the publisher frames batches by hand"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _path_chain(node: ast.expr) -> list[ast.expr]:
    """The operands of `a / b / c` (a pathlib join), left to right."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return [*_path_chain(node.left), *_path_chain(node.right)]
    return [node]


def _called(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    return ""


SCENARIO_ROOTS = {"public_root", "scenarios_dir"}


def scenario_readers(path: str, tree: ast.AST) -> Iterator[str]:
    """Code that finds scenario files itself: a constant naming expected.jsonl, a path into a
    scenario folder ("*/events.jsonl", ".../scenarios/public..."), or a join such as
    `public_root() / name / "events.jsonl"` or `... / "scenarios" / "public"`."""
    if path in SCENARIO_LOADER or path == SELF:
        return
    docs = _docstrings(tree)
    hint = "read scenario folders with tapio_common.scenarios (load_scenarios, load_scenario, Scenario.events_file)"
    joins = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)]
    inner = {id(n.left) for n in joins}  # a chain is checked once, at its outermost join
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            value = node.value.strip()
            if " " not in value and SCENARIO_PATH.search(value):
                yield f"{path}:{node.lineno}: scenarios: names {value!r}: {hint}"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and id(node) not in inner:
            parts = _path_chain(node)
            consts = [p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            rooted = any(_called(p) in SCENARIO_ROOTS for p in parts)
            if ("events.jsonl" in consts and (rooted or "public" in consts)) or (
                "scenarios" in consts and "public" in consts
            ):
                yield f"{path}:{node.lineno}: scenarios: joins a path to scenario files: {hint}"


CONFIG_VAR = re.compile(r"^(NATS_|TAPIO_)|^NODE_NAME$")
COMMON_SRC = "components/common/src/"


def _env_key(node: ast.AST) -> str:
    """The constant name read by os.environ.get("X"), os.getenv("X") or os.environ["X"]."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        f = node.func
        if isinstance(f, ast.Attribute) and (
            (f.attr == "get" and isinstance(f.value, ast.Attribute) and f.value.attr == "environ")
            or f.attr == "getenv"
        ):
            return str(node.args[0].value)
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "environ"
    ) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return ""


def settings_by_hand(path: str, tree: ast.AST) -> Iterator[str]:
    if not (path.startswith("components/") and "/src/" in path) or path.startswith(COMMON_SRC):
        return
    for node in ast.walk(tree):
        key = _env_key(node)
        if key and CONFIG_VAR.search(key):
            yield (
                f"{path}:{getattr(node, 'lineno', 0)}: config: reads {key} itself: take it from "
                "tapio_common.config (load_common / load_settings, setting(env=...))"
            )


RUNTIME_TARGET = re.compile(r"^(py_library|py_binary)\((.*?)^\)", re.S | re.M)


def runtime_test_support(path: str, text: str) -> Iterator[str]:
    if not (path.startswith("components/") and path.endswith("BUILD.bazel")):
        return
    for m in RUNTIME_TARGET.finditer(text):
        if "//tests/support" in m.group(2):
            line = text.count("\n", 0, m.start()) + 1
            yield f"{path}:{line}: test-support: a runtime {m.group(1)} depends on //tests/support"


CITATION = re.compile(r"\b([A-Z]+\.md) ?§ ?(\d+)")


def doc_sections(docs: Path) -> dict[str, set[str]]:
    """The numbered sections (`## 3. Streams` -> "3") of every page in docs/."""
    out: dict[str, set[str]] = {}
    for page in docs.glob("*.md") if docs.is_dir() else ():
        out[page.name] = set(re.findall(r"^## (\d+)\.", page.read_text(encoding="utf-8"), re.M))
    return out


def citations(path: str, text: str, sections: dict[str, set[str]]) -> Iterator[str]:
    for number, line in enumerate(text.splitlines(), 1):
        for page, section in CITATION.findall(line):
            if section not in sections.get(page, set()):
                yield f"{path}:{number}: citations: {page} §{section} is no section of docs/{page}"


def check_file(path: str, text: str, sections: dict[str, set[str]] | None = None) -> list[str]:
    found = [] if path == SELF else list(outside_references(path, text))
    if path.endswith(".py"):
        try:
            tree = ast.parse(text, path)
        except SyntaxError as e:
            return [*found, f"{path}:{e.lineno}: syntax: {e.msg}"]
        found += hand_encoding(path, tree)
        found += scenario_readers(path, tree)
        found += settings_by_hand(path, tree)
    found += runtime_test_support(path, text)
    if sections is not None and path != SELF:
        found += citations(path, text, sections)
    return found


def tracked(paths: Iterable[str]) -> list[str]:
    given = list(paths)
    if given:
        return given
    try:
        out = subprocess.run(["git", "ls-files", "-z"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked tarball)
        skip = (".git", ".venv", "build", "node_modules")
        return sorted(
            str(p)
            for p in Path().rglob("*")
            if p.is_file() and not any(part in skip or part.startswith("bazel-") for part in p.parts)
        )
    return [p for p in out.decode().split("\0") if p]


def main(argv: list[str]) -> int:
    findings: list[str] = []
    checked = 0
    sections = doc_sections(Path("docs"))
    for path in tracked(argv[1:]):
        p = Path(path)
        if p.suffix not in TEXT_SUFFIXES or not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        checked += 1
        findings += check_file(path, text, sections)
    for finding in findings:
        print(f"check_repo: {finding}", file=sys.stderr)
    if not findings:
        print(f"check_repo: {checked} files: no outside references, hand-encoded protobuf only in "
              f"{WIRE_MODULE}, scenario files read only by tapio_common.scenarios, every cited docs section exists")  # fmt: skip
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
