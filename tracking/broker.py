"""The seam between per-camera runs and the identity service over Redis Streams, so that a
site's cameras run on several machines (``track worker``) and one identity service decides
their people (``track identities --broker``).

Keys of a site (its config file's stem) on the broker, all under ``mcreid:SITE:``:

- ``events``: a stream, one entry per camera frame (empty frames too: they tell the service
  how far a camera has got), with the camera, its sequence number ``seq``, the frame time,
  the camera's fps, the re-ID model's hash and the frame's tracklet events
  (tracking.events.to_json); the camera's end (its open tracks' ended events) is an entry
  with ``end`` set. (camera, seq) is the event id: for a recording seq is the frame number,
  so a worker restarted on the same file re-makes the same ids and publishes only those
  after the last one published (``published``); a live camera's seq and track ids go on
  from the last published ones (``published``, ``tracks``), so nothing is reused.
- ``decisions``: a stream of the service's decisions, one entry per step that made some
  (a restarted service may repeat a few: a later decision for a track replaces an earlier).
- ``claim:CAMERA``: which worker runs a camera, kept alive by its heartbeat (``CLAIM_TTL_S``).
- ``model``: the re-ID model of the site's events (a worker of another model is refused).
- ``epoch``: the site's live clock (wall time of its first worker).
- ``status``: one JSON health line per worker and for the service.

Delivery is at least once: the service reads entries through the consumer group
``identities``, applies them in step order (frames of all cameras aligned by time as
``track run`` aligns them, each camera in seq order), drops those it has applied already,
saves its state (OUTPUT/identity_state.pkl: the identity service, its decisions, the last
seq applied per camera, and how much of OUTPUT/events.jsonl's log is applied) and only then
acknowledges them. Killed and restarted, it loads its state and reads its unacknowledged
entries again. Acknowledged entries are trimmed from the stream.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from reid.io import part_path, publish, write_json_atomic
from tracking.config import Settings, UsageError
from tracking.events import Ids, TrackletEvent, from_json, to_json
from tracking.identities import IdentityService, OfflineIdentities, identity_service
from tracking.multicam import Camera
from tracking.sources import is_stream

log = logging.getLogger(__name__)

GROUP = "identities"
CLAIM_TTL_S = 10.0


class BrokerGone(Exception):
    """The broker stayed unreachable until the run's deadline."""


def connect(url: str):
    """A Redis client for ``redis://HOST:PORT[/DB]``; a malformed URL is a usage error."""
    import redis

    parts = urlparse(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "redis" or not parts.hostname or port == -1:
        raise UsageError(f"--broker {url!r} is not a Redis URL; give redis://HOST:PORT, e.g. "
                         "redis://127.0.0.1:6379")
    return redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=10.0,
                                health_check_interval=5)


