"""The pure correlation engine: topology, windows, rules, precedence, incidents (no I/O, no clock)."""

from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.engine import Engine

__all__ = ["Engine", "EngineConfig"]
