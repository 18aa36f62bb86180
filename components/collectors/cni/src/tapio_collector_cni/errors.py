"""Errors of the CNI collector (one base, subclasses where the caller acts differently)."""

from __future__ import annotations

from tapio_common.errors import TapioError


class CniError(TapioError):
    """Something the CNI collector cannot do (its message is one line an operator can act on)."""


class CniConfigError(CniError):
    """A CNI network configuration file that cannot be read or parsed (reported, not fatal)."""


class SamplingError(CniError):
    """The netlink socket could not be opened, or a dump failed: this sample is lost."""
