"""The collector harness: everything a node collector needs around its Source (config, NATS,
publisher and spool, metrics and health, logs, SIGTERM that flushes). A collector supplies a Source."""

from tapio_collector.cli import collector_main
from tapio_collector.errors import CollectorError, SourceError
from tapio_collector.output import Output
from tapio_collector.spec import CollectorSpec, Source, SourceFactory

__all__ = [
    "CollectorError",
    "CollectorSpec",
    "Output",
    "Source",
    "SourceError",
    "SourceFactory",
    "collector_main",
]
