"""Base exception of Tapio and the errors every component shares."""

from __future__ import annotations


class TapioError(Exception):
    """Base of every error Tapio raises on purpose; its message is one line a user can act on."""


class ConfigError(TapioError):
    """Bad configuration (flag, environment variable or file): the user must fix it."""


class NatsUnavailableError(TapioError):
    """NATS could not be reached or refused the connection (network, auth, TLS)."""


class EmbeddedServerError(TapioError):
    """The embedded nats-server could not be started or stopped."""


class ContractError(TapioError):
    """Data that does not follow the wire contract (cannot be decoded, encoded or validated)."""
