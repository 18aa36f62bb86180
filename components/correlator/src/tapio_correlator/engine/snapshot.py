"""The engine's snapshot format (pure): a versioned msgpack object graph, never code.

Fed by `Engine.snapshot()` / `Engine.restore()` (the runner stores the bytes in its KV bucket).
A snapshot names its classes only from a fixed registry: the classes defined in the engine's own
modules and in `tapio_common.model`, and the protobuf Event. Decoding creates instances of those
classes with `__new__` and sets their fields (through the class's own `__setstate__` where it
defines one); nothing in the data can name a function or another class, so a crafted snapshot cannot
run code. Shared references and cycles are kept (an object table).

Layout: `MAGIC` then msgpack `[version, fingerprint, class names, objects, root]`. `fingerprint`
hashes every registry class's fields (declared slots or attrs fields, or the attribute names its
`__init__` sets): a snapshot of an engine whose classes differ is refused, as is a newer version.
Refused means `SnapshotRefused` (a ContractError): the runner then recovers by catch-up.
"""

from __future__ import annotations

import collections
import enum
import hashlib
import importlib
import inspect
import pkgutil
from typing import Any

import attrs
import msgpack

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError

MAGIC = b"TAPIO-CORRELATOR-STATE\x00"
VERSION = 1
_ENUM, _BIG = 2, 3  # msgpack ext types; a reference to the object table is a one-int array
_LIST, _TUPLE, _DICT, _SET, _FROZENSET, _DEQUE, _OBJECT, _PROTO, _NAMEDTUPLE = range(9)
_PRIMITIVE_TYPES = frozenset({str, int, float, bool, bytes, type(None)})
_MODEL_PACKAGES = ("tapio_correlator.engine", "tapio_common.model")
_PROTOS: tuple[type[Any], ...] = (events_pb2.Event,)
_MISSING = object()


class SnapshotRefused(ContractError):
    """Not a snapshot this engine can take (corrupt, foreign, another engine version, newer)."""


def _classes() -> dict[str, type[Any]]:
    """The registry: name -> class, for every class defined in the model packages' modules."""
    out: dict[str, type[Any]] = {f"proto:{p.DESCRIPTOR.full_name}": p for p in _PROTOS}
    for package in _MODEL_PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"{package}.{info.name}")
            for value in vars(mod).values():
                if inspect.isclass(value) and value.__module__ == mod.__name__:
                    out[f"{value.__module__}.{value.__qualname__}"] = value
    return out


def _fields(cls: type[Any]) -> tuple[str, ...]:
    if issubclass(cls, tuple):
        return tuple(getattr(cls, "_fields", ()))
    if attrs.has(cls):
        return tuple(f.name for f in attrs.fields(cls))
    slots = tuple(s for c in cls.__mro__ for s in vars(c).get("__slots__", ()))
    if slots:
        return slots
    init = vars(cls).get("__init__")
    return tuple(sorted(init.__code__.co_names)) if inspect.isfunction(init) else ()


_REGISTRY: dict[str, type[Any]] = {}
_NAMES: dict[type[Any], str] = {}
_FINGERPRINT = ""


def _registry() -> tuple[dict[str, type[Any]], dict[type[Any], str], str]:
    global _FINGERPRINT
    if not _REGISTRY:
        _REGISTRY.update(_classes())
        _NAMES.update({cls: name for name, cls in _REGISTRY.items()})
        digest = hashlib.sha256()
        for name in sorted(_REGISTRY):
            cls = _REGISTRY[name]
            members = [m.name for m in cls] if issubclass(cls, enum.Enum) else _fields(cls)
            digest.update(f"{name}:{','.join(members)};".encode())
        _FINGERPRINT = digest.hexdigest()[:32]
    return _REGISTRY, _NAMES, _FINGERPRINT


def fingerprint() -> str:
    """What a snapshot must carry to be taken by this engine."""
    return _registry()[2]


def _custom_state(cls: type[Any]) -> bool:
    return any("__getstate__" in vars(c) for c in cls.__mro__ if c is not object)


