"""Creating, updating and inspecting Tapio's JetStream streams and durable consumers (idempotent)."""

from __future__ import annotations

import enum
from typing import Any

import attrs
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from nats.js.manager import JetStreamManager

from tapio_common.logging import get_logger
from tapio_jetstream.errors import LayoutError
from tapio_jetstream.layout import (
    ApplyReport,
    Change,
    ConsumerSpec,
    Layout,
    StreamSpec,
    plan,
    production_layout,
)

log = get_logger(__name__)

JetStream = JetStreamContext | JetStreamManager


@attrs.frozen
class ConsumerStatus:
    name: str
    pending: int  # messages not yet delivered
    ack_pending: int  # delivered, not yet acknowledged
    redelivered: int
    waiting: int  # pull requests waiting


@attrs.frozen
class StreamStatus:
    name: str
    exists: bool
    messages: int = 0
    bytes: int = 0
    first_seq: int = 0
    last_seq: int = 0
    storage: str = ""
    replicas: int = 0
    consumers: tuple[ConsumerStatus, ...] = ()


def stream_config(spec: StreamSpec, base: api.StreamConfig | None = None) -> api.StreamConfig:
    """The nats-py StreamConfig of a spec (fields not managed here are kept from `base`)."""
    return (base or api.StreamConfig()).evolve(
        name=spec.name,
        description=spec.description or None,
        subjects=list(spec.subjects),
        retention=api.RetentionPolicy(spec.retention),
        max_age=spec.max_age,
        max_msgs=spec.max_msgs,
        max_bytes=spec.max_bytes,
        max_msg_size=spec.max_msg_size,
        storage=api.StorageType(spec.storage),
        num_replicas=spec.replicas,
        duplicate_window=spec.duplicate_window,
        discard=api.DiscardPolicy(spec.discard),
        allow_direct=spec.allow_direct,
        allow_atomic=spec.allow_atomic or None,  # absent: a server before 2.12 refuses the field
    )


def consumer_config(spec: ConsumerSpec) -> api.ConsumerConfig:
    filters = spec.server_subjects
    return api.ConsumerConfig(
        durable_name=spec.durable,
        description=spec.description or None,
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=list(filters) if len(filters) > 1 else None,
        ack_policy=api.AckPolicy(spec.ack_policy),
        deliver_policy=api.DeliverPolicy(spec.deliver_policy),
        ack_wait=spec.ack_wait,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
    )


def _val(value: Any) -> Any:
    """nats-py leaves enums of server responses as plain strings; accept both."""
    return value.value if isinstance(value, enum.Enum) else value


def _stream_current(cfg: api.StreamConfig) -> dict[str, Any]:
    return {
        "subjects": tuple(sorted(cfg.subjects or ())),
        "max_age": float(cfg.max_age or 0.0),
        "max_msgs": cfg.max_msgs,
        "max_bytes": cfg.max_bytes,
        "max_msg_size": cfg.max_msg_size,
        "storage": _val(cfg.storage),
        "replicas": cfg.num_replicas,
        "duplicate_window": float(cfg.duplicate_window or 0.0),
        "discard": _val(cfg.discard),
        "retention": _val(cfg.retention),
        "allow_direct": bool(cfg.allow_direct),
        "allow_atomic": bool(cfg.allow_atomic),
    }


def _consumer_current(cfg: api.ConsumerConfig) -> dict[str, Any]:
    return {
        "filter_subjects": tuple(
            sorted(cfg.filter_subjects or ([cfg.filter_subject] if cfg.filter_subject else []))
        ),
        "ack_wait": float(cfg.ack_wait or 0.0),
        "max_deliver": cfg.max_deliver,
        "max_ack_pending": cfg.max_ack_pending,
        "ack_policy": _val(cfg.ack_policy),
        "deliver_policy": _val(cfg.deliver_policy),
        "deliver_subject": cfg.deliver_subject,
    }


async def _stream_info(js: JetStream, name: str) -> api.StreamInfo | None:
    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None
    except APIError as e:
        raise LayoutError(f"cannot read stream {name}: {e.description or e}") from e


async def _consumer_info(js: JetStream, stream: str, durable: str) -> api.ConsumerInfo | None:
    try:
        info: api.ConsumerInfo = await js.consumer_info(stream, durable)
        return info
    except NotFoundError:
        return None
    except APIError as e:
        raise LayoutError(f"cannot read consumer {stream}/{durable}: {e.description or e}") from e


