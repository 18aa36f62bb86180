"""Debian's rsyslogd as a receiver: imtcp (plain, or TLS through gnutls) and imudp on free loopback
ports, every message written to a file as one JSON line (what rsyslog parsed, and the raw message).

    with Rsyslog(tmp_path, tls=certs) as rs:    # rs.tcp_port, rs.udp_port
        rs.lines() -> [{"raw": ..., "app": ..., "msgid": ..., "sd": ..., "msg": ..., ...}]
        rs.restart()   # SIGTERM, wait, start again on the same ports; the file stays
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tapio_common.nats.embedded import free_port
from tapio_testing.receivers.certs import Certs

RSYSLOGD = "/usr/sbin/rsyslogd"
_TEMPLATE = """template(name="texp_json" type="list" option.jsonf="on") {
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="protocol" name="protocol-version" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}"""


class RsyslogError(RuntimeError):
    pass


class Rsyslog:
    def __init__(self, directory: Path, tls: Certs | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.tls = tls
        self.tcp_port = free_port()
        self.udp_port = _free_udp_port()
        self.out = self.dir / "received.jsonl"
        self.conf = self.dir / "rsyslog.conf"
        self.log = self.dir / "rsyslogd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf.write_text(self._config())

    def _config(self) -> str:
        if self.tls is not None:
            tcp = (
                f'global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{self.tls.ca}"\n'
                f'       DefaultNetstreamDriverCertFile="{self.tls.cert}" DefaultNetstreamDriverKeyFile="{self.tls.key}")\n'
                'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")\n'
            )
        else:
            tcp = 'module(load="imtcp")\n'
        return (
            f'global(workDirectory="{self.dir / "work"}" maxMessageSize="64k")\n'
            'main_queue(queue.timeoutShutdown="20000" queue.size="200000")\n'
            f"{tcp}"
            f'input(type="imtcp" port="{self.tcp_port}" address="127.0.0.1" name="tcp")\n'
            'module(load="imudp")\n'
            f'input(type="imudp" port="{self.udp_port}" address="127.0.0.1" name="udp")\n'
            f"{_TEMPLATE}\n"
            f'action(type="omfile" file="{self.out}" template="texp_json" flushOnTXEnd="on" asyncWriting="off")\n'
        )

    def start(self, timeout: float = 15.0) -> Rsyslog:
        check = subprocess.run([RSYSLOGD, "-N1", "-f", str(self.conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RsyslogError(f"rsyslog config refused: {check.stderr.strip() or check.stdout.strip()}")
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RsyslogError(
                    f"rsyslogd exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RsyslogError(f"rsyslogd not listening on {self.tcp_port} within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: rsyslog finishes its queue (the config gives it 20 s) and exits."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        with self.out.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_lines(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.lines()
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        pid = self.dir / "rsyslogd.pid"
        if pid.exists():
            os.unlink(pid)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
