"""Errors of the pipeline processor: one base, and the bad rule file a user must fix."""

from __future__ import annotations

from tapio_common.errors import ConfigError, TapioError


class PipelineError(TapioError):
    """Base of every error the pipeline raises on purpose."""


class RuleFileError(PipelineError, ConfigError):
    """The rule file is invalid; the message names the file and the line."""
