"""The rtnetlink socket of the sampler: one NETLINK_ROUTE socket (made inside the configured
network namespace) that dumps link counters, links and qdiscs, decoded by `domain.wire`.

Blocking: the source calls it from a worker thread (`anyio.to_thread.run_sync`), one call at a
time. Namespace ids of veth peers are asked through pyroute2 (RTM_GETNSID), rarely.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from tapio_collector_cni.domain import wire
from tapio_collector_cni.errors import SamplingError

T = TypeVar("T")
_RCVBUF = 4 * 1024 * 1024
_MAX_INTERRUPTED_RETRIES = 5
_DUMP_TIMEOUT = 10.0  # seconds the kernel may take to answer one datagram of a dump


def _in_netns(path: str | None, fn: Callable[[], T]) -> T:
    """Runs `fn` on a short-lived thread that entered netns `path` (None: this namespace)."""
    if not path:
        return fn()
    box: list[Any] = []

    def target() -> None:
        try:
            pyroute2_netns.setns(path, flags=0)
            box.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box.append(e)

    t = threading.Thread(target=target, name="cni-netns")
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise SamplingError(f"cannot enter network namespace {path}: {box[0]}") from box[0]
    return box[0]  # type: ignore[no-any-return]


class RouteSocket:
    """Dumps of RTM_GETSTATS / RTM_GETLINK / RTM_GETQDISC with reusable receive buffers."""

    def __init__(self, netns_path: str | None = None) -> None:
        self.netns_path = netns_path or None
        self._sock = _in_netns(self.netns_path, self._open)
        self._buf = bytearray(1 << 20)
        self._seq = 0

    @staticmethod
    def _open() -> socket.socket:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind((0, 0))
            sock.settimeout(_DUMP_TIMEOUT)  # a dump that never ends is a failed sample, not a hang
        except OSError as e:
            raise SamplingError(f"cannot open a netlink route socket: {e.strerror}") from e
        return sock

    def close(self) -> None:
        self._sock.close()

    def _dump(
        self, request: Callable[[int], bytes], decode: Callable[[memoryview, Any], None], into: Any
    ) -> None:
        """One dump into `into` (cleared first); asked again while the kernel flags it inconsistent."""
        for _attempt in range(_MAX_INTERRUPTED_RETRIES):
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            into.clear()
            interrupted = False
            try:
                self._sock.send(request(seq))
                done = False
                while not done:
                    n = self._sock.recv_into(self._buf)
                    for msg_type, flags, payload in wire.messages(memoryview(self._buf)[:n], seq):
                        interrupted = interrupted or bool(flags & wire.NLM_F_DUMP_INTR)
                        if msg_type == wire.NLMSG_DONE:
                            done = True
                            break
                        decode(payload, into)
            except wire.WireError as e:
                raise SamplingError(f"netlink dump failed: {os.strerror(e.errno) if e.errno else e}") from e
            except TimeoutError as e:
                raise SamplingError(f"netlink dump unanswered for {_DUMP_TIMEOUT:g} s") from e
            except OSError as e:
                raise SamplingError(f"netlink dump failed: {e.strerror}") from e
            if not interrupted:
                return
        raise SamplingError(
            f"netlink dump interrupted by concurrent changes {_MAX_INTERRUPTED_RETRIES} times in a row"
        )

    def stats(self, into: dict[int, wire.Stats]) -> None:
        self._dump(wire.stats_request, wire.decode_stats, into)

    def links(self, into: dict[int, wire.LinkInfo]) -> None:
        self._dump(wire.links_request, wire.decode_link, into)

    def qdiscs(self, into: dict[int, wire.QdiscDrops]) -> None:
        self._dump(wire.qdiscs_request, wire.decode_qdisc, into)

    def nsid_of(self, netns_file: str) -> int:
        """The id this namespace gives the network namespace at `netns_file` (e.g.
        `/proc/<pid>/ns/net`), -1 when it has none or the file is gone."""
        try:
            fd = os.open(netns_file, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1
        try:
            # Asked on a thread inside the namespace, never through IPRoute(netns=...): that forks
            # a helper and stops it with SIGTERM, which under uvloop also reached this process's
            # own SIGTERM handler (the signal wake-up fd is shared): the collector stopped.
            answer = _in_netns(self.netns_path, lambda: _ask_nsid(fd))
        finally:
            os.close(fd)
        nsid = (answer or {}).get("nsid")
        if nsid is None or nsid >= 0x80000000:  # NETNSA_NSID_NOT_ASSIGNED comes back as u32 -1
            return -1
        return int(nsid)


def _ask_nsid(fd: int) -> dict[str, Any] | None:
    """RTM_GETNSID for the namespace open at `fd`, from the calling thread's namespace (a socket
    pyroute2 opens here and closes again: peers are looked up rarely, then cached)."""
    with IPRoute() as ipr:
        try:
            return ipr.get_netnsid(fd=fd)  # type: ignore[no-any-return]
        except NetlinkError:
            return None
