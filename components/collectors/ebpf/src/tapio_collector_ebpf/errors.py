"""Errors of the eBPF collector."""

from __future__ import annotations

from tapio_common.errors import TapioError


class EbpfError(TapioError):
    """The eBPF collector cannot run (no privileges, no BPF, a program failed to load)."""
