"""The scenario families: one module per correlation type, plus near-misses and mixed scenarios."""

from __future__ import annotations

from tapio_scenariogen.families import dependency, mixed, nearmiss_links, nearmiss_windows, quiet
from tapio_scenariogen.families.common import Builder
from tapio_scenariogen.families.positive import POSITIVE

FAMILIES: dict[str, dict[str, Builder]] = {
    **POSITIVE,
    "potential_issue": quiet.VARIANTS,
    "near_miss": {**nearmiss_links.VARIANTS, **nearmiss_windows.VARIANTS, **dependency.NEAR_MISSES},
    "mixed": mixed.VARIANTS,
}
# Families whose scenarios must give no medium/high correlation at all.
QUIET_FAMILIES = frozenset({"potential_issue", "near_miss"})

__all__ = ["FAMILIES", "QUIET_FAMILIES", "Builder"]
