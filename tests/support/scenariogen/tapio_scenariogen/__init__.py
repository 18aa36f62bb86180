"""Scenario generator for the correlation engine (see generator.py for how CORRELATION.md is read).

The scorer lives in `tapio_scenariogen.score` (run it with `python -m tapio_scenariogen.score`).
"""

from tapio_scenariogen.corpus import write_corpus
from tapio_scenariogen.generator import Scenario, generate, variants
from tapio_scenariogen.world import Expected

__all__ = ["Expected", "Scenario", "generate", "variants", "write_corpus"]