class Link:
    """Calls to the broker that outlast it going away: a call that cannot reach it is
    retried with exponential backoff (logged once per wait), until ``until`` (monotonic
    seconds), when it raises BrokerGone."""

    def __init__(self, url: str, until: float = float("inf"), backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0):
        self.url, self.until = url, until
        self.redis = connect(url)
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.down_since: float | None = None

    def __call__(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        import redis

        wait = self.backoff_s
        while True:
            try:
                result = fn(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                if time.monotonic() + wait > self.until:
                    raise BrokerGone(f"broker {self.url} unreachable ({e})") from e
                if self.down_since is None:
                    self.down_since = time.monotonic()
                log.warning("broker %s unreachable (%s); retrying in %.1f s", self.url,
                            str(e).splitlines()[0], wait)
                time.sleep(wait)
                wait = min(2 * wait, self.backoff_max_s)
                continue
            if self.down_since is not None:
                log.warning("broker %s back after %.1f s", self.url,
                            time.monotonic() - self.down_since)
                self.down_since = None
            return result


class Keys:
    """The names of a site's keys on the broker (see the module docstring)."""

    def __init__(self, site: str):
        self.prefix = f"mcreid:{site}:"
        self.events, self.decisions = self.prefix + "events", self.prefix + "decisions"
        self.published, self.tracks = self.prefix + "published", self.prefix + "tracks"
        self.model, self.epoch, self.status = (self.prefix + "model", self.prefix + "epoch",
                                               self.prefix + "status")

    def claim(self, camera: str) -> str:
        return f"{self.prefix}claim:{camera}"


def site_name(config: str) -> str:
    return Path(config).stem


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stale(holder: str) -> bool:
    """A claim held by a process of this machine that no longer runs."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Entry:
    """One camera frame's events as the stream carries them."""

    camera: str
    seq: int
    time: float
    fps: float
    model: str
    events: list[TrackletEvent]
    end: bool = False
    sent: float = 0.0          # wall time it was published
    raw: str = ""              # the events as the stream carried them (JSON)

    def fields(self) -> dict[str, str]:
        return {"camera": self.camera, "seq": str(self.seq), "time": repr(self.time),
                "fps": repr(self.fps), "model": self.model, "end": "1" if self.end else "0",
                "sent": repr(time.time()),
                "events": json.dumps([to_json(e) for e in self.events])}

    @classmethod
    def parse(cls, fields: dict[bytes, bytes]) -> Entry:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(f["camera"], int(f["seq"]), float(f["time"]), float(f["fps"]), f["model"],
                   [from_json(d) for d in json.loads(f["events"])], f["end"] == "1",
                   float(f["sent"]), f["events"])

    def json(self) -> str:
        """The events as JSON: what the stream carried, or made now."""
        return self.raw or json.dumps([to_json(e) for e in self.events])


class Publisher:
    """A worker's side: claims its cameras, keeps the claims alive, publishes their frames'
    events once each (see the module docstring), and says how it is doing."""

    def __init__(self, link: Link, keys: Keys, cameras: list[str]):
        self.link, self.keys, self.cameras = link, keys, cameras
        self.r, self.me = link.redis, worker_id()
        self.published: dict[str, int] = {}
        self.max_track: dict[str, int] = {}
        self.unpublished = 0
        self.model = ""
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.status: Callable[[], dict] = dict

    def claim(self) -> None:
        """Claims every camera, or none: a camera another running worker holds is an
        error (exit 2); the claim of a worker of this machine that died is taken over."""
        got = []
        for camera in self.cameras:
            key = self.keys.claim(camera)
            if not self.link(self.r.set, key, self.me, nx=True, ex=int(CLAIM_TTL_S)):
                holder = (self.link(self.r.get, key) or b"").decode()
                if holder and not _stale(holder):
                    for c in got:
                        self.link(self.r.delete, self.keys.claim(c))
                    raise UsageError(f"camera {camera} is already run by worker {holder}; "
                                     "stop that worker first (or wait "
                                     f"{CLAIM_TTL_S:.0f} s if it died on another machine)")
                self.link(self.r.set, key, self.me, ex=int(CLAIM_TTL_S))
            got.append(camera)
        done = self.link(self.r.hmget, self.keys.published, self.cameras)
        tracks = self.link(self.r.hmget, self.keys.tracks, self.cameras)
        self.published = {c: int(v or 0) for c, v in zip(self.cameras, done)}
        self.max_track = {c: int(v or 0) for c, v in zip(self.cameras, tracks)}
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def check_model(self, model: dict | None) -> None:
        """The site's events must all come from one re-ID model (their embeddings are
        compared): the first worker sets it, the others must match."""
        self.model = (model or {}).get("sha256", "none")
        self.link(self.r.set, self.keys.model, self.model, nx=True)
        site = (self.link(self.r.get, self.keys.model) or b"").decode()
        if site != self.model:
            raise UsageError(f"this worker's re-ID model {self.model} differs from the "
                             f"model of the site's events ({site}); run every worker with "
                             f"the same reid.weights, or delete {self.keys.prefix}* on the "
                             "broker to start the site afresh")

    def live_clock(self) -> float:
        """The site's live clock as a time.monotonic() zero: wall seconds since the site's
        first worker began, so that the live times of several machines compare."""
        self.link(self.r.set, self.keys.epoch, repr(time.time()), nx=True)
        epoch = float(self.link(self.r.get, self.keys.epoch))
        return time.monotonic() - (time.time() - epoch)

    def publish(self, entry: Entry) -> bool:
        """Publishes one frame's entry unless its seq was published already (a restarted
        recording); False when the broker stayed away until the deadline."""
        if entry.seq <= self.published[entry.camera]:
            return True
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(self.keys.events, entry.fields())
        pipe.hset(self.keys.published, entry.camera, entry.seq)
        top = max((e.track_id for e in entry.events), default=0)
        if top > self.max_track[entry.camera]:
            pipe.hset(self.keys.tracks, entry.camera, top)
            self.max_track[entry.camera] = top
        try:
            self.link(pipe.execute)
        except BrokerGone:
            self.unpublished += 1
            return False
        self.published[entry.camera] = entry.seq
        return True

    def _heartbeat(self) -> None:
        import redis

        while not self._stop.wait(CLAIM_TTL_S / 4):
            try:
                for camera in self.cameras:
                    self.r.set(self.keys.claim(camera), self.me, ex=int(CLAIM_TTL_S))
                self.r.hset(self.keys.status, f"worker {self.me}", json.dumps(self.status()))
            except redis.RedisError:
                pass  # the publishing side says so

    def backlog(self) -> dict:
        """The site stream's length and what the service has not acknowledged yet."""
        return backlog(self.r, self.keys)

    def close(self) -> None:
        """Stops the heartbeat and gives the cameras back (when the broker is there)."""
        import redis

        self._stop.set()
        try:
            for camera in self.cameras:
                if self.r.get(self.keys.claim(camera)) == self.me.encode():
                    self.r.delete(self.keys.claim(camera))
        except redis.RedisError:
            pass


def backlog(r, keys: Keys) -> dict:
    """Stream length, entries read but not acknowledged, and entries not read yet."""
    import redis

    try:
        length = r.xlen(keys.events)
        groups = {g["name"].decode(): g for g in r.xinfo_groups(keys.events)}
    except redis.RedisError:
        return {"stream": None, "pending": None, "unread": None}
    g = groups.get(GROUP, {})
    return {"stream": length, "pending": g.get("pending"), "unread": g.get("lag")}


class StepMerge:
    """Frames of every camera into the service's steps, as ``track run`` forms them
    (tracking.pipeline.offline_steps): the earliest pending frame and every camera's frame
    due within half a frame period of it, events in the site's camera order.

    A recorded site waits for every camera until its end: steps are exactly those of the
    same run in one process, and the cameras' ends are consumed together after the last
    frame, as there. A live site does not wait longer than ``hold_s`` for a camera that
    sends nothing (down, or its worker gone): its frames then join the next step."""

    def __init__(self, cameras: list[str], live: bool, hold_s: float = 0.5):
        self.cameras, self.live, self.hold_s = cameras, live, hold_s
        self.queues: dict[str, deque[tuple[float, Entry]]] = {c: deque() for c in cameras}
        self.fps = 0.0

    def add(self, entry: Entry, after: int) -> bool:
        """Queues an entry whose seq follows ``after`` and those queued; False: a repeat."""
        q = self.queues[entry.camera]
        if entry.seq <= (q[-1][1].seq if q else after):
            return False
        q.append((time.monotonic(), entry))
        self.fps = max(self.fps, entry.fps)
        return True

    def next(self, ended: set[str]) -> list[Entry] | None:
        """The next step's entries (in camera order), or None until it can be formed."""
        heads = {c: q[0] for c, q in self.queues.items() if q}
        if not heads:
            return None
        waiting = [c for c in self.cameras if c not in ended and c not in heads]
        if waiting and not (self.live and
                            time.monotonic() - min(t for t, _ in heads.values()) > self.hold_s):
            return None
        if not self.live:
            ends = [c for c, (_, e) in heads.items() if e.end]
            if ends:  # a camera's end goes aside until every camera has ended
                return [self.queues[c].popleft()[1] for c in ends]
        now = min(e.time for _, e in heads.values())
        tol = 0.5 / max(self.fps, 1e-9)
        return [self.queues[c].popleft()[1] for c in self.cameras
                if c in heads and heads[c][1].time <= now + tol]


@dataclass
class ServiceState:
    """What the service saves before it acknowledges (tracking.broker docstring)."""

    service: IdentityService
    ids: Ids = field(default_factory=Ids)
    applied: dict[str, int] = field(default_factory=dict)   # camera -> last seq applied
    ended: dict[str, list] = field(default_factory=dict)    # recorded: ends set aside
    log_bytes: int = 0
    model: str | None = None
    steps: int = 0
    events: int = 0


class BrokerIdentities:
    """``track identities --broker``: the identity service of a site fed by its workers
    through the broker; writes the site's outputs (MOT files, identities table, the applied
    events as events.jsonl, run.json) when every camera has ended, at ``--duration`` or on
    Ctrl-C, and its health to OUTPUT/status.json and the broker every ``status_s``."""

    def __init__(self, link: Link, keys: Keys, settings: Settings, output_dir: str | Path,
                 checkpoint_s: float = 1.0, status_s: float = 5.0):
        self.link, self.keys, self.r = link, keys, link.redis
        self.cameras: list[Camera] = settings.cameras
        self.names = [c.name for c in self.cameras]
        self.live = any(is_stream(c.source) for c in self.cameras)
        self.out = Path(output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / "identity_state.pkl"
        self.state = self._load() or ServiceState(
            identity_service(settings.identity, self.names, recorded=not self.live))
        self.state.ids.store = self.out / "decisions.sqlite"
        # decisions of ended tracks leave memory, except where a last pass decides again
        self.settles = not isinstance(self.state.service, OfflineIdentities)
        self.log_path = self.out / "applied_events.jsonl"  # the state's events, appended
        self.log = open(self.log_path, "a+b")
        self.log.truncate(self.state.log_bytes)  # steps after the last save come again
        self.log.seek(0, os.SEEK_END)
        self.merge = StepMerge(self.names, self.live)
        self.unacked: list[tuple[bytes, str, int]] = []
        self.checkpoint_s, self.status_s = checkpoint_s, status_s
        self.cursor = "0"  # our unacknowledged entries first, then new ones (">")
        self.latency: deque[float] = deque(maxlen=200)  # seconds from publishing to decision
        self.recent: dict[str, int] = {c: 0 for c in self.names}  # frames since last status

    def _load(self) -> ServiceState | None:
        if not self.state_path.is_file():
            return None
        with open(self.state_path, "rb") as f:
            state = pickle.load(f)
        log.info("resuming from %s: %d steps applied (%s)", self.state_path, state.steps,
                 ", ".join(f"{c} seq {s}" for c, s in state.applied.items()))
        return state

    def run(self, duration_s: float | None = None) -> int:
        """Consumes until every camera has ended (a recorded site), the deadline or Ctrl-C;
        returns how many cameras ended."""
        until = time.monotonic() + duration_s if duration_s else float("inf")
        self.link.until = until
        last_save = last_status = time.monotonic()
        try:
            self.link(self._create_group)
            while not self.done() and time.monotonic() < until:
                self._read(block_ms=int(min(500, max(1, 1e3 * (until - time.monotonic())))))
                while (entries := self.merge.next(set(self.state.ended))) is not None:
                    self._apply(entries)
                if time.monotonic() - last_save >= self.checkpoint_s:
                    self.save()
                    last_save = time.monotonic()
                if time.monotonic() - last_status >= self.status_s:
                    self.report(time.monotonic() - last_status)
                    last_status = time.monotonic()
        except KeyboardInterrupt:
            log.warning("interrupted: writing the outputs")
        except BrokerGone as e:
            log.warning("%s at the end of --duration: writing the outputs", e)
        try:
            self.save()
        except BrokerGone:
            pass
        self.write_outputs()
        return len(self.state.ended)

    def done(self) -> bool:
        return not self.live and set(self.state.ended) == set(self.names)

    def _create_group(self) -> None:
        import redis

        try:
            self.r.xgroup_create(self.keys.events, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _read(self, block_ms: int) -> None:
        got = self.link(self.r.xreadgroup, GROUP, "service", {self.keys.events: self.cursor},
                        count=1000, block=None if self.cursor != ">" else block_ms)
        entries = got[0][1] if got else []
        # Our pending history is read on from its last entry, then new entries (">"): reading
        # it again from "0" would stall on entries a step still waits to join, never
        # reaching the new frames it waits for.
        if self.cursor != ">":
            self.cursor = entries[-1][0] if entries else ">"
        for entry_id, fields in entries:
            if not fields:  # trimmed while pending
                continue
            e = Entry.parse(fields)
            self.unacked.append((entry_id, e.camera, e.seq))
            if e.camera not in self.names:
                log.warning("events of camera %s, not in the site %s: ignored", e.camera,
                            self.names)
                continue
            if self.state.model is None:
                self.state.model = e.model
            if e.model != self.state.model:
                raise UsageError(f"camera {e.camera}'s events come from re-ID model {e.model} "
                                 f"but the site's from {self.state.model}: their embeddings "
                                 "do not compare; run its worker with the site's model")
            self.merge.add(e, self.state.applied.get(e.camera, 0))

    def _apply(self, entries: list[Entry]) -> None:
        s = self.state
        for e in entries:
            s.applied[e.camera] = e.seq
            self.recent[e.camera] += 1
        if entries[0].end and not self.live:
            s.ended.update({e.camera: e.events for e in entries})
            if not self.done():
                return
            entries = [Entry(c, 0, 0.0, 0.0, "", s.ended[c], True) for c in self.names]
        events = [ev for e in entries for ev in e.events]
        decisions = s.service.consume(events)
        if self.done():
            decisions += s.service.finish()
        for d in decisions:
            s.ids.apply(d)
        if self.settles:
            s.ids.settle_ended(events)
        if events:  # the entries' JSON joined, not made again
            lists = [e.json()[1:-1] for e in entries if e.events]
            self.log.write(("[" + ", ".join(lists) + "]\n").encode())
        s.steps, s.events = s.steps + 1, s.events + len(events)
        if decisions:
            self.link(self.r.xadd, self.keys.decisions,
                      {"decisions": json.dumps([d.__dict__ for d in decisions])},
                      maxlen=100_000, approximate=True)
        sent = max(e.sent for e in entries)
        if sent:
            self.latency.append(time.time() - sent)

    def save(self) -> None:
        """State to disk (atomically, after the log), then acknowledge what it holds and
        trim the stream to what is not acknowledged yet."""
        self.log.flush()
        os.fsync(self.log.fileno())
        self.state.log_bytes = self.log.tell()
        self.state.ids.commit()  # what the state no longer holds is on disk first
        tmp = part_path(self.state_path)
        with open(tmp, "wb") as f:
            pickle.dump(self.state, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        applied = self.state.applied
        done = [i for i, c, s in self.unacked if s <= applied.get(c, 0) or c not in self.names]
        if not done:
            return
        try:
            self.link(self.r.xack, self.keys.events, GROUP, *done)
        except BrokerGone:  # read again and dropped as repeats by the next run
            return
        gone = set(done)
        self.unacked = [u for u in self.unacked if u[0] not in gone]
        oldest = self.unacked[0][0] if self.unacked else done[-1]  # read in id order
        self.link(self.r.xtrim, self.keys.events, minid=oldest, approximate=False)

    def _claimed(self) -> list[int]:
        """Whether each camera's worker holds its claim (one round trip for the site)."""
        pipe = self.r.pipeline(transaction=False)
        for c in self.names:
            pipe.exists(self.keys.claim(c))
        return pipe.execute()

    def report(self, window_s: float) -> dict:
        """One health line: cameras up (their worker's claim alive) or down, frames per
        second each, lag (publish to decision), backlog; logged, in OUTPUT/status.json and
        the broker's status hash."""
        import numpy as np

        up = self.link(self._claimed)
        lag = self.latency
        status = {"time": round(time.time(), 3), "cameras": {
            c: {"up": bool(u), "fps": round(self.recent[c] / window_s, 1),
                "seq": self.state.applied.get(c, 0), "ended": c in self.state.ended}
            for c, u in zip(self.names, up)},
            "lag_s": round(float(np.percentile(lag, 50)), 3) if lag else None,
            "steps": self.state.steps, "events": self.state.events,
            "backlog": backlog(self.r, self.keys)}
        self.recent = {c: 0 for c in self.names}
        write_json_atomic(self.out / "status.json", status)
        self.link(self.r.hset, self.keys.status, "identities", json.dumps(status))
        cams = ", ".join(f"{c} {'ended' if v['ended'] else 'up' if v['up'] else 'DOWN'} "
                         f"{v['fps']} fps"
                         for c, v in status["cameras"].items())
        log.info("identities: %s | lag %s s | %d steps, %d events | backlog %s", cams,
                 status["lag_s"], self.state.steps, self.state.events, status["backlog"])
        return status

    def write_outputs(self) -> None:
        """The site's outputs from the applied events and the final decisions (a copy of
        the saved state finishes, so that a restarted service goes on from the save)."""
        from tracking.events import read_events
        from tracking.pipeline import run_manifest
        from tracking.replay import write_outputs

        self.log.flush()
        with open(self.state_path, "rb") as f:
            state = pickle.load(f)
        if not self.done():
            for d in state.service.finish():
                state.ids.apply(d)
        tmp = part_path(self.out / "events.jsonl")
        with open(self.log_path, "rb") as src, open(tmp, "wb") as dst:  # the saved part
            left = state.log_bytes
            while left > 0 and (chunk := src.read(min(left, 1 << 20))):
                dst.write(chunk)
                left -= len(chunk)
        write_outputs(read_events(tmp), self.names, state.ids, self.out)
        publish(tmp, self.out / "events.jsonl")
        model = type("Model", (), {"model": {"sha256": state.model}})()
        write_json_atomic(self.out / "run.json", run_manifest(self.cameras, model, self.live))

    def close(self) -> None:
        self.log.close()
