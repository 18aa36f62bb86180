"""pytest setup of the infra checks: the repository root on sys.path, so `infra.tests.*` imports work."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
