"""A real systemd booted as PID 1 of private PID, mount, UTS, IPC and network namespaces, for tests.

    with NamespacedSystemd(units={"web.service": "[Service]\\nExecStart=/bin/sleep 60\\n"}) as sd:
        sd.bus_address          # unix:path=/proc/PID/root/run/dbus/system_bus_socket (its system bus)
        sd.systemctl("start", "web.service")
        sd.write_unit("db.service", "..."); sd.daemon_reload()
        sd.journal_root         # /proc/PID/root, for `journalctl --root`

Safety first: a systemd that boots on the machine's own filesystems runs systemd-tmpfiles and empties
the machine's /tmp (it did when tried). So before exec, inside the new mount namespace, the boot
script (`set -eu`, any failure aborts before systemd runs):

- makes every mount private (nothing propagates back to the host);
- mounts private tmpfs on /tmp, /var/tmp, /run, /var/lib/systemd, /var/log/journal and
  /etc/systemd/system (its own unit directory: the test units plus masks), and CHECKS that /tmp is
  a new file system (different device) before it execs systemd;
- gives it a private /dev (tmpfs with null, zero, full, random, urandom, tty bound in; its own
  devpts; /dev/console is a log file on the host, so systemd's own log can be read);
- masks every unit that touches the machine (tmpfiles, udev, sysctl, modules, binfmt, swap, ...,
  and everything the stock targets want) and disables every generator;
- puts itself in its own cgroup (`tsd-<id>` in the named systemd and unified hierarchies) with
  resource accounting off, so two instances never share a cgroup tree.

Its system bus is a real dbus-daemon (Debian's `dbus.socket`/`dbus.service`), socket-activated
inside the namespace exactly as on a node, so a client does Hello, AddMatch and Subscribe through
a bus daemon as it would in production, and a test can restart the bus alone. journald runs with
volatile storage (in the private /run), read from outside with `journalctl --root /proc/PID/root`.

Stop is SIGKILL to its PID from outside (the kernel then kills every process in the namespace) and
removal of its cgroups. If the machine cannot boot systemd this way, `start()` raises
SystemdUnavailable with the reason (tests turn it into an explicit skip).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tapio_common.errors import TapioError

SYSTEMD = "/lib/systemd/systemd"
UNIT_LIB = Path("/lib/systemd/system")
GENERATORS = Path("/lib/systemd/system-generators")
CGROUP_HIERARCHIES = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
BOOT_TARGET = "tapio-test.target"
START_TIMEOUT = 30.0

# Units of the stock targets that are allowed to run: the journal and the system bus.
KEEP = frozenset({"systemd-journald.service", "systemd-journald.socket", "dbus.socket", "dbus.service"})
# Units that touch the machine (or are useless here); masked on top of everything the targets want.
MASK = (
    "systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup-dev-early.service", "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-clean.timer", "systemd-udevd.service", "systemd-udev-trigger.service",
    "systemd-udev-settle.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-sysctl.service", "systemd-modules-load.service", "systemd-remount-fs.service",
    "systemd-journald-dev-log.socket", "systemd-journald-audit.socket", "systemd-journal-flush.service",
    "systemd-timesyncd.service", "systemd-networkd.service", "systemd-resolved.service",
    "systemd-logind.service", "systemd-random-seed.service", "systemd-update-utmp.service",
    "systemd-sysusers.service", "systemd-firstboot.service", "systemd-machine-id-commit.service",
    "systemd-binfmt.service", "systemd-hwdb-update.service", "ldconfig.service",
    "systemd-pstore.service", "systemd-initctl.socket", "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path", "swap.target", "tmp.mount", "getty.target",
    "console-getty.service", "getty@.service", "serial-getty@.service",
    "systemd-pcrphase.service", "systemd-pcrphase-sysinit.service", "systemd-repart.service",
    "kmod-static-nodes.service", "proc-sys-fs-binfmt_misc.automount", "dev-hugepages.mount",
    "dev-mqueue.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount", "sys-kernel-config.mount",
)  # fmt: skip
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

SYSTEM_CONF = """\
[Manager]
DefaultCPUAccounting=no
DefaultIOAccounting=no
DefaultIPAccounting=no
DefaultBlockIOAccounting=no
DefaultMemoryAccounting=no
DefaultTasksAccounting=no
DefaultTimeoutStopSec=10s
"""
JOURNALD_CONF = """\
[Journal]
Storage=volatile
RateLimitBurst=0
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""
TARGET = """\
[Unit]
Description=Tapio test boot target
Wants=systemd-journald.socket systemd-journald.service dbus.socket
"""

