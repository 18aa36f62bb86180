"""eBPF collector benchmark: real kernel events at the highest rate this machine makes, observed
through the loaded programs (in-kernel aggregation, ring buffer, drains, Event building).

How it measures:
- A load generator (`ebpf_load.c`, compiled here with gcc) runs in a cgroup of its own
  (`tbpf-bench-*`): `--refusers` processes connect() to a closed loopback port as fast as they
  can (each refusal = 1 failed connect + 1 reset sent + 1 reset received in the kernel), and
  `--exec-storms` processes (at nice 10) fork+exec a tiny static binary (1 exec + 1 exit each). Each reports
  how many operations it completed: generated = 3 x refusals + 2 x execs.
- The collector (KernelCollector, the same code the Source runs, in this process on a thread)
  drains its maps every `--interval` s; observed = the sum of `count` of the events matching the
  generator (port, cgroup, comm). loss_ratio = 1 - observed/generated; samples the kernel could
  not store are counted there and printed as kernel_lost_samples (0 unreported loss means
  generated - observed <= kernel_lost_samples).
- collector_cpu_percent = CPU time of this process (collector thread) / wall time of the run;
  the BPF programs themselves run in the generators' context: their cost is measured by the
  kernel (sysctl kernel.bpf_stats_enabled on during the run, restored after) and printed as
  bpf_ns_per_run, and shows up as the drop from the baseline rate (generators without programs
  loaded), printed before the last line.

  bazel run //bench:ebpf -- --seconds 20
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf.adapters.cgroupfs import cgroup2_mount
from tapio_collector_ebpf.collector import KernelCollector
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_common.metrics import ComponentMetrics

SOURCE = Path(__file__).with_name("ebpf_load.c")


def compile_generator(workdir: Path) -> tuple[Path, Path]:
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit("bench ebpf: gcc is needed to compile the load generator (apt-get install gcc)")
    exe = workdir / "tbpf-load"
    if (
        subprocess.run([gcc, "-O2", "-static", "-o", str(exe), str(SOURCE)], capture_output=True).returncode
        != 0
    ):
        subprocess.run([gcc, "-O2", "-o", str(exe), str(SOURCE)], check=True)  # no static libc: dynamic
    nop = workdir / "tbpf-nop"
    nop.symlink_to(exe.name)
    return exe, nop


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_generators(
    exe: Path, nop: Path, port: int, seconds: float, args: argparse.Namespace, procs: Path
) -> tuple[int, int]:
    """(refusals, execs) completed by the generators, all started at once inside the cgroup."""
    wrap = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"]
    jobs = [
        subprocess.Popen(
            [*wrap, str(exe), "refuse", str(port), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(args.refusers)
    ]
    # The exec storm at nice 10: it makes few events per CPU second, so the refusers come first.
    execs = [
        subprocess.Popen(
            [*wrap, "nice", "-n", "10", str(exe), "exec", str(nop), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.exec_storms)
    ]
    counts = []
    for p in [*jobs, *execs]:
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit(f"bench ebpf: load generator failed (exit {p.returncode})")
        counts.append(int(out.strip()))
    return sum(counts[: len(jobs)]), sum(counts[len(jobs) :])


class Observer:
    """Polls the collector on a thread and adds up the counts of the generator's events."""

    def __init__(self, collector: KernelCollector, port: int, cgroup_id: int) -> None:
        self.collector, self.port, self.cgroup_id = collector, port, cgroup_id
        self.observed = 0
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="collector")

    def _take(self, events: list[events_pb2.Event]) -> None:
        for e in events:
            self.events += 1
            k = e.kernel
            failed = e.type == "tcp_connect" and e.action == "failed" and k.dport == self.port
            reset = e.type == "tcp_reset" and (k.dport if e.action == "received" else k.sport) == self.port
            mine = e.context.cgroup_id == self.cgroup_id and k.comm == "tbpf-nop"
            proc = mine and (
                e.type == "process_exec" or (e.type == "process_exit" and k.exit_code == 0 and k.signal == 0)
            )
            if failed or reset or proc:
                self.observed += k.count

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._take(self.collector.poll().events)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._take(self.collector.poll(0, force_drain=True).events)


def main() -> int:
    cpus = os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    ap.add_argument(
        "--refusers", type=int, default=cpus, help=f"refused-connect generators (default: CPUs, {cpus})"
    )
    ap.add_argument("--exec-storms", type=int, default=1, help="fork+exec generators (default 1)")
    ap.add_argument(
        "--interval", type=float, default=1.0, help="collector drain interval in seconds (default 1)"
    )
    ap.add_argument(
        "--baseline-seconds",
        type=float,
        default=3.0,
        help="generators alone, no programs loaded (0 = skip; default 3)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench ebpf: loading BPF programs needs root")
    root = cgroup2_mount()
    if root is None:
        sys.exit("bench ebpf: no cgroup v2 hierarchy mounted")
    cg = root / f"tbpf-bench-{secrets.token_hex(3)}"
    workdir = Path(tempfile.mkdtemp(prefix="tbpf-bench-"))
    cg.mkdir()
    try:
        exe, nop = compile_generator(workdir)
        port = closed_port()
        print(
            f"load: {args.refusers} x refused connect to 127.0.0.1:{port}, {args.exec_storms} x fork+exec; cgroup {cg}"
        )
        if args.baseline_seconds > 0:
            r, x = run_generators(exe, nop, port, args.baseline_seconds, args, cg / "cgroup.procs")
            print(
                f"baseline (no BPF programs): generated_per_second={(3 * r + 2 * x) / args.baseline_seconds:.0f}"
            )
        collector = KernelCollector(
            EbpfSettings(interval_ns=round(args.interval * 1e9)),
            node="bench",
            metrics=ComponentMetrics("ebpf-bench"),
        )
        try:
            obs = Observer(collector, port, cg.stat().st_ino)
            stats = Path("/proc/sys/kernel/bpf_stats_enabled")
            stats_before = stats.read_text().strip() if stats.exists() else None
            if stats_before is not None:
                stats.write_text("1")
            try:
                cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                obs.start()
                refusals, execs = run_generators(exe, nop, port, args.seconds, args, cg / "cgroup.procs")
                obs.stop()
                run_ns, runs = collector.session.run_stats()
            finally:
                if stats_before is not None:
                    stats.write_text(stats_before)
            wall = time.monotonic() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            lost = collector.lost_total
        finally:
            collector.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    generated = 3 * refusals + 2 * execs
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    loss = max(0.0, 1 - obs.observed / generated) if generated else 0.0
    print(
        f"generated: {refusals} refusals x 3 + {execs} execs x 2 = {generated} kernel events in {args.seconds:g} s"
    )
    print(
        f"observed: {obs.observed} in {obs.events} events (drained every {args.interval:g} s); kernel_lost_samples={lost}"
    )
    print(
        f"unreported_loss={max(0, generated - obs.observed - lost)} collector_cpu_seconds={cpu:.2f} wall_seconds={wall:.2f}"
    )
    if runs:
        print(
            f"bpf_programs: runs={runs} bpf_ns_per_run={run_ns / runs:.0f} (all programs, all tracepoint hits on the node)"
        )
    print(
        f"generated_per_second={generated / args.seconds:.0f} observed_per_second={obs.observed / args.seconds:.0f} "
        f"loss_ratio={loss:.6f} collector_cpu_percent={100 * cpu / wall:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
