"""A real redis-server on 127.0.0.1 (a free port, AOF on, data in a folder), for the broker
tests and bench/broker_speed.py."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``fsync`` is Redis' appendfsync: "always" (nothing acknowledged is lost when it is
    killed, the tests' setting) or "everysec" (its default)."""

    def __init__(self, folder: Path, fsync: str = "always"):
        self.folder, self.port, self.fsync = folder, free_port(), fsync
        self.url = f"redis://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", self.fsync, "--save", ""],
            stdout=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
