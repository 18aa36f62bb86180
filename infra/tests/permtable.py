"""The design's table of allowed operations per NATS user (publish, subscribe, inbox, consumer
create, KV, stream admin) of the `tapio` installation: run on the 3-node cluster by
test_permission_table, and renamed for a second installation by test_prefix_permissions."""

from __future__ import annotations

USERS = {  # the user -> a workload (or Secret) that connects as it
    "tapio-collectors": "tapio-ebpf-collector",
    "tapio-correlation": "tapio-correlator",
    "tapio-pipeline": "tapio-pipeline",
    "tapio-siem-exporter": "tapio-siem-exporter",
    "tapio-consumers": "reader",
    "tapio-admin": "admin",
}
C, R, P, S, K, A = (
    "tapio-collectors", "tapio-correlation", "tapio-pipeline", "tapio-siem-exporter", "tapio-consumers", "tapio-admin",
)  # fmt: skip

# (operation, subject, the users allowed)
PUBLISH = [
    ("tapio.events.k8s.table.pods.created", {C, A}),
    ("tapio.correlations.high.table", {R, A}),
    ("tapio.alerts.critical.table", {S, A}),
    ("tapio.processed.k8s.table", {P, A}),
    ("tapio.dlq.correlator", {R, A}),
    ("tapio.dlq.pipeline", {P, A}),
    ("tapio.dlq.siem-exporter", {S, A}),
    ("$KV.TAPIO_CORRELATOR_STATE.table", {R}),
    ("$JS.API.STREAM.DELETE.TAPIO_TABLE_NOPE", {A}),  # stream admin
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_EVENTS.table", {A}),  # a durable consumer of its choosing
    # the correlator creates no consumer at all (its restart read-back uses direct gets): the
    # forged-delivery hole of infra/README.md is closed
    ("$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.table.tapio.events.>", {A}),
    ("$JS.API.DIRECT.GET.TAPIO_EVENTS", {R, A}),
    ("$JS.API.STREAM.PURGE.TAPIO_TABLE_NOPE", {A}),  # stream admin
    # consumer create, per stream and form: server-named ephemerals (readers, the pipeline's pod
    # feed, the exporter's alert read-back); durables only the owner's, and the correlator none
    ("$JS.API.CONSUMER.CREATE.TAPIO_EVENTS", {P, A}),
    ("$JS.API.CONSUMER.CREATE.TAPIO_CORRELATIONS", {K, A}),
    ("$JS.API.CONSUMER.CREATE.TAPIO_ALERTS", {K, S, A}),
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_EVENTS.pipeline", {P, A}),
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_EVENTS.correlator", {A}),  # NACK makes it
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_ALERTS.siem-exporter-hec", {S, A}),
    # the exporter's sink positions (reset, never pulled) and a sink's catch-up (direct gets)
    ("$JS.API.CONSUMER.RESET.TAPIO_ALERTS.siem-exporter-hec", {S, A}),
    ("$JS.API.DIRECT.GET.TAPIO_ALERTS", {S, A}),
    # ... and on nats-server < 2.14 the sinks' read-back through those durables
    ("$JS.API.CONSUMER.MSG.NEXT.TAPIO_ALERTS.siem-exporter-hec", {K, S, A}),  # K: its own ephemerals
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_CORRELATIONS.table", {A}),
    # KV: reading the correlator's state (direct get) is the correlator's
    ("$JS.API.DIRECT.GET.KV_TAPIO_CORRELATOR_STATE.$KV.TAPIO_CORRELATOR_STATE.head", {R, A}),
    # the SIEM exporter's events input: its own durable on the pipeline's output, by name only
    ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_PROCESSED.siem-exporter-events", {S, A}),
    ("$JS.API.CONSUMER.MSG.NEXT.TAPIO_PROCESSED.siem-exporter-events", {S, A}),
    ("$JS.API.CONSUMER.MSG.NEXT.TAPIO_PROCESSED.table", {A}),
]
SUBSCRIBE = [
    ("tapio.events.>", {R, P, A}),
    ("tapio.correlations.>", {S, K, A}),
    ("tapio.alerts.>", {K, A}),
    ("tapio.processed.>", {A}),
    ("_INBOX.tapio-siem-exporter.>", {S}),
    ("_INBOX.tapio-correlation.>", {R}),
    ("_INBOX.>", set()),
    ("$KV.TAPIO_CORRELATOR_STATE.>", set()),  # nobody watches the correlator's state
]
