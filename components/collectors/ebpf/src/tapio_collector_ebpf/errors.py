"""Errors of the eBPF collector."""

from __future__ import annotations

from tapio_collector import SourceError


class EbpfError(SourceError):
    """The eBPF collector cannot run (no privileges, no BPF, a program failed to load): the
    collector stops with this one-line message."""
