"""Start and stop a real `riskguard serve` process on loopback for the service tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
_LISTEN = re.compile(r"riskguard serve: (https?://\S+) ")


class Server:
    """``python -m riskguard serve --port 0 ARGS``; ``url`` once it listens and is ready."""

    def __init__(self, *args: str, startup_s: float = 60.0, verify: object = True) -> None:
        self.args = args
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("RISKGUARD_SERVE_CONFIG", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "riskguard", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self._wait_ready(startup_s, verify)
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            m = _LISTEN.search(line)
            if m and not self.url:
                self.url = m.group(1)
                self._listening.set()

    def _wait_ready(self, startup_s: float, verify: object) -> None:
        deadline = time.monotonic() + startup_s
        while not self._listening.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + self.log())
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log())
            try:
                r = httpx.get(self.url + "/readyz", timeout=2, verify=verify)  # type: ignore[arg-type]
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready in time:\n" + self.log())

    def log(self) -> str:
        return "".join(self.lines)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (graceful: the audit log is drained), SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