BOOT_SCRIPT = r"""
set -eu
log() { echo "tsd-boot: $*" >&2; }
mount --make-rprivate /
mount -t tmpfs -o mode=1777,size=64m tsd-vartmp /var/tmp
[ -d /var/lib/systemd ] && mount -t tmpfs -o mode=755 tsd-varlib /var/lib/systemd
[ -d /var/log/journal ] && mount -t tmpfs -o mode=2755 tsd-journal /var/log/journal
mount -t tmpfs -o mode=755 tsd-units /etc/systemd/system
cp -R "$TSD_STAGE/units/." /etc/systemd/system/
# everything read from the stage first: the stage lives in the host /tmp, hidden below
# private /dev (bind the few nodes a service needs from the host's; /dev/console is our log file)
mkdir -p "$TSD_STAGE/hostdev"
mount --bind /dev "$TSD_STAGE/hostdev"
mount -t tmpfs -o mode=755,nosuid tsd-dev /dev
for n in $TSD_DEV_NODES; do : > "/dev/$n"; mount --bind "$TSD_STAGE/hostdev/$n" "/dev/$n"; done
umount "$TSD_STAGE/hostdev"
: > /dev/console; mount --bind "$TSD_STAGE/console.log" /dev/console
mkdir /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tsd-shm /dev/shm
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
# from here on the host /tmp is out of reach
before=$(stat -c %d /tmp)
mount -t tmpfs -o mode=1777,size=256m tsd-tmp /tmp
[ "$(stat -c %d /tmp)" != "$before" ] || { log "private /tmp did not mount: not booting"; exit 97; }
# the host's mounts below /run (netns bind mounts, ...) are detached here, so this namespace never
# keeps them alive
for m in $(findmnt -n -l -o TARGET | grep '^/run/' | sort -r); do umount -l "$m"; done
mount -t tmpfs -o mode=755 tsd-run /run
mkdir -p /run/systemd/system.conf.d /run/systemd/journald.conf.d /run/systemd/system-generators /run/lock
echo "$TSD_SYSTEM_CONF" > /run/systemd/system.conf.d/tapio.conf
echo "$TSD_JOURNALD_CONF" > /run/systemd/journald.conf.d/tapio.conf
for g in $TSD_GENERATORS; do ln -s /dev/null "/run/systemd/system-generators/$g"; done
exec env -i container=tapio PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=tapio-test.target --show-status=no --log-target=journal \
    --log-level=info
"""


class SystemdUnavailable(TapioError):
    """This machine cannot boot a systemd in a namespace (not root, no systemd, no namespaces...)."""


