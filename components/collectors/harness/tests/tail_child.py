"""The harness tests' collector process: `collector_main` with the JSONL tail source."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness_tail import SPEC  # type: ignore[import-not-found]

from tapio_collector import collector_main

if __name__ == "__main__":
    sys.exit(collector_main(SPEC))
