"""`tapio-pipeline`: the rule file, (embedded) JetStream, the pod-event follower, the publisher and
the durable consumer `pipeline` on the consumer runtime; SIGHUP reloads the rules, SIGTERM stops.

Fed by `cli.run` with the loaded settings. Order at start: the rule file is validated (a bad file
stops here, before NATS), NATS is reached, the pod index is rebuilt from the stream, then the
consumer binds and the processor takes messages. A reload replaces the rules between two messages:
nothing in flight is dropped, and a bad new file leaves the old rules in force (one log line).
"""

from __future__ import annotations

import gc
import signal
from pathlib import Path

import anyio
import attrs
from anyio.abc import TaskStatus
from nats.errors import Error as NatsError

from tapio_common.config import CommonConfig
from tapio_common.config.yamldoc import read_text
from tapio_common.errors import ConfigError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics, Health
from tapio_jetstream import Consumer
from tapio_jetstream.host import component_host, stop_on_signal
from tapio_jetstream.layout import PIPELINE
from tapio_pipeline.enrich import PodIndex
from tapio_pipeline.errors import PipelineError
from tapio_pipeline.rules import RuleSet, load_rules
from tapio_pipeline.service.podfeed import follow_pods
from tapio_pipeline.service.processor import Processor
from tapio_pipeline.settings import PUBLISHER_SECTION, PipelineSettings
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import Compression

log = get_logger(__name__)

COMPONENT = "pipeline"
PROG = "tapio-pipeline"
GC_YOUNG = 50_000  # allocations between two young-generation collections (CPython's default: 700)
PUBLISH_INFLIGHT = 512  # output messages published and not yet confirmed (unless pipeline.publisher sets it)
WARM_WAIT = 300.0  # seconds the start waits for the pod index to be rebuilt before consuming anyway


def read_rules(path: str) -> RuleSet:
    """The rule file, validated (RuleFileError names the line); ConfigError when it cannot be read."""
    if not path:
        raise ConfigError("no rule file: give --rules FILE (or pipeline.rules in --config)")
    return load_rules(read_text(path, "the rule file"), path)


class Pipeline:
    """What a running pipeline exposes (tests and the benchmark read it)."""

    def __init__(self, processor: Processor, consumer: Consumer[str], url: str) -> None:
        self.processor = processor
        self.consumer = consumer
        self.url = url

    def stop(self) -> None:
        self.consumer.stop()


async def serve(
    cfg: CommonConfig,
    settings: PipelineSettings,
    *,
    handle_signals: bool = True,
    task_status: TaskStatus[Pipeline] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Runs until SIGINT/SIGTERM (or `Pipeline.stop()`); the messages already pulled are handled."""
    rules = read_rules(settings.rules)
    metrics = ComponentMetrics(COMPONENT)
    health = Health()
    index = PodIndex(max_pods=settings.index_pods)
    async with component_host(
        PROG, COMPONENT, cfg, metrics, health, provision=settings.provision, replicas=settings.replicas
    ) as host:
        section = cfg.section.get(PUBLISHER_SECTION, {}) if cfg.section else {}
        # the outputs of two pulled batches (up to 64 messages each, a few outputs a message) published
        # before their confirmations are awaited: the publisher's default window (32) would hold them back
        inflight = {} if "max_inflight" in section else {"max_inflight": PUBLISH_INFLIGHT}
        pub_settings = PublisherSettings.from_section(
            section, str(Path(cfg.data_dir) / COMPONENT), batch_max_events=1, name=PROG, **inflight
        )
        async with Publisher(
            pub_settings, nc=host.nc, registry=metrics.registry, subjects=cfg.subjects
        ) as publisher:
            in_flight = settings.batches_in_flight
            processor = Processor(
                rules,
                index,
                publisher,
                metrics,
                compression=Compression.parse(settings.compression),
                batches_in_flight=in_flight,
            )
            spec = host.layout.consumer(PIPELINE)
            consumer: Consumer[str] = Consumer(
                host.nc,
                spec,
                processor.kind,
                processor,
                component=COMPONENT,
                publisher=publisher,
                metrics=metrics,
                settings=attrs.evolve(settings.consumer, batches_in_flight=in_flight),
            )
            consumer.attach(health)
            warm = anyio.Event()
            health.ready_checks["pod_index"] = lambda: (warm.is_set(), f"{len(index)} pods known")
            pipeline = Pipeline(processor, consumer, host.url)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        lambda: follow_pods(
                            host.nc.jetstream(),
                            index,
                            metrics,
                            history=settings.index_history,
                            caught_up=warm,
                            subjects=cfg.subjects,
                            skip=processor.learnt,
                            nc=host.nc,
                        )
                    )
                    with anyio.move_on_after(WARM_WAIT):
                        await warm.wait()
                    if not warm.is_set():
                        log.warning(
                            "pod index not rebuilt in time: consuming with what it knows", pods=len(index)
                        )
                    _settle_memory()
                    if handle_signals:
                        tg.start_soon(stop_on_signal, pipeline.stop)
                        tg.start_soon(_reload_on_hup, processor, settings.rules)
                    task_status.started(pipeline)
                    await consumer.run()  # returns after a stop, with what was pulled handled
                    tg.cancel_scope.cancel()
            except NatsError as e:
                raise PipelineError(f"NATS failed: {e}") from e
        log.info("stopped", messages_handled=consumer.handled, unrouted=processor.unrouted)


def _settle_memory() -> None:
    """What was built at start (the pod index, the modules) moves out of the collector's view, and
    young collections run every GC_YOUNG allocations instead of 700: the hot path allocates two
    short-lived objects an event (a view, a tuple), and with the default a collection ran several
    times a message (a profile of the benchmark showed it)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)


async def _reload_on_hup(processor: Processor, path: str) -> None:
    with anyio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            await reload(processor, path)


async def reload(processor: Processor, path: str) -> bool:
    """Replaces the processor's rules with the file's, or keeps them when the file is bad."""
    try:
        rules = await anyio.to_thread.run_sync(read_rules, path)
    except ConfigError as e:
        log.error("rule file not reloaded, the previous rules stay in force", error=str(e))
        return False
    processor.rules = rules
    log.info("rules reloaded", rules=len(rules.rules), destinations=",".join(rules.destinations))
    return True
