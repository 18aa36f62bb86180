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
        "## Collectors",
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