def dumps(root: Any) -> bytes:
    """The object graph under `root` as snapshot bytes (TypeError for a value outside the registry)."""
    _, names, fp = _registry()
    class_index: dict[str, int] = {}
    objects: list[Any] = []
    memo: dict[int, list[int]] = {}
    keep: list[Any] = []  # keeps temporaries alive so their ids stay unique while encoding
    plans: dict[type[Any], tuple[int, bool, tuple[str, ...]]] = {}

    def cls_ref(cls: type[Any]) -> int:
        name = names.get(cls)
        if name is None:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a snapshot class")
        return class_index.setdefault(name, len(class_index))

    def enc(value: Any) -> Any:
        t = type(value)
        if t is str or t is bool or t is float or value is None or t is bytes:
            return value
        if t is int:
            return value if -(2**63) <= value < 2**64 else msgpack.ExtType(_BIG, str(value).encode())
        if isinstance(value, enum.Enum):
            return msgpack.ExtType(_ENUM, msgpack.packb([cls_ref(t), value.name]))
        ref = memo.get(id(value))
        if ref is not None:
            return ref
        index = len(objects)
        ref = memo[id(value)] = [index]
        keep.append(value)
        objects.append(None)
        if t is list:
            objects[index] = [_LIST, [enc(v) for v in value]]
        elif t is tuple:
            objects[index] = [_TUPLE, [enc(v) for v in value]]
        elif t is dict:
            flat: list[Any] = []
            for k, v in value.items():
                flat.append(enc(k))
                flat.append(enc(v))
            objects[index] = [_DICT, flat]
        elif t is set or t is frozenset:
            objects[index] = [_SET if t is set else _FROZENSET, [enc(v) for v in value]]
        elif t is collections.deque:
            objects[index] = [_DEQUE, [enc(v) for v in value], value.maxlen]
        elif t in _PROTOS:
            objects[index] = [_PROTO, cls_ref(t), value.SerializeToString()]
        elif issubclass(t, tuple):  # a NamedTuple of the engine
            objects[index] = [_NAMEDTUPLE, cls_ref(t), [enc(v) for v in value]]
        else:
            plan = plans.get(t)
            if plan is None:
                plan = plans[t] = (cls_ref(t), _custom_state(t), () if attrs.has(t) else _fields(t))
            c, custom, slots = plan
            if custom:
                state = value.__getstate__()
                if not isinstance(state, dict):
                    raise TypeError(f"{t.__qualname__}.__getstate__ must return a dict for a snapshot")
            else:
                state = dict(getattr(value, "__dict__", ()))
                for slot in slots:
                    field = getattr(value, slot, _MISSING)
                    if field is not _MISSING:
                        state[slot] = field
            objects[index] = [_OBJECT, c, [x for k, v in state.items() for x in (k, enc(v))]]
        return ref

    root_ref = enc(root)
    names_list = sorted(class_index, key=class_index.__getitem__)
    body: bytes = msgpack.packb([VERSION, fp, names_list, objects, root_ref], use_bin_type=True)
    return MAGIC + body


def loads(data: bytes) -> Any:
    """The object graph of snapshot bytes; SnapshotRefused for anything this engine did not write."""
    if not data.startswith(MAGIC):
        raise SnapshotRefused(
            "not a correlator engine snapshot (unknown header: an old pickle, or foreign data)"
        )
    try:
        head = msgpack.unpackb(data[len(MAGIC) :], raw=False, strict_map_key=False, use_list=True)
        version, fp, class_names, objects, root = head
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise SnapshotRefused(f"corrupt correlator engine snapshot: {e}") from e
    registry, _, current = _registry()
    if not isinstance(version, int) or version > VERSION:
        raise SnapshotRefused(f"snapshot format {version!r} is newer than this engine's ({VERSION})")
    if fp != current:
        raise SnapshotRefused("snapshot written by another engine version (its classes differ)")
    classes: list[type[Any]] = []
    for name in class_names:
        cls = registry.get(name) if isinstance(name, str) else None
        if cls is None:
            raise SnapshotRefused(f"snapshot names a class outside the engine: {name!r}")
        classes.append(cls)
    try:
        return _Decoder(classes, objects).value(root)
    except SnapshotRefused:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise SnapshotRefused(f"corrupt correlator engine snapshot: {type(e).__name__}: {e}") from e


