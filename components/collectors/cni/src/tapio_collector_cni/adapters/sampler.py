"""One sample of every interface of a network namespace: 64-bit link counters and qdisc drops
each call, names and veth peers when interfaces came or went (or every `link_refresh` seconds).

Blocking netlink I/O (`adapters.netlink`); the source runs it in a worker thread.
"""

from __future__ import annotations

import time

import attrs

from tapio_collector_cni.adapters.netlink import RouteSocket
from tapio_collector_cni.domain.wire import LinkInfo, QdiscDrops, Stats


@attrs.frozen
class Sample:
    mono_ns: int
    wall_ns: int
    stats: dict[int, Stats]
    qdiscs: dict[int, QdiscDrops]
    links: dict[int, LinkInfo]
    names: dict[int, str]
    links_refreshed: bool
    seconds: float  # CPU-independent wall time the dumps took


class Sampler:
    def __init__(self, netns_path: str = "", link_refresh: float = 60.0) -> None:
        self.route = RouteSocket(netns_path or None)
        self.link_refresh_ns = int(link_refresh * 1e9)
        self._links: dict[int, LinkInfo] = {}
        self._names: dict[int, str] = {}
        self._links_at = -(1 << 62)

    def close(self) -> None:
        self.route.close()

    def sample(self) -> Sample:
        start = time.perf_counter()
        stats: dict[int, Stats] = {}
        qdiscs: dict[int, QdiscDrops] = {}
        self.route.stats(stats)
        self.route.qdiscs(qdiscs)
        mono, wall = time.monotonic_ns(), time.time_ns()
        refreshed = False
        if stats.keys() != self._names.keys() or mono - self._links_at >= self.link_refresh_ns:
            links: dict[int, LinkInfo] = {}
            self.route.links(links)
            self._links = links
            self._names = {i: link.name for i, link in links.items()}
            self._links_at = mono
            refreshed = True
            # An interface that came between the two dumps has no name yet: next sample.
            stats = {i: s for i, s in stats.items() if i in links}
        return Sample(
            mono, wall, stats, qdiscs, self._links, self._names, refreshed, time.perf_counter() - start
        )
