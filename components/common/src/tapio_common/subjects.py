"""The names one Tapio installation uses in NATS, all derived from its subject prefix (pure).

`NATS_SUBJECT_PREFIX` (default `tapio`, declared in `tapio_common.config.common.SubjectSettings`)
is the first token of every subject a component builds, so two installations can share one NATS
account without seeing each other's traffic (CONTRACT.md §2, OPERATIONS.md "Several installations
on one NATS account"):

| what                     | prefix `tapio` (default)         | prefix `blue`                   |
|--------------------------|----------------------------------|---------------------------------|
| event subjects           | `tapio.events.k8s.default.pods…` | `blue.events.k8s.default.pods…` |
| correlations, alerts     | `tapio.correlations.>`, `tapio.alerts.>` | `blue.correlations.>`, …  |
| processed, dead letters  | `tapio.processed.>`, `tapio.dlq.<component>` | `blue.processed.>`, …   |
| streams                  | `TAPIO_EVENTS`, `TAPIO_CORRELATIONS`, … | `BLUE_EVENTS`, …         |
| KV buckets               | `TAPIO_CORRELATOR_STATE`         | `BLUE_CORRELATOR_STATE`         |

Stream and bucket names are the prefix upper-cased, `_`, the kind; durable consumer names
(`correlator`, `pipeline`, `siem-exporter`, …) live inside a stream and stay as they are. A prefix
is lower case so that the upper-cased stream names of two prefixes never collide.

Fed by `tapio_common.config.load_common` (CommonConfig.subjects); read by the publisher (event,
correlation, alert, processed and DLQ subjects), the stream layout, every consumer and tapio-admin.
"""

from __future__ import annotations

import re

import attrs

from tapio_common.errors import ConfigError

DEFAULT_PREFIX = "tapio"
ENV = "NATS_SUBJECT_PREFIX"
MAX_PREFIX = 32

EVENTS = "events"
CORRELATIONS = "correlations"
ALERTS = "alerts"
PROCESSED = "processed"
DLQ = "dlq"
KINDS = (EVENTS, CORRELATIONS, ALERTS, PROCESSED, DLQ)
"""The second token of every subject; each kind has one stream `<PREFIX>_<KIND>`."""

_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]*")


def check_prefix(value: str) -> str:
    """`value` when it is a valid subject prefix, else ConfigError saying why.

    A prefix is one NATS subject token that also makes a valid stream name once upper-cased: lower
    case letters, digits, `-` and `_`, starting with a letter or digit, at most 32 characters (no
    dots, no wildcards `*`/`>`, no spaces)."""
    if not isinstance(value, str):
        raise ConfigError(f"bad subject prefix {value!r}: expected a string such as {DEFAULT_PREFIX!r}")
    if _PREFIX.fullmatch(value) and len(value) <= MAX_PREFIX:
        return value
    if not value:
        why = "it is empty"
    elif "." in value:
        why = "it holds a '.', so it would be several subject tokens"
    elif "*" in value or ">" in value:
        why = "it holds a NATS wildcard ('*' or '>')"
    elif any(c.isspace() for c in value):
        why = "it holds white space"
    elif value.lower() != value:
        why = "it holds upper-case letters (stream names are the upper-cased prefix: use lower case)"
    elif len(value) > MAX_PREFIX:
        why = f"it is longer than {MAX_PREFIX} characters"
    else:
        why = "only a-z, 0-9, '-' and '_' are allowed, starting with a letter or digit"
    raise ConfigError(f"bad subject prefix {value!r} ({ENV}): {why}; e.g. {DEFAULT_PREFIX!r} or 'blue'")


def _checked(_inst: object, _attr: object, value: str) -> None:
    check_prefix(value)


@attrs.frozen
class Subjects:
    """Every NATS name of one installation, computed once from its prefix (hot paths keep the
    strings they need; nothing here is built per event)."""

    prefix: str = attrs.field(default=DEFAULT_PREFIX, validator=_checked)

    def root(self, kind: str) -> str:
        """`<prefix>.<kind>`, e.g. `tapio.events` (the first two tokens of every subject of a kind)."""
        if kind not in KINDS:
            raise ValueError(f"unknown subject kind {kind!r} (one of {', '.join(KINDS)})")
        return f"{self.prefix}.{kind}"

    def all(self, kind: str) -> str:
        """`<prefix>.<kind>.>`: every subject of a kind (a stream's subject, a consumer's filter)."""
        return f"{self.root(kind)}.>"

    def stream(self, kind: str) -> str:
        """`<PREFIX>_<KIND>`, e.g. TAPIO_EVENTS, BLUE_ALERTS."""
        self.root(kind)
        return self.bucket(kind)

    def bucket(self, name: str) -> str:
        """A KV bucket (or object store) of this installation: `<PREFIX>_<NAME>`, upper case,
        e.g. TAPIO_CORRELATOR_STATE."""
        return f"{self.prefix.upper()}_{name.upper()}"

    @property
    def events(self) -> str:
        return self.root(EVENTS)

    @property
    def correlations(self) -> str:
        return self.root(CORRELATIONS)

    @property
    def alerts(self) -> str:
        return self.root(ALERTS)

    @property
    def processed(self) -> str:
        return self.root(PROCESSED)

    @property
    def dlq(self) -> str:
        return self.root(DLQ)

    @property
    def events_stream(self) -> str:
        return self.stream(EVENTS)

    @property
    def correlations_stream(self) -> str:
        return self.stream(CORRELATIONS)

    @property
    def alerts_stream(self) -> str:
        return self.stream(ALERTS)

    @property
    def processed_stream(self) -> str:
        return self.stream(PROCESSED)

    @property
    def dlq_stream(self) -> str:
        return self.stream(DLQ)

    def dlq_subject(self, component_token: str) -> str:
        """`<prefix>.dlq.<component>` (the token already sanitised by the caller)."""
        return f"{self.dlq}.{component_token}"


DEFAULT = Subjects()
"""The names of the default installation (prefix `tapio`)."""
