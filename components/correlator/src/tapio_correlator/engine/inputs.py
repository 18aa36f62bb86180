"""What the engine takes (pure): one event as the attrs model or as the decoded protobuf message.

The two have the same field names, so the hot paths (topology, the frequent handlers) read fields
straight from either and build the model only for what a rule keeps (`state.as_event`). Fed by
`Engine.process` (model) and `Engine.process_pb` (protobuf, the NATS runner's path).
"""

from __future__ import annotations

from tapio.events.v1 import events_pb2
from tapio_common.model import Context, Event, K8sEvent

EventIn = Event | events_pb2.Event
"""One event, attrs model or protobuf message."""

ContextIn = Context | events_pb2.Context
"""The context (pod, node, owners, ...) of an EventIn."""

K8sIn = K8sEvent | events_pb2.K8sEvent
"""The Kubernetes payload of an EventIn."""
