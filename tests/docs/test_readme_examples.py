"""The READMEs' examples run as written: every `tapio-correlator` / `tapio-admin` command line of a
`sh` block (under `bazel run //components/X --` or by its command name), the correlator's YAML
config example, and its Python engine example.

Only the host of `nats://nats:4222` / `nats://127.0.0.1:4222` is swapped for a real test
JetStream (a 3-node cluster for `--replicas 3`); placeholder files (`events.jsonl`, `correlator.yaml`) are the README's own example
config and a public scenario. A `serve` must still be running after START_SECONDS (it started
fine) and is then stopped with SIGTERM, which must end it with status 0. A `serve` on a NATS
URL without `--provision` finds its streams made first (`tapio-admin streams apply`), as its README
line says.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapio_common.scenarios import load_scenarios

START_SECONDS = 6.0
PROGRAMS = {"correlator": "tapio_correlator", "admin": "tapio_admin"}
COMMAND = re.compile(
    r"^(?:bazel run //components/(?P<target>correlator|admin)(?: --)?|tapio-(?P<cmd>correlator|admin))(?P<args>.*)$"
)
EXAMPLE_URLS = ("nats://nats:4222", "nats://127.0.0.1:4222")


def repo_root() -> Path:
    for base in (Path(os.environ.get("TEST_SRCDIR", "")) / os.environ.get("TEST_WORKSPACE", ""), Path.cwd()):
        if (base / "components" / "correlator" / "README.md").is_file():
            return base.resolve()
    return Path(__file__).resolve().parents[2]


ROOT = repo_root()
READMES = [ROOT / "README.md", *sorted(ROOT.glob("components/*/README.md"))]


def blocks(path: Path, lang: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each fenced block of `lang` in a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            start = i + 1
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            yield start + 1, "\n".join(lines[start:i])
        i += 1


def commands() -> list[tuple[str, str, str]]:
    """(readme:line, stdin file or "", command line) of each Tapio command in the `sh` blocks."""
    found = []
    for readme in READMES:
        for first, text in blocks(readme, "sh"):
            for n, line in enumerate(text.splitlines()):
                line = line.split(" #")[0].strip()
                stdin = ""
                m = re.match(r"^cat (\S+) \| (.*)$", line)
                if m:
                    stdin, line = m.group(1), m.group(2)
                if COMMAND.match(line):
                    found.append((f"{readme.relative_to(ROOT)}:{first + n}", stdin, line))
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding the README's placeholder files."""
    shutil.copy(load_scenarios(pattern="crash-00")[0].events_file, tmp_path / "events.jsonl")
    (tmp_path / "correlator.yaml").write_text(correlator_yaml(), encoding="utf-8")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    return tmp_path


def correlator_yaml() -> str:
    found = [text for _, text in blocks(ROOT / "components/correlator/README.md", "yaml")]
    assert len(found) == 1, "the correlator README has one YAML config example"
    return found[0] + "\n"


def run_example(
    line: str, stdin: str, cwd: Path, url: str, identity: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    m = COMMAND.match(line)
    assert m is not None
    program = PROGRAMS[m.group("target") or m.group("cmd")]
    args = m.group("args")
    for example in EXAMPLE_URLS:
        args = args.replace(example, url)
    argv = [sys.executable, "-m", program, *shlex.split(args)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TAPIO_DATA_DIR": str(cwd / "data"),
           "TAPIO_METRICS_PORT": "0", "NATS_URL": url if "--nats-url" in args else "", **(identity or {})}  # fmt: skip
    example_config = (cwd / "correlator.yaml").read_text().replace(EXAMPLE_URLS[0], url)
    (cwd / "correlator.yaml").write_text(example_config)
    stdin_file = (cwd / stdin).open() if stdin else subprocess.DEVNULL
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin_file, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    serves = program == "tapio_correlator" and not re.search(r"\b(replay|demo)\b|--help", args)
    try:
        out, _ = proc.communicate(timeout=START_SECONDS if serves else 120)
    except subprocess.TimeoutExpired:
        if not serves:
            proc.kill()
            raise
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(argv, proc.returncode, out)
    assert not serves, f"{line} exited at once with {proc.returncode}:\n{out}"
    return subprocess.CompletedProcess(argv, proc.returncode, out)


@pytest.mark.parametrize(("where", "stdin", "line"), commands(), ids=[c[0] for c in commands()])
def test_command_example_runs(
    where: str, stdin: str, line: str, workdir: Path, request: pytest.FixtureRequest
) -> None:
    identity: dict[str, str] | None = None
    if "--replicas 3" in line and "--dry-run" not in line:  # needs a 3-node cluster: the production one
        cluster = request.getfixturevalue("nats_cluster")
        url = cluster.urls[0]
        identity = {k: v for k, v in cluster.identity("admin").env(cluster.urls).items() if k != "NATS_URL"}
    else:
        url = request.getfixturevalue("jetstream").url
    if re.search(r"serve --(nats-url|config)(?!.*--provision)", line):  # its streams already exist
        apply = run_example(f"tapio-admin streams apply --nats-url {url}", "", workdir, url)
        assert apply.returncode == 0, apply.stdout
    result = run_example(line, stdin, workdir, url, identity)
    assert result.returncode == 0, f"{where}: {line}\n{result.stdout}"


def test_every_component_readme_has_runnable_examples() -> None:
    where = {c[0].split(":")[0] for c in commands()}
    assert {"README.md", "components/correlator/README.md", "components/publisher/README.md"} <= where


def test_yaml_example_is_what_serve_accepts_and_its_error_line_is_true(workdir: Path) -> None:
    from tapio_correlator.cli import main

    readme = (ROOT / "components/correlator/README.md").read_text(encoding="utf-8")
    quoted = re.search(r"`(tapio-correlator: error: bad setting [^`]+)`", readme)
    assert quoted is not None
    conf = workdir / "correlator.yaml"
    conf.write_text(correlator_yaml().replace("fetch_batch: 64", "fetch_batch: 0"))
    err = subprocess.run(
        [sys.executable, "-m", "tapio_correlator", "serve", "--config", "correlator.yaml"],
        cwd=workdir, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert err.returncode == 2
    assert err.stderr.strip() == quoted.group(1)
    conf.write_text(correlator_yaml().replace("crash_min_restarts: 3", "crash_min_restarts: 0"))
    assert main(["replay", "--input", str(workdir / "events.jsonl"), "--config", str(conf), "-q"]) == 2


def test_python_engine_example_runs(workdir: Path) -> None:
    import argparse

    from tapio_common.config import add_common_arguments, load_common
    from tapio_correlator.replay import ReplayStats, read_events

    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    cfg = load_common(parser.parse_args(["--config", str(workdir / "correlator.yaml")]), "correlator", env={})
    with (workdir / "events.jsonl").open() as f:
        events = list(read_events(f, "events.jsonl", ReplayStats()))
    published: list[object] = []
    [(_, code)] = [b for b in blocks(ROOT / "components/correlator/README.md", "python") if "Engine(" in b[1]]
    names = {"cfg": cfg, "events": events, "publish": published.append, "now_ns": 0, "slack_ns": 0}
    exec(compile(code, "correlator README", "exec"), names)
    assert published, "the example's events produce correlations"
