"""Workers and the identity service over a real redis-server (started here on 127.0.0.1, AOF
on, fsync always, in a temp folder) on the PETS two-view site's first frames: the same
identities as ``track run``, whatever is killed and restarted on the way."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, need_shared
from tests.redis_server import REDIS, RedisServer, free_port
from tracking.cli import main

pytestmark = pytest.mark.skipif(not REDIS, reason="needs redis-server (apt-get install "
                                "redis-server as root; scripts/setup.sh does)")
SITE = ROOT / "configs" / "cameras" / "pets_two_view.yaml"
FRAMES = 12
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OUTPUTS = ["left.txt", "right.txt", "identities.json"]


@pytest.fixture
def broker(tmp_path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.kill()


@pytest.fixture(scope="module")
def pets(tmp_path_factory) -> Path:
    """The site's two views (first FRAMES frames, lossless) in a folder where the site's
    relative paths resolve, and track run's outputs and events for them in ``inproc``."""
    src = need_shared("data", "video", "PETS09-S2L1", "PETS09-S2L1.avi")
    where = tmp_path_factory.mktemp("pets")
    (where / "runs" / "pets_two_view").mkdir(parents=True)
    cap = cv2.VideoCapture(str(src))
    views = {n: cv2.VideoWriter(str(where / "runs" / "pets_two_view" / f"{n}.avi"),
                                cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (384, 576))
             for n in ("left", "right")}
    for _ in range(FRAMES):
        frame = cap.read()[1]
        views["left"].write(np.ascontiguousarray(frame[:, :384]))
        views["right"].write(np.ascontiguousarray(frame[:, 384:]))
    for v in views.values():
        v.release()
    here = os.getcwd()
    os.chdir(where)
    try:
        assert main(["run", "--config", str(SITE), "--output", "inproc", "--no-video",
                     "--events"]) == 0
    finally:
        os.chdir(here)
    return where


def track(where: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracking.cli", *args], cwd=where, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def service(where: Path, url: str, out: str) -> subprocess.Popen:
    return track(where, "identities", "--config", str(SITE), "--broker", url, "--output", out,
                 "--duration", "200")


def publisher(where: Path, url: str, camera: str, delay: float = 0.05) -> subprocess.Popen:
    """A model-free worker publishing the recorded run's events of one camera."""
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "broker_publisher.py"), url,
                             SITE.stem, str(where / "inproc" / "events.jsonl"), camera,
                             "--fps", "10", "--delay", str(delay)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(*procs: subprocess.Popen) -> None:
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out


def same_as_in_process(where: Path, out: str) -> None:
    for name in OUTPUTS:
        assert (where / out / name).read_text() == (where / "inproc" / name).read_text(), name
    seen = [(e["camera"], e["track_id"], e["frame"])
            for line in (where / out / "events.jsonl").read_text().splitlines()
            for e in json.loads(line) if e["kind"] == "updated"]
    assert len(seen) == len(set(seen))  # no tracklet update applied twice


def wait_for(check, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def published(url: str, camera: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).hget(f"mcreid:{SITE.stem}:published", camera) or 0)


def test_two_workers_give_the_in_process_identities(pets, broker):
    procs = [service(pets, broker.url, "site")]
    procs += [track(pets, "worker", "--config", str(SITE), "--camera", c, "--broker",
                    broker.url) for c in ("left", "right")]
    finish(*procs)
    same_as_in_process(pets, "site")
    status = json.loads((pets / "site" / "status.json").read_text())
    assert set(status["cameras"]) == {"left", "right"}


def test_killed_worker_and_service_resume_without_loss_or_repeats(pets, broker):
    svc = service(pets, broker.url, "killed")
    right = publisher(pets, broker.url, "right", delay=0.3)
    left = publisher(pets, broker.url, "left", delay=0.3)
    wait_for(lambda: published(broker.url, "right") >= 4)
    right.kill()
    right.wait()
    right = publisher(pets, broker.url, "right", delay=0.3)  # takes over the dead one's claim
    wait_for(lambda: (pets / "killed" / "identity_state.pkl").is_file()
             and published(broker.url, "left") >= 7)
    svc.kill()
    svc.wait()
    svc = service(pets, broker.url, "killed")
    finish(left, right, svc)
    same_as_in_process(pets, "killed")


def test_redis_restarted_with_aof_loses_no_acknowledged_event(pets, broker):
    procs = [service(pets, broker.url, "aof"), publisher(pets, broker.url, "left", 0.2),
             publisher(pets, broker.url, "right", 0.2)]
    wait_for(lambda: published(broker.url, "left") >= 5)
    broker.kill()
    time.sleep(1.0)
    broker.start()
    finish(*procs)
    same_as_in_process(pets, "aof")


def test_an_unreachable_broker_is_retried_until_the_duration(tmp_path):
    start = time.monotonic()
    p = track(tmp_path, "worker", "--config", str(SITE), "--camera", "left", "--broker",
              f"redis://127.0.0.1:{free_port()}", "--duration", "4")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 1, out
    assert out.count("unreachable") >= 2 and "retrying in 1.0 s" in out
    assert "Traceback" not in out and time.monotonic() - start < 60


def fails(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_is_a_one_line_error(broker, capsys, tmp_path):
    import redis

    from tracking.broker import Entry, Keys, Link, Publisher

    worker = ["worker", "--config", str(SITE), "--broker"]
    assert "not a Redis URL" in fails(capsys, *worker, "http://127.0.0.1:1", "--camera", "left")
    assert "not in" in fails(capsys, *worker, broker.url, "--camera", "middle")
    keys = Keys(SITE.stem)
    client = redis.Redis.from_url(broker.url)
    client.set(keys.claim("left"), f"{socket.gethostname()}:{os.getpid()}")  # alive: us
    assert "already run by worker" in fails(capsys, *worker, broker.url, "--camera", "left")
    client.delete(keys.claim("left"))

    other = Publisher(Link(broker.url), keys, ["right"])
    other.claim()
    other.check_model({"sha256": "aaaa"})
    with pytest.raises(Exception, match="differs from the model of the site"):
        Publisher(Link(broker.url), keys, ["left"]).check_model({"sha256": "bbbb"})
    other.publish(Entry("right", 1, 0.0, 10.0, "aaaa", []))
    other.model = "bbbb"  # a worker of another model that skipped the check
    other.publish(Entry("right", 2, 0.1, 10.0, "bbbb", []))
    other.close()
    assert "re-ID model bbbb" in fails(capsys, "identities", "--config", str(SITE), "--broker",
                                       broker.url, "--output", str(tmp_path / "out"),
                                       "--duration", "20")
