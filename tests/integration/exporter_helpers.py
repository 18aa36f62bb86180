"""Helpers of the exporter suites: correlations to publish, an in-process exporter, stream reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from nats.aio.client import Client

from tapio_common.config import CommonConfig, NatsConfig
from tapio_common.model import Confidence, Context, Correlation, Workload
from tapio_common.model.fast import correlation_to_pb
from tapio_exporters.service.app import Exporter, serve
from tapio_exporters.service.settings import ExporterSettings
from tapio_publisher.subjects import correlation_subject

NS = 1_000_000_000


def correlation(n: int, revision: int, last_seen: int, *, ctype: str = "cascading_failure") -> Correlation:
    return Correlation(
        id=f"corr-{n}",
        type=ctype,
        confidence=Confidence.HIGH,
        score=0.9,
        root_cause_event_id=f"ev-{n}-0",
        event_ids=tuple(f"ev-{n}-{i}" for i in range(revision)),
        scope=Context(namespace="shop", workload=Workload("Deployment", f"svc-{n % 50}"), node="node-1"),
        summary=f"svc-{n % 50} fails after its database was OOM killed",
        first_seen=last_seen - revision * NS,
        last_seen=last_seen,
        revision=revision,
    )


async def publish_correlations(nc: Client, corrs: list[Correlation], *, msg_id_suffix: str = "") -> None:
    js = nc.jetstream()
    futures = []
    for c in corrs:
        futures.append(
            await js.publish_async(
                correlation_subject(c.confidence, c.type),
                correlation_to_pb(c).SerializeToString(),
                headers={"Nats-Msg-Id": f"{c.id}:{c.revision}{msg_id_suffix}"},
            )
        )
    for f in futures:
        await f


def exporter_config(url: str, tmp: Path) -> CommonConfig:
    return CommonConfig(
        nats=NatsConfig(urls=(url,)), metrics_port=0, data_dir=str(tmp / "data"), node_name="texp"
    )


def exporter_settings(sinks: Sequence[Mapping[str, Any]], **section: Any) -> ExporterSettings:
    return ExporterSettings.load({"provision": True, **section}, extra_sinks=sinks)


@asynccontextmanager
async def running_exporter(url: str, tmp: Path, settings: ExporterSettings) -> AsyncIterator[Exporter]:
    async with anyio.create_task_group() as tg:
        exporter: Exporter = await tg.start(_serve, exporter_config(url, tmp), settings)
        try:
            yield exporter
        finally:
            exporter.stop()


async def _serve(cfg: CommonConfig, settings: ExporterSettings, *, task_status: Any) -> None:
    await serve(cfg, settings, handle_signals=False, task_status=task_status)


async def pending(nc: Client, stream: str, durable: str) -> tuple[int, int]:
    info = await nc.jetstream().consumer_info(stream, durable)
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)
