"""Root tests on the real kernel: real processes, a real OOM kill, real TCP connects, resets and
retransmits, seen through the loaded BPF programs. Nothing is simulated. Skips only, with the
reason, where BPF cannot be loaded (not root, no bcc, no tracefs)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import pytest

from tapio.events.v1 import events_pb2
from tapio_testing.cgroups import cgroup2_dir, memory_cgroup, named_sh, tag
from tapio_testing.netns import namespaces, require_netns, veth
from tapio_testing.tcdrop import drop_ingress


def test_exec_and_nonzero_exit_have_pid_comm_and_code(watcher: Any) -> None:
    name = f"tbpf-x{tag()}"
    with named_sh(name) as sh:
        p = subprocess.run([sh, "-c", "exit 7"], check=False)
        assert p.returncode == 7
        child = subprocess.Popen([sh, "-c", "exit 7"])
        child.wait()
    execs = watcher.wait(lambda e: e.type == "process_exec" and e.kernel.comm == name, total=2)
    exits = watcher.wait(lambda e: e.type == "process_exit" and e.kernel.comm == name, total=2)
    assert sum(e.kernel.count for e in execs) == 2
    assert execs[-1].kernel.filename.endswith(name)
    assert {e.kernel.exit_code for e in exits} == {7}
    assert {e.kernel.signal for e in exits} == {0}
    assert exits[-1].kernel.pid == child.pid  # the last process of the window
    assert exits[-1].kernel.ppid == os.getpid()
    assert exits[-1].action == "failed"
    assert exits[-1].severity == events_pb2.SEVERITY_WARNING
    assert exits[-1].context.node == "test-node"
    assert exits[-1].context.cgroup_id > 0


def test_death_by_signal_is_an_error(watcher: Any) -> None:
    name = f"tbpf-s{tag()}"
    with named_sh(name) as sh:
        child = subprocess.Popen([sh, "-c", "kill -SEGV $$"])
        child.wait()
    assert child.returncode == -11
    (ev,) = watcher.wait(lambda e: e.type == "process_exit" and e.kernel.comm == name)
    assert (ev.kernel.signal, ev.kernel.pid, ev.action) == (11, child.pid, "killed")
    assert ev.severity == events_pb2.SEVERITY_ERROR


def test_oom_kill_in_a_small_memory_cgroup_names_the_victim(watcher: Any) -> None:
    hog = "b = []\nwhile True:\n    b.append(b'x' * (1 << 20))\n"
    with memory_cgroup(f"tbpf-oom-{tag()}", 48 << 20) as procs:
        # Only this child is in the cgroup, so it is the only process the OOM killer may choose.
        victim = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {procs} && exec "$0" -c "$1"', sys.executable, hog]
        )
        victim.wait(timeout=60)
    assert victim.returncode == -9
    (ev,) = watcher.wait(lambda e: e.type == "oom_kill" and e.kernel.oom_victim_pid == victim.pid)
    assert ev.severity == events_pb2.SEVERITY_CRITICAL
    assert ev.action == "killed"
    assert ev.kernel.pid == victim.pid
    assert ev.context.pid == victim.pid
    assert ev.kernel.oom_pages > 0
    assert ev.kernel.count == 1
    assert ev.kernel.comm.startswith("python")


def test_connect_to_a_local_listener_has_a_plausible_latency(watcher: Any) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        before = time.monotonic_ns()
        with socket.create_connection(("127.0.0.1", port)) as c:
            took = time.monotonic_ns() - before
            conn, _ = srv.accept()
            conn.close()
            lport = c.getsockname()[1]
    (lat,) = watcher.wait(
        lambda e: e.type == "tcp_connect_latency" and e.kernel.sport == lport and e.kernel.dport == port
    )
    assert 0 < lat.kernel.latency_ns <= took  # the handshake, inside the connect() call we timed
    assert lat.kernel.daddr == "127.0.0.1"
    assert lat.kernel.pid == os.getpid()
    (agg,) = watcher.wait(
        lambda e: e.type == "tcp_connect" and e.action == "connected" and e.kernel.dport == port
    )
    assert agg.kernel.count == 1
    assert agg.kernel.latency_ns == lat.kernel.latency_ns
    assert agg.kernel.sport == 0  # the client's ephemeral port is not part of the flow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connects_to_a_closed_port_count_resets_and_failures(watcher: Any) -> None:
    port, n = _closed_port(), 25
    for _ in range(n):
        with socket.socket() as c, pytest.raises(ConnectionRefusedError):
            c.connect(("127.0.0.1", port))

    def kind(type_: str, action: str, local: bool) -> list[events_pb2.Event]:
        def pred(e: events_pb2.Event) -> bool:
            k = e.kernel
            return e.type == type_ and e.action == action and (k.sport if local else k.dport) == port

        return list(watcher.wait(pred, total=n))

    for type_, action, local in (
        ("tcp_reset", "received", False),
        ("tcp_reset", "sent", True),
        ("tcp_connect", "failed", False),
    ):
        events = kind(type_, action, local)
        assert sum(e.kernel.count for e in events) == n, (type_, action)
        assert all(e.kernel.window_ns > 0 for e in events)
    received = kind("tcp_reset", "received", False)
    assert {e.kernel.pid for e in received} == {os.getpid()}


def test_process_in_a_containerd_pod_cgroup_maps_to_its_container(watcher: Any) -> None:
    cid = tag() * 10 + "abcd"  # 64 hex digits
    pod_uid = f"{tag()}00-1111-2222-3333-{tag()}{tag()}"
    name = f"tbpf-c{tag()}"
    layout = (
        f"tbpf-kubepods-{tag()}.slice",
        "kubepods-burstable.slice",
        f"kubepods-burstable-pod{pod_uid.replace('-', '_')}.slice",
        f"cri-containerd-{cid}.scope",
    )
    with named_sh(name) as sh, cgroup2_dir(*layout) as cg:
        p = subprocess.run(
            ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$0" -c "exit 0"', sh], check=True
        )
        assert p.returncode == 0
        (ev,) = watcher.wait(lambda e: e.type == "process_exec" and e.kernel.comm == name)
    assert ev.context.container_id == f"containerd://{cid}"
    assert ev.context.pod_uid == pod_uid
    assert ev.context.cgroup_id > 1


def _total_retrans(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("<I", info, 100)[0])  # struct tcp_info.tcpi_total_retrans


def test_segments_dropped_on_a_veth_are_retransmitted_and_counted(watcher: Any) -> None:
    require_netns()
    t = tag()
    payload = 333
    with namespaces(f"tbpf-a{t}", f"tbpf-b{t}") as (a, b):
        veth(a, f"tbpf-a{t}", b, f"tbpf-b{t}", "10.213.7.1/30", "10.213.7.2/30")
        srv = b.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli = a.socket(socket.AF_INET, socket.SOCK_STREAM)
        with srv, cli:
            srv.bind(("10.213.7.2", 0))
            srv.listen()
            port = srv.getsockname()[1]
            cli.connect(("10.213.7.2", port))
            conn, _ = srv.accept()
            with conn:
                # Every frame of this one segment (its retransmits too) is dropped where B receives it.
                drop_ingress(b, f"tbpf-b{t}", 14 + 20 + 32 + payload)
                cli.sendall(b"r" * payload)
                deadline = time.monotonic() + 10
                while _total_retrans(cli) < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
                cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                retrans = _total_retrans(cli)
                cli.close()  # an abort: no retransmit after the count was read
    assert retrans >= 3

    def pred(e: events_pb2.Event) -> bool:
        return e.type == "tcp_retransmit" and e.kernel.daddr == "10.213.7.2" and e.kernel.dport == port

    events = watcher.wait(pred, total=retrans)
    assert sum(e.kernel.count for e in events) == retrans
    assert {e.kernel.pid for e in events} == {os.getpid()}  # the owner, though retransmits run in softirq
    assert all(e.kernel.sport == 0 and e.kernel.saddr == "10.213.7.1" for e in events)


def test_ipv6_connect_latency_has_v6_addresses(watcher: Any) -> None:
    with socket.socket(socket.AF_INET6) as srv:
        try:
            srv.bind(("::1", 0))
        except OSError as e:
            pytest.skip(f"no IPv6 loopback here: {e}")
        srv.listen()
        port = srv.getsockname()[1]
        with socket.create_connection(("::1", port)):
            conn, _ = srv.accept()
            conn.close()
    (lat,) = watcher.wait(lambda e: e.type == "tcp_connect_latency" and e.kernel.dport == port)
    assert (lat.kernel.saddr, lat.kernel.daddr) == ("::1", "::1")
    assert lat.kernel.latency_ns > 0


def test_reset_received_by_an_accepted_socket_belongs_to_the_listener(watcher: Any) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        cli = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        with conn:
            cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            cli.close()  # an abort: the accepted socket receives a reset

            def pred(e: events_pb2.Event) -> bool:
                k = e.kernel
                return e.type == "tcp_reset" and e.action == "received" and k.sport == port

            (ev,) = watcher.wait(pred)
    # Attributed to the listener's process (the reset arrived in softirq); the peer's port dropped.
    assert (ev.kernel.pid, ev.kernel.dport, ev.kernel.count) == (os.getpid(), 0, 1)
    assert ev.context.cgroup_id > 0


def test_a_full_map_loses_samples_counted_and_reported(make_watcher: Any) -> None:
    # Programs of their own with room for 4 flows per window: 20 refused ports make 60.
    tiny = make_watcher(interval_ns=10 * 10**9, flow_entries=4, programs=("tcp_connect", "tcp_reset"))
    ports = [_closed_port() for _ in range(20)]
    for port in ports:
        with socket.socket() as c, pytest.raises(ConnectionRefusedError):
            c.connect(("127.0.0.1", port))
    tiny.poll(force_drain=True)
    lost = tiny.collector.lost_total
    mine = [e for e in tiny.seen if e.kernel.dport in ports or e.kernel.sport in ports]
    observed = sum(e.kernel.count for e in mine if e.type in ("tcp_reset", "tcp_connect"))
    assert lost > 0
    assert observed + lost >= 3 * len(ports)  # nothing unaccounted for (others' traffic may add to both)
    assert all(e.attributes["kernel_lost_samples"] == str(lost) for e in tiny.seen)
    text = tiny.metrics.exposition().decode()
    assert 'kernel_samples_lost_total{reason="flow_map_full"}' in text
    assert 'events_dropped_total{reason="kernel_flow_map_full"}' in text
