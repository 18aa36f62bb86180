"""The repository explains itself: its own design pages exist, and nothing points outside it."""

from __future__ import annotations

import os
from pathlib import Path

PAGES = ("ARCHITECTURE.md", "CONTRACT.md", "CORRELATION.md", "OPERATIONS.md", "DEVELOPING.md")


def root() -> Path:
    for base in (Path(os.environ.get("TEST_SRCDIR", "")) / os.environ.get("TEST_WORKSPACE", ""), Path.cwd()):
        if (base / "docs" / "ARCHITECTURE.md").is_file():
            return base
    return Path(__file__).resolve().parents[2]


def test_design_pages_exist_and_name_their_subjects() -> None:
    docs = root() / "docs"
    for page in PAGES:
        assert (docs / page).is_file(), page
    arch = (docs / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for section in (
        "## Data flow",
        "## Layers",
        "## Package map",
        "## Components and their metrics",
        "### Collectors",
        "## Pipeline",
        "## Exporter",
    ):
        assert section in arch, section
    assert "TAPIO_EVENTS" in (docs / "OPERATIONS.md").read_text(encoding="utf-8")


def test_nothing_points_outside_the_repository() -> None:
    base = root()
    files = [*(base / "docs").glob("*.md"), base / "README.md", *base.glob("components/*/README.md")]
    for path in files:
        assert "../" + "shared" not in path.read_text(encoding="utf-8"), (
            path
        )  # (tools/check_repo.py: every file)


def _page(name: str) -> str:
    return (root() / "docs" / name).read_text(encoding="utf-8")


def test_contract_and_architecture_name_every_stream_and_durable() -> None:
    from tapio_jetstream.layout import production_layout

    layout = production_layout()
    for page in ("CONTRACT.md", "ARCHITECTURE.md"):
        text = _page(page)
        for consumer in layout.consumers:
            assert f"`{consumer.durable}`" in text, (page, consumer.durable)
    contract = _page("CONTRACT.md")
    for stream in layout.streams:
        assert f"`{stream.name}`" in contract, stream.name
        assert stream.subjects[0] in contract, stream.subjects
    for n, title in enumerate(("Event", "Subjects", "Streams", "Correlation", "Alert", "Scenario"), 1):
        assert f"## {n}. {title}" in contract, (n, title)  # the code cites CONTRACT.md §1..§6


def test_correlation_page_follows_the_engine() -> None:
    import attrs

    from tapio_correlator.engine.config import EngineConfig
    from tapio_correlator.engine.precedence import CLAIMS

    text = _page("CORRELATION.md")
    for claim, _ in CLAIMS:
        assert f"`{claim}`" in text, claim
    for field in attrs.fields(EngineConfig):
        if field.name != "sweep_interval_ns":
            assert field.name.removesuffix("_ns") in text, field.name
    for kind in ("cascading_failure", "node_failure", "crash_loop", "resource_pressure",
                 "network_degradation", "performance_degradation", "deployment_failure",
                 "service_dependency_failure", "potential_issue"):  # fmt: skip
        assert f"`{kind}`" in text, kind
    assert "## Real delivery" in text


def test_architecture_layers_and_metrics_of_every_component() -> None:
    text = _page("ARCHITECTURE.md")
    for package in ("tapio_common", "tapio_publisher", "tapio_jetstream", "tapio_correlator",
                    "tapio_pipeline", "tapio_exporters", "tapio_collector", "tapio_collector_k8s",
                    "tapio_collector_systemd", "tapio_collector_ebpf", "tapio_collector_cni",
                    "tapio_admin"):  # fmt: skip
        assert f"| `{package}`" in text, package
    for prefix in ("tapio_correlator_", "tapio_pipeline_", "tapio_siem_exporter_", "tapio_k8s_collector_",
                   "tapio_systemd_collector_", "tapio_ebpf_collector_", "tapio_cni_collector_",
                   "tapio_publisher_"):  # fmt: skip
        assert prefix in text, prefix