def _has_setstate(cls: type[Any]) -> bool:
    return any("__setstate__" in vars(c) for c in cls.__mro__ if c is not object)


class _Decoder:
    def __init__(self, classes: list[type[Any]], objects: list[Any]) -> None:
        self.classes = classes
        self.objects = objects
        self.built: dict[int, Any] = {}
        self.checked: set[tuple[type[Any], tuple[Any, ...]]] = set()  # (class, field names) found valid
        self.setstate = {cls: _has_setstate(cls) for cls in classes}

    def value(self, v: Any) -> Any:
        t = type(v)
        if t is list:
            return self.ref(v[0])
        if t is msgpack.ExtType:
            if v.code == _ENUM:
                index, member = msgpack.unpackb(v.data, raw=False)
                cls = self.classes[index]
                if not issubclass(cls, enum.Enum):
                    raise SnapshotRefused(f"{cls.__qualname__} is not an enum")
                return cls[member]
            if v.code == _BIG:
                return int(v.data.decode())
            raise SnapshotRefused(f"unknown value type {v.code} in snapshot")
        if t in _PRIMITIVE_TYPES:
            return v
        raise SnapshotRefused(f"unexpected {type(v).__name__} in snapshot")

    def ref(self, index: int) -> Any:
        built = self.built.get(index, _MISSING)
        if built is not _MISSING:
            return built
        entry = self.objects[index]
        kind = entry[0]
        val = self.value
        out: Any
        if kind == _LIST:
            out = self.built[index] = []
            out.extend(val(v) for v in entry[1])
        elif kind == _DICT:
            out = self.built[index] = {}
            flat = entry[1]
            for i in range(0, len(flat), 2):
                out[val(flat[i])] = val(flat[i + 1])
        elif kind == _SET:
            out = self.built[index] = set()
            out.update(val(v) for v in entry[1])
        elif kind == _DEQUE:
            out = self.built[index] = collections.deque(maxlen=entry[2])
            out.extend(val(v) for v in entry[1])
        elif kind == _TUPLE:
            out = self.built[index] = tuple(val(v) for v in entry[1])
        elif kind == _FROZENSET:
            out = self.built[index] = frozenset(val(v) for v in entry[1])
        elif kind == _PROTO:
            cls = self.classes[entry[1]]
            if cls not in _PROTOS:
                raise SnapshotRefused(f"{cls.__qualname__} is not a protobuf message of the contract")
            out = self.built[index] = cls.FromString(entry[2])
        elif kind == _NAMEDTUPLE:
            cls = self.classes[entry[1]]
            if not issubclass(cls, tuple) or not hasattr(cls, "_fields"):
                raise SnapshotRefused(f"{cls.__qualname__} is not a named tuple")
            out = self.built[index] = cls(*(val(v) for v in entry[2]))
        elif kind == _OBJECT:
            cls = self.classes[entry[1]]
            if cls in _PROTOS or issubclass(cls, (enum.Enum, tuple)):
                raise SnapshotRefused(f"{cls.__qualname__} cannot be an object entry")
            out = self.built[index] = cls.__new__(cls)
            flat = entry[2]
            names = tuple(flat[0::2])
            if (cls, names) not in self.checked:
                for name in names:
                    if type(name) is not str or name.startswith("__") or callable(getattr(cls, name, None)):
                        raise SnapshotRefused(f"{cls.__qualname__} has no data field {name!r}")
                self.checked.add((cls, names))
            state = {flat[i]: val(flat[i + 1]) for i in range(0, len(flat), 2)}
            if self.setstate[cls]:
                out.__setstate__(state)
            else:
                for name, field in state.items():
                    object.__setattr__(out, name, field)
        else:
            raise SnapshotRefused(f"unknown object kind {kind!r} in snapshot")
        return out
