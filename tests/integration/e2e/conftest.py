"""Fixtures of the e2e suite: the report every scenario adds its entry to (written at session end).

The JetStream fixtures and `anyio_backend` come from tests/integration/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.e2e.report import Report


@pytest.fixture(scope="session")
def e2e_report() -> Iterator[Report]:
    report = Report()
    try:
        yield report
    finally:
        if report.entries:
            report.write()
