"""Engine snapshots in a JetStream KV bucket, chunked under the server's max payload, verified on load."""

from __future__ import annotations

import hashlib
import json
import time

import attrs
import zstandard
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from tapio_common.logging import get_logger
from tapio_correlator.errors import CorrelatorError

log = get_logger(__name__)

HEAD = "snapshot.head"
CHUNK = 512 * 1024
MAX_CHUNKS = 8192  # 4 GiB of compressed state: a head claiming more is damaged


class StateStoreError(CorrelatorError):
    """The snapshot bucket cannot be used (permissions, limits) or holds a damaged snapshot."""


class BucketMissing(StateStoreError):
    """The snapshot bucket does not exist and this user may not create it: waited for at start
    (NACK creates it from its Stream resource)."""


@attrs.frozen
class Snapshot:
    """Engine state covering every event up to `events_seq` of the events stream; the last
    correlation confirmed in the correlations stream at that moment was `correlations_seq`."""

    engine: bytes
    events_seq: int
    correlations_seq: int
    generation: int = 0
    taken_at: float = 0.0


class StateStore:
    """Writes a snapshot as chunks `snapshot.<gen>.<i>` then the `snapshot.head` pointer, so a crash
    mid-write leaves the previous snapshot intact; older chunks are purged afterwards."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.generation = 0
        self.chunks = 0  # chunks of `generation` (purged once the next snapshot is stored)
        self._compressor = zstandard.ZstdCompressor(level=1)

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, replicas: int = 1) -> StateStore:
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError:
            try:
                kv = await js.create_key_value(
                    config=api.KeyValueConfig(
                        bucket=bucket,
                        history=1,
                        storage=api.StorageType.FILE,
                        replicas=replicas,
                        description="Tapio correlator engine snapshots (restart safety)",
                    )
                )
            except NatsError as e:
                raise BucketMissing(
                    f"the snapshot bucket {bucket} does not exist and cannot be created here: "
                    f"{e or 'no reply (not permitted?)'}"
                ) from e
        except NatsError as e:
            raise StateStoreError(f"cannot open the snapshot bucket {bucket}: {e}") from e
        return cls(kv)

    async def load(self) -> Snapshot | None:
        """The latest complete snapshot, or None when there is none yet."""
        try:
            head = await self.kv.get(HEAD)
        except KeyNotFoundError:
            return None
        except NatsError as e:
            raise StateStoreError(f"cannot read the snapshot head: {e}") from e
        try:
            meta = json.loads(head.value or b"{}")
            self.generation, self.chunks = int(meta["generation"]), int(meta["chunks"])
            if not 0 <= self.chunks <= MAX_CHUNKS:
                raise ValueError(f"{self.chunks} chunks")
        except (ValueError, KeyError, TypeError) as e:
            raise StateStoreError(f"the snapshot head is damaged: {e}") from e
        parts = []
        for i in range(self.chunks):
            try:
                entry = await self.kv.get(f"snapshot.{self.generation}.{i}")
            except (KeyNotFoundError, NatsError) as e:
                raise StateStoreError(f"snapshot {self.generation} chunk {i} is missing: {e}") from e
            parts.append(entry.value or b"")
        blob = b"".join(parts)
        if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
            raise StateStoreError(f"snapshot {self.generation} is damaged (checksum mismatch)")
        try:
            engine = zstandard.ZstdDecompressor().decompress(blob, max_output_size=int(meta["size"]))
        except (zstandard.ZstdError, ValueError, KeyError) as e:
            raise StateStoreError(f"snapshot {self.generation} is damaged: {e}") from e
        return Snapshot(
            engine=engine,
            events_seq=int(meta["events_seq"]),
            correlations_seq=int(meta["correlations_seq"]),
            generation=self.generation,
            taken_at=float(meta["taken_at"]),
        )

    async def save(self, engine: bytes, events_seq: int, correlations_seq: int) -> int:
        """Stores a snapshot; returns its compressed size in bytes."""
        return await self.save_compressed(
            self._compressor.compress(engine), len(engine), events_seq, correlations_seq
        )

    async def save_compressed(self, blob: bytes, size: int, events_seq: int, correlations_seq: int) -> int:
        """Stores a snapshot already compressed with zstd (`size` bytes uncompressed)."""
        previous, previous_chunks, gen = self.generation, self.chunks, self.generation + 1
        chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        meta = {
            "generation": gen,
            "chunks": len(chunks),
            "sha256": hashlib.sha256(blob).hexdigest(),
            "size": size,
            "events_seq": events_seq,
            "correlations_seq": correlations_seq,
            "taken_at": time.time(),
        }
        try:
            for i, chunk in enumerate(chunks):
                await self.kv.put(f"snapshot.{gen}.{i}", chunk)
            await self.kv.put(HEAD, json.dumps(meta).encode())
            self.generation, self.chunks = gen, len(chunks)
            for i in range(previous_chunks if previous else 0):  # by name: no key listing (a consumer)
                await self.kv.purge(f"snapshot.{previous}.{i}")
        except NatsError as e:
            raise StateStoreError(f"cannot write snapshot {gen}: {e}") from e
        return len(blob)
