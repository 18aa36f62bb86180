"""What the running kernel offers, read from the file system: privileges, tracefs tracepoint
formats, BTF member offsets. Feeds `programs.assemble` and the loader."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tapio_collector_ebpf.domain.btf import BtfFormatError, member_offset
from tapio_collector_ebpf.errors import EbpfError
from tapio_collector_ebpf.programs import Tracepoint

TRACEFS_ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def check_privileges() -> None:
    """Raises EbpfError unless this process may load tracing BPF programs: CAP_SYS_ADMIN, or
    CAP_BPF and CAP_PERFMON, in its effective set (root without them, e.g. in a container with
    dropped capabilities, cannot)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError as e:
        raise EbpfError(f"cannot read /proc/self/status to check capabilities: {e.strerror}") from e
    caps = 0
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)

    def has(bit: int) -> bool:
        return bool(caps >> bit & 1)

    if has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON)):
        return
    raise EbpfError(
        "loading BPF programs needs root (or CAP_BPF and CAP_PERFMON); run the collector as root "
        "(in Kubernetes: a privileged DaemonSet pod)"
    )


def tracefs_root() -> Path:
    """The mounted tracefs, or EbpfError saying how to mount it."""
    for root in TRACEFS_ROOTS:
        try:
            if (root / "events").is_dir():
                return root
        except PermissionError as e:
            raise EbpfError(f"cannot read {root}: {e.strerror} (the collector needs root)") from e
    raise EbpfError("tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing (as root)")


def tracepoint_formats(tracepoints: Iterable[Tracepoint]) -> dict[Tracepoint, str | None]:
    """The `format` text of each tracepoint, None where this kernel does not have it."""
    root = tracefs_root()
    out: dict[Tracepoint, str | None] = {}
    for cat, ev in tracepoints:
        try:
            out[(cat, ev)] = (root / "events" / cat / ev / "format").read_text()
        except FileNotFoundError:
            out[(cat, ev)] = None
        except OSError as e:
            raise EbpfError(f"cannot read the format of tracepoint {cat}:{ev}: {e.strerror}") from e
    return out


def btf_member_offset(struct_name: str, member: str, path: Path = BTF_VMLINUX) -> int | None:
    """Offset of `struct_name.member` from the kernel's BTF, None when BTF or the member is absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise EbpfError(f"cannot read {path}: {e.strerror}") from e
    try:
        return member_offset(data, struct_name, member)
    except BtfFormatError as e:
        raise EbpfError(f"cannot read {path}: {e}") from e
