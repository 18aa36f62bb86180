"""Edge conversions (cattrs): attrs models <-> protobuf messages <-> canonical proto3 JSON."""

from __future__ import annotations

from typing import TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.model.alerts import Alert
from tapio_common.model.correlations import Correlation
from tapio_common.model.events import Event, EventBatch

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def ns_to_rfc3339(ns: int) -> str:
    ts = Timestamp()
    ts.FromNanoseconds(ns)
    return ts.ToJsonString()


def rfc3339_to_ns(text: str) -> int:
    ts = Timestamp()
    try:
        ts.FromJsonString(text)
    except ValueError as e:
        raise ContractError(f"bad timestamp {text!r}: {e}") from e
    return int(ts.ToNanoseconds())


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(omit_if_default=True)
    time_fields = {
        Event: ("time",),
        Correlation: ("first_seen", "last_seen"),
        Alert: ("time", "starts_at", "ends_at"),
    }
    for cls, names in time_fields.items():
        ts_unstruct = {n: override(unstruct_hook=ns_to_rfc3339) for n in names}
        ts_struct = {n: override(struct_hook=lambda v, _t: rfc3339_to_ns(v)) for n in names}
        # An alert's unset times (ends_at until resolved) stay unset Timestamps, as in the fast path.
        omit = cls is Alert
        conv.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=omit, **ts_unstruct),  # type: ignore[arg-type]
        )
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **ts_struct))  # type: ignore[arg-type]
    return conv


converter = _make_converter()


def _to_proto(model: object, message: M) -> M:
    try:
        return json_format.ParseDict(converter.unstructure(model), message)
    except json_format.ParseError as e:
        raise ContractError(f"cannot encode {type(model).__name__}: {e}") from e


def _from_proto(message: Message, cls: type[T]) -> T:
    doc = json_format.MessageToDict(message, preserving_proto_field_name=True)
    try:
        return converter.structure(doc, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as e:
        raise ContractError(f"cannot decode {cls.__name__}: {e}") from e


def _from_json(text: str | bytes, message: M) -> M:
    try:
        return json_format.Parse(text, message)
    except json_format.ParseError as e:
        raise ContractError(f"not a valid {message.DESCRIPTOR.full_name} JSON: {e}") from e


def _from_bytes(data: bytes, message: M) -> M:
    try:
        message.ParseFromString(data)
    except DecodeError as e:
        raise ContractError(f"not a valid {message.DESCRIPTOR.full_name}: {e}") from e
    return message


def to_json(message: Message) -> str:
    """Canonical proto3 JSON on one line (lowerCamelCase keys, enums by name, RFC 3339 times)."""
    return json_format.MessageToJson(message, indent=None, ensure_ascii=False)


def event_to_proto(event: Event) -> events_pb2.Event:
    return _to_proto(event, events_pb2.Event())


def event_from_proto(message: events_pb2.Event) -> Event:
    return _from_proto(message, Event)


def batch_to_proto(batch: EventBatch) -> events_pb2.EventBatch:
    return _to_proto(batch, events_pb2.EventBatch())


def batch_from_proto(message: events_pb2.EventBatch) -> EventBatch:
    return _from_proto(message, EventBatch)


def event_from_json(line: str | bytes) -> Event:
    return event_from_proto(_from_json(line, events_pb2.Event()))


def event_to_json(event: Event) -> str:
    return to_json(event_to_proto(event))


def event_from_bytes(data: bytes) -> Event:
    return event_from_proto(_from_bytes(data, events_pb2.Event()))


def correlation_to_proto(corr: Correlation) -> correlations_pb2.Correlation:
    return _to_proto(corr, correlations_pb2.Correlation())


def correlation_from_proto(message: correlations_pb2.Correlation) -> Correlation:
    return _from_proto(message, Correlation)


def correlation_to_json(corr: Correlation) -> str:
    return to_json(correlation_to_proto(corr))


def correlation_from_json(line: str | bytes) -> Correlation:
    return correlation_from_proto(_from_json(line, correlations_pb2.Correlation()))


def alert_to_proto(alert: Alert) -> alerts_pb2.Alert:
    return _to_proto(alert, alerts_pb2.Alert())


def alert_from_proto(message: alerts_pb2.Alert) -> Alert:
    return _from_proto(message, Alert)


def alert_to_json(alert: Alert) -> str:
    return to_json(alert_to_proto(alert))


def alert_from_json(line: str | bytes) -> Alert:
    return alert_from_proto(_from_json(line, alerts_pb2.Alert()))