class NamespacedSystemd:
    """One namespaced systemd (see the module docstring). Not thread-safe; use as a context manager."""

    def __init__(
        self,
        units: Mapping[str, str] | None = None,
        *,
        name: str = "tsd",
        extra_masks: Sequence[str] = (),
    ) -> None:
        self.name = f"{name}-{uuid.uuid4().hex[:8]}"
        self._units = dict(units or {})
        self._extra_masks = tuple(extra_masks)
        self._stage: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # host PID of the namespaced systemd (PID 1 inside)
        self._cgroups: list[Path] = []

    # -- paths -----------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The namespace's file system as seen from the host (`/proc/PID/root`)."""
        return Path(f"/proc/{self.pid}/root")

    @property
    def journal_root(self) -> str:
        """For `journalctl --root`: the namespace's /run/log/journal (volatile journal)."""
        return str(self.root)

    @property
    def bus_socket(self) -> Path:
        return self.root / "run/dbus/system_bus_socket"

    @property
    def bus_address(self) -> str:
        """The namespace's system bus, reachable from the host."""
        return f"unix:path={self.bus_socket}"

    @property
    def console_log(self) -> Path:
        assert self._stage is not None
        return self._stage / "console.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> NamespacedSystemd:
        self._preflight()
        self._stage = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self._write_stage()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "TSD_STAGE": str(self._stage),
            "TSD_DEV_NODES": " ".join(DEV_NODES),
            "TSD_SYSTEM_CONF": SYSTEM_CONF,
            "TSD_JOURNALD_CONF": JOURNALD_CONF,
            "TSD_GENERATORS": " ".join(sorted(p.name for p in GENERATORS.iterdir()))
            if GENERATORS.is_dir()
            else "",
        }
        boot_log = open(self._stage / "boot.log", "wb")  # noqa: SIM115 - the child keeps it
        try:
            self._proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--mount-proc",
                 "--propagation", "private", "/bin/sh", "-c", BOOT_SCRIPT],
                env=env, stdin=subprocess.DEVNULL, stdout=boot_log, stderr=boot_log,
                preexec_fn=self._enter_cgroups,
            )  # fmt: skip
        finally:
            boot_log.close()
        try:
            self.pid = self._wait_child(timeout)
            self._wait_booted(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise SystemdUnavailable("booting systemd in a namespace needs root")
        if not os.access(SYSTEMD, os.X_OK):
            raise SystemdUnavailable(f"{SYSTEMD} is not installed")
        for tool in ("unshare", "dbus-daemon", "journalctl", "systemctl", "nsenter"):
            if shutil.which(tool) is None:
                raise SystemdUnavailable(f"{tool} is not installed")
        if not all(Path(h, "cgroup.procs").exists() for h in CGROUP_HIERARCHIES[:1]):
            unified = Path("/sys/fs/cgroup/cgroup.procs").exists()
            if not unified:
                raise SystemdUnavailable("no cgroup hierarchy for systemd (/sys/fs/cgroup/systemd)")

    def _write_stage(self) -> None:
        assert self._stage is not None
        units = self._stage / "units"
        units.mkdir()
        (self._stage / "console.log").write_bytes(b"")
        masks = set(MASK) | set(self._extra_masks)
        for wants in UNIT_LIB.glob("*.wants"):
            masks.update(p.name for p in wants.iterdir())
        for unit in sorted(masks - KEEP - set(self._units)):
            (units / unit).symlink_to("/dev/null")
        (units / BOOT_TARGET).write_text(TARGET, encoding="utf-8")
        for unit, text in self._units.items():
            (units / unit).write_text(text, encoding="utf-8")

    def _cgroup_paths(self) -> list[Path]:
        paths = [Path(h) / self.name for h in CGROUP_HIERARCHIES if Path(h, "cgroup.procs").exists()]
        if not paths and Path("/sys/fs/cgroup/cgroup.procs").exists():  # pure cgroup v2 machine
            own = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[-1]
            paths = [Path("/sys/fs/cgroup" + own.rstrip("/")) / self.name]
        return paths

    def _enter_cgroups(self) -> None:
        """In the child before exec: its own cgroup in the hierarchies systemd manages."""
        for path in self._cgroup_paths():
            path.mkdir(exist_ok=True)
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def _wait_child(self, timeout: float) -> int:
        assert self._proc is not None
        self._cgroups = self._cgroup_paths()
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SystemdUnavailable(f"the namespace did not start: {self._failure_detail()}")
            try:
                pids = children.read_text().split()
            except OSError:
                pids = []
            if pids:
                return int(pids[0])
            time.sleep(0.01)
        raise SystemdUnavailable(f"no namespace child within {timeout:.0f}s: {self._failure_detail()}")

    def _wait_booted(self, timeout: float) -> None:
        """Until systemd answers on the bus and its boot job is done (is-system-running)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SystemdUnavailable(f"systemd exited while booting: {self._failure_detail()}")
            if self.bus_socket.exists():
                r = self.systemctl("is-system-running", check=False)
                state = r.stdout.strip()
                if state in ("running", "degraded"):
                    r = self.busctl("status", check=False)
                    if r.returncode == 0:
                        return
            time.sleep(0.05)
        raise SystemdUnavailable(
            f"systemd not booted within {timeout:.0f}s (state {state or 'unknown'}): {self._failure_detail()}"
        )

    def _failure_detail(self) -> str:
        if self._stage is None:
            return "no stage"
        lines: list[str] = []
        for name in ("boot.log", "console.log"):
            with contextlib.suppress(OSError):
                lines += (self._stage / name).read_text(errors="replace").splitlines()[-6:]
        return " | ".join(lines) or "no output"

    def kill(self) -> None:
        """SIGKILL PID 1 of the namespace; the kernel kills everything in it. Idempotent."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)

    def stop(self) -> None:
        """Kill, then remove its cgroups and stage directory. Idempotent."""
        self.kill()
        for top in self._cgroups:
            _remove_cgroup_tree(top)
        self._cgroups = []
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None
        self.pid = 0

    def __enter__(self) -> NamespacedSystemd:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- doing things inside ---------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Runs a command inside the namespace (its mounts and PIDs)."""
        cmd = ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "-n", "--", *argv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise TapioError(
                f"{shlex.join(argv)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}"
            )
        return r

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def busctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("busctl", "--system", "--no-pager", *args, check=check)

    def write_unit(self, unit: str, text: str) -> None:
        """Installs (or replaces) a unit file in its unit directory; call daemon_reload() after."""
        (self.root / "etc/systemd/system" / unit).write_text(text, encoding="utf-8")

    def remove_unit(self, unit: str) -> None:
        (self.root / "etc/systemd/system" / unit).unlink(missing_ok=True)

    def daemon_reload(self) -> None:
        self.systemctl("daemon-reload")

    def journal(self, unit: str, lines: int = 20) -> list[str]:
        """The unit's last journal lines (message text), read from outside."""
        r = subprocess.run(
            ["journalctl", "--root", self.journal_root, "-u", unit, "-n", str(lines), "-o", "cat",
             "--no-pager", "-q"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return r.stdout.splitlines()

    def __repr__(self) -> str:
        return f"<NamespacedSystemd {self.name} pid={self.pid}>"


def _remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup and its children, deepest first (cgroupfs only allows rmdir of empty groups)."""
    if not top.is_dir():
        return
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for d in [*dirs, top]:
        for _ in range(50):  # processes may take a moment to leave after SIGKILL
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
