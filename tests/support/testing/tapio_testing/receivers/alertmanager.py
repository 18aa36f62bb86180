"""Debian's prometheus-alertmanager as a receiver: started on a free loopback port with its own
storage directory and clustering off; alerts read back through its v2 API.

    with Alertmanager(tmp_path) as am:    # am.url
        am.alerts() -> the API's alerts (active ones; resolved ones drop out)
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tapio_common.nats.embedded import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: "null"
  group_by: ["alert_id"]
  group_wait: 1s
receivers:
  - name: "null"
"""


class AlertmanagerError(RuntimeError):
    pass


class Alertmanager:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "alertmanager.yml"
        self.conf.write_text(CONFIG)
        self.log = self.dir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Alertmanager:
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={self.conf}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AlertmanagerError(
                    f"alertmanager exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AlertmanagerError(f"alertmanager not ready on {self.port} within {timeout}s")

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as r:
            data: list[dict[str, Any]] = json.loads(r.read())
            return data

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
