"""Settings of the pipeline processor: the `pipeline:` section of the config file and the flags of
`tapio-pipeline`, declared once here and built by `tapio_common.config.load_settings` (the consumer
runtime's settings under `pipeline.consumer`, the publisher's under `pipeline.publisher`)."""

from __future__ import annotations

import attrs

from tapio_common.config.schema import at_least, group, one_of, setting
from tapio_jetstream import ConsumerSettings

PUBLISHER_SECTION = "publisher"
"""Sub-section of `pipeline:` read by `PublisherSettings.from_section`, not by PipelineSettings."""


@attrs.frozen(kw_only=True)
class PipelineSettings:
    rules: str = setting(
        "",
        "the rule file (YAML): destinations, default, rules; see `tapio-pipeline --help` (required)",
        env="TAPIO_PIPELINE_RULES",
        metavar="FILE",
    )
    index_pods: int = setting(
        200_000,
        "pods the enrichment index keeps (least recently seen forgotten first; about 1 KB each)",
        check=at_least(1),
    )
    index_history: float = setting(
        86_400.0,
        "seconds of pod events read back from TAPIO_EVENTS at start to rebuild the index (0 = all)",
        metavar="SECONDS",
        check=at_least(0),
    )
    compression: str = setting(
        "zstd",
        "compression of the published batches: zstd, lz4 or none",
        check=one_of(("zstd", "lz4", "none")),
    )
    batches_in_flight: int = setting(
        2,
        "pulled batches handled at once: the next is routed while the one before publishes and awaits "
        "its confirmations (1 = one after the other); each is still acked in stream order",
        check=at_least(1),
    )
    provision: bool = setting(
        False, "create/update the streams and durable consumers on start (always with the embedded server)"
    )
    replicas: int = setting(
        1, "stream replicas when provisioning: 1, or 3/5 in a cluster", check=one_of((1, 3, 5))
    )
    consumer: ConsumerSettings = group(
        ConsumerSettings, "consumer runtime settings (YAML section pipeline.consumer)"
    )
