"""JSON schemas of the custom resources Tapio declares, for offline structural checks.

Written from the projects' own definitions: NACK's API reference (docs/api.md, jetstream.nats.io/v1beta2
Stream, Consumer, Account) and nats-operator's Go types (pkg/apis/nats/v1alpha2/cluster.go). Every spec
field of those types is listed, so an unknown field (a typo, or a field the controller would drop) fails;
the fields Tapio uses also have their types and enums.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_BOOL: Schema = {"type": "boolean"}
_OBJ: Schema = {"type": "object"}
_STRS: Schema = {"type": "array", "items": _STR}
_SECRET_REF: Schema = {
    "type": "object",
    "properties": {"name": _STR},
    "required": ["name"],
    "additionalProperties": False,
}
_CLIENT_TLS: Schema = {
    "type": "object",
    "properties": {"clientCert": _STR, "clientKey": _STR, "rootCas": _STRS},
    "additionalProperties": False,
}
# Connection options every NACK v1beta2 resource accepts (instead of an Account).
_CONNECTION: dict[str, Schema] = {
    "account": _STR,
    "creds": _STR,
    "nkey": _STR,
    "servers": _STRS,
    "tls": _CLIENT_TLS,
    "tlsFirst": _BOOL,
    "preventDelete": _BOOL,
    "preventUpdate": _BOOL,
}


def _resource(api_version: str, kind: str, spec_properties: dict[str, Schema], required: list[str]) -> Schema:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
            },
            "spec": {
                "type": "object",
                "required": required,
                "additionalProperties": False,
                "properties": spec_properties,
            },
        },
    }


STREAM = _resource(
    "jetstream.nats.io/v1beta2",
    "Stream",
    {
        **_CONNECTION,
        "name": {"type": "string", "pattern": "^[^.*> ]+$"},
        "description": _STR,
        "subjects": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "storage": {"enum": ["file", "memory"]},
        "replicas": {"type": "integer", "minimum": 1},
        "retention": {"enum": ["limits", "interest", "workqueue"]},
        "discard": {"enum": ["old", "new"]},
        "discardPerSubject": _BOOL,
        "maxAge": _STR,
        "maxBytes": {"type": "integer", "minimum": -1},
        "maxMsgs": {"type": "integer", "minimum": -1},
        "maxMsgSize": {"type": "integer", "minimum": -1},
        "maxMsgsPerSubject": _INT,
        "maxConsumers": {"type": "integer", "minimum": -1},
        "duplicateWindow": _STR,
        "noAck": _BOOL,
        "compression": {"enum": ["s2", "none", ""]},
        "persistMode": {"enum": ["default", "async"]},
        "allowDirect": _BOOL,
        "allowAtomicPublish": _BOOL,
        "allowBatched": _BOOL,
        "allowMsgCounter": _BOOL,
        "allowMsgSchedules": _BOOL,
        "allowMsgTtl": _BOOL,
        "allowRollup": _BOOL,
        "denyDelete": _BOOL,
        "denyPurge": _BOOL,
        "sealed": _BOOL,
        "mirrorDirect": _BOOL,
        "firstSequence": _INT,
        "subjectDeleteMarkerTtl": _STR,
        "metadata": {"type": "object", "additionalProperties": _STR},
        "consumerLimits": _OBJ,
        "mirror": _OBJ,
        "placement": _OBJ,
        "republish": _OBJ,
        "sources": {"type": "array", "items": _OBJ},
        "subjectTransform": _OBJ,
    },
    ["name", "subjects"],
)

CONSUMER = _resource(
    "jetstream.nats.io/v1beta2",
    "Consumer",
    {
        **_CONNECTION,
        "streamName": _STR,
        "durableName": {"type": "string", "pattern": "^[^.*> ]+$"},
        "description": _STR,
        "deliverPolicy": {"enum": ["all", "last", "new", "byStartSequence", "byStartTime", "lastPerSubject"]},
        "optStartSeq": {"type": "integer", "minimum": 0},
        "optStartTime": _STR,
        "ackPolicy": {"enum": ["none", "all", "explicit"]},
        "ackWait": _STR,
        "backoff": _STRS,
        "maxDeliver": {"type": "integer", "minimum": -1},
        "maxAckPending": _INT,
        "maxWaiting": _INT,
        "maxRequestBatch": _INT,
        "maxRequestExpires": _STR,
        "maxRequestMaxBytes": _INT,
        "filterSubject": _STR,
        "filterSubjects": _STRS,
        "replayPolicy": {"enum": ["instant", "original"]},
        "sampleFreq": _STR,
        "rateLimitBps": _INT,
        "deliverSubject": _STR,
        "deliverGroup": _STR,
        "flowControl": _BOOL,
        "heartbeatInterval": _STR,
        "headersOnly": _BOOL,
        "inactiveThreshold": _STR,
        "memStorage": _BOOL,
        "replicas": _INT,
        "metadata": {"type": "object", "additionalProperties": _STR},
        "pauseUntil": _STR,
        "pinnedTtl": _STR,
        "priorityGroups": _STRS,
        "priorityPolicy": {"enum": ["none", "pinned_client", "overflow", "prioritized"]},
    },
    ["streamName", "durableName"],
)

ACCOUNT = _resource(
    "jetstream.nats.io/v1beta2",
    "Account",
    {
        "name": _STR,
        "servers": _STRS,
        "tlsFirst": _BOOL,
        "creds": {
            "type": "object",
            "properties": {"file": _STR, "secret": _SECRET_REF},
            "additionalProperties": False,
        },
        "token": {
            "type": "object",
            "properties": {"token": _STR, "secret": _SECRET_REF},
            "additionalProperties": False,
        },
        "tls": {
            "type": "object",
            "properties": {"ca": _STR, "cert": _STR, "key": _STR, "secret": _SECRET_REF},
            "additionalProperties": False,
        },
        "user": {
            "type": "object",
            "properties": {"user": _STR, "password": _STR, "secret": _SECRET_REF},
            "required": ["user", "password", "secret"],
            "additionalProperties": False,
        },
    },
    ["servers"],
)

_NATS_POD_POLICY = [
    "labels", "annotations", "nodeSelector", "antiAffinity", "resources", "tolerations", "natsEnv",
    "enableConfigReload", "reloaderImage", "reloaderImageTag", "reloaderImagePullPolicy", "reloaderResources",
    "enableMetrics", "metricsImage", "metricsImageTag", "metricsImagePullPolicy", "enableClientsHostPort",
    "advertiseExternalIP", "bootconfigImage", "bootconfigImageTag", "volumeMounts",
]  # fmt: skip
_NATS_TLS = [
    "serverSecret", "serverSecretCAFileName", "serverSecretKeyFileName", "serverSecretCertFileName",
    "routesSecret", "routesSecretCAFileName", "routesSecretKeyFileName", "routesSecretCertFileName",
    "gatewaySecret", "gatewaySecretCAFileName", "gatewaySecretKeyFileName", "gatewaySecretCertFileName",
    "leafnodeSecret", "leafnodeSecretCAFileName", "leafnodeSecretKeyFileName", "leafnodeSecretCertFileName",
    "websocketSecret", "websocketSecretCAFileName", "websocketSecretKeyFileName", "websocketSecretCertFileName",
    "websocketTLSTimeout", "enableHttps", "clientsTLSTimeout", "routesTLSTimeout", "gatewaysTLSTimeout",
    "leafnodesTLSTimeout", "verify", "cipherSuites", "curvePreferences",
]  # fmt: skip
_NATS_AUTH = [
    "enableServiceAccounts",
    "clientsAuthSecret",
    "clientsAuthFile",
    "clientsAuthTimeout",
    "tlsVerifyAndMap",
]


def _open_object(names: list[str], typed: dict[str, Schema]) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {n: typed.get(n, {}) for n in names},
    }


NATS_CLUSTER = _resource(
    "nats.io/v1alpha2",
    "NatsCluster",
    {
        "size": {"type": "integer", "minimum": 1},
        "version": {"type": "string", "pattern": r"^v?\d+\.\d+\.\d+$"},
        "serverImage": _STR,
        "natsConfig": _OBJ,
        "useServerName": _BOOL,
        "paused": _BOOL,
        "pod": _open_object(
            _NATS_POD_POLICY, {"antiAffinity": _BOOL, "enableMetrics": _BOOL, "resources": _OBJ}
        ),
        "tls": _open_object(_NATS_TLS, {"verify": _BOOL, "serverSecret": _STR, "routesSecret": _STR}),
        "auth": _open_object(_NATS_AUTH, {"clientsAuthSecret": _STR, "clientsAuthTimeout": _INT}),
        "lameDuckDurationSeconds": _INT,
        "noAdvertise": _BOOL,
        "template": _OBJ,
        "extraRoutes": {"type": "array"},
        "gatewayConfig": _OBJ,
        "leafnodeConfig": _OBJ,
        "operatorConfig": _OBJ,
        "websocketConfig": _OBJ,
    },
    ["size"],
)

BY_KIND: dict[str, Schema] = {
    "Stream": STREAM,
    "Consumer": CONSUMER,
    "Account": ACCOUNT,
    "NatsCluster": NATS_CLUSTER,
}