async def apply_layout(
    js: JetStream, replicas: int = 1, *, layout: Layout | None = None, dry_run: bool = False
) -> ApplyReport:
    """Creates missing streams/consumers and updates changed limits; idempotent.

    Everything is planned first: if any change is incompatible (storage type, retention, ack
    policy...) nothing is applied and LayoutError names it (with dry_run the report lists it
    as `refused` instead). Server refusals (e.g. replicas 3 on a single server) raise LayoutError.
    """
    wanted = layout or production_layout(replicas)
    changes: list[Change] = []
    infos: dict[str, api.StreamInfo | None] = {}
    for spec in wanted.streams:
        info = infos[spec.name] = await _stream_info(js, spec.name)
        current = _stream_current(info.config) if info is not None else None
        changes.append(plan("stream", spec.name, spec.comparable(), current))
    for cspec in wanted.consumers:
        cinfo = await _consumer_info(js, cspec.stream, cspec.durable) if infos.get(cspec.stream) else None
        ccurrent = _consumer_current(cinfo.config) if cinfo is not None else None
        changes.append(plan("consumer", f"{cspec.stream}/{cspec.durable}", cspec.comparable(), ccurrent))
    report = ApplyReport(tuple(changes), dry_run)
    refused = [c for c in changes if c.action == "refused"]
    if dry_run:
        return report
    if refused:
        raise LayoutError("; ".join(_refusal(c) for c in refused))
    for spec, change in zip(wanted.streams, changes, strict=False):
        await _apply_stream(js, spec, change, infos[spec.name])
    for cspec, change in zip(wanted.consumers, changes[len(wanted.streams) :], strict=True):
        await _apply_consumer(js, cspec, change)
    log.info("JetStream stream layout applied", result=report.summary())
    return report


def _refusal(c: Change) -> str:
    what = ", ".join(c.changes)
    return (
        f"{c.kind} {c.name} cannot change {what} in place (JetStream refuses it): "
        f"move its data to a new {c.kind} or delete {c.name} first, which loses its messages/state"
    )


async def _apply_stream(js: JetStream, spec: StreamSpec, change: Change, info: api.StreamInfo | None) -> None:
    if change.action == "unchanged":
        return
    try:
        if change.action == "create":
            await js.add_stream(stream_config(spec))
        else:
            assert info is not None
            await js.update_stream(stream_config(spec, info.config))
    except APIError as e:
        hint = " (a single server takes --replicas 1)" if spec.replicas > 1 and e.err_code == 10074 else ""
        raise LayoutError(f"cannot {change.action} stream {spec.name}: {e.description or e}{hint}") from e
    log.info(f"stream {change.action}d", stream=spec.name, changes="; ".join(change.changes) or None)


async def _apply_consumer(js: JetStream, spec: ConsumerSpec, change: Change) -> None:
    if change.action == "unchanged":
        return
    try:
        await js.add_consumer(spec.stream, consumer_config(spec))
    except APIError as e:
        raise LayoutError(
            f"cannot {change.action} consumer {spec.stream}/{spec.durable}: {e.description or e}"
        ) from e
    log.info(f"consumer {change.action}d", consumer=f"{spec.stream}/{spec.durable}")


async def layout_status(js: JetStream, layout: Layout | None = None) -> list[StreamStatus]:
    """Messages, bytes and every consumer's pending counts of the layout's streams."""
    out: list[StreamStatus] = []
    for spec in (layout or production_layout()).streams:
        info = await _stream_info(js, spec.name)
        if info is None:
            out.append(StreamStatus(spec.name, exists=False))
            continue
        try:
            consumers = await js.consumers_info(spec.name)
        except APIError as e:
            raise LayoutError(f"cannot list consumers of {spec.name}: {e.description or e}") from e
        st, cfg = info.state, info.config
        out.append(
            StreamStatus(
                spec.name,
                True,
                st.messages,
                st.bytes,
                st.first_seq,
                st.last_seq,
                str(_val(cfg.storage) or ""),
                cfg.num_replicas or 1,
                tuple(_consumer_status(c) for c in sorted(consumers, key=lambda c: c.name)),
            )
        )
    return out


def _consumer_status(c: api.ConsumerInfo) -> ConsumerStatus:
    return ConsumerStatus(
        c.name, c.num_pending or 0, c.num_ack_pending or 0, c.num_redelivered or 0, c.num_waiting or 0
    )
