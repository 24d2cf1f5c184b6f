"""The identity service: tracklet events in, global-id decisions out.

It sees no video and no model, only events (tracking.events), so it can run beside the
cameras, in another process, or over a broker, and is tested on hand-made event sequences.
Two strategies share its interface (``consume(events) -> decisions``):

- ``LocalIds`` for a site with one camera: a person is a local track, decided when the
  track starts.
- ``OnlineIdentities`` for several cameras: a track is matched to the people seen so far
  (tracking.multicam.GlobalIdentities) as soon as it has a tracklet embedding; tracks of one
  step are matched together, so one person entering two overlapping views at once can get
  one identity.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from tracking.events import (
    Decision,
    TrackletEnded,
    TrackletEvent,
    TrackletStarted,
    TrackletUpdated,
)
from tracking.multicam import (
    GROUND_BIN_S,
    GlobalIdentities,
    IdentityConfig,
    Tracklet,
    cut_where_partners_change,
)
from tracking.offline import persons, piece_look


def follow(tracklets: dict[tuple[str, int], Tracklet], e: TrackletUpdated,
           keep: int = 250) -> Tracklet:
    """The tracklet an update belongs to (new at its first), with its span, frame count
    and ground position (the newest ``keep`` time bins) brought up to date."""
    tl = tracklets.get((e.camera, e.track_id))
    if tl is None:
        tl = tracklets[(e.camera, e.track_id)] = Tracklet(e.camera, e.track_id, e.time, e.time,
                                                          None, 0)
    tl.end, tl.frames = e.time, tl.frames + 1
    if e.ground is not None:
        tl.place(e.time, e.ground, keep)
    return tl


class IdentityService(Protocol):
    def consume(self, events: Iterable[TrackletEvent]) -> list[Decision]:
        """Take one step's events; return the decisions they allow."""
        ...

    def finish(self) -> list[Decision]:
        """Every source has ended (and every track with it): the last decisions."""
        ...


class LocalIds:
    """One camera: its local track ids are the global ids."""

    def consume(self, events: Iterable[TrackletEvent]) -> list[Decision]:
        return [Decision(e.camera, e.track_id, e.track_id) for e in events
                if isinstance(e, TrackletStarted)]

    def finish(self) -> list[Decision]:
        return []


class OnlineIdentities:
    """Several cameras, decided as events arrive (live runs, and the ids a recording shows
    while it runs).

    Per step: every update is recorded (time span, ground positions); tracks that now have
    an embedding and no identity are matched together; then ended tracks are closed (an
    identified one keeps only what later matches need, an unidentified one is forgotten).
    A camera shows each id on one track at a time: a lost track that comes back while a
    newer track of its camera continues its id gets a new id from the frame after it was
    last seen (the frames it missed included)."""

    def __init__(self, config: IdentityConfig | None = None):
        self.matcher = GlobalIdentities(config)
        self.tracklets: dict[tuple[str, int], Tracklet] = {}  # open or identified
        self.ids: dict[tuple[str, int], int] = {}            # identified tracks
        self.last_seen: dict[tuple[str, int], int] = {}      # open tracks: frame
        self.shown: dict[tuple[str, int], tuple[str, int]] = {}  # (camera, id) -> track
        self.forgotten_at = -np.inf  # time of the last forget

    def consume(self, events: Iterable[TrackletEvent]) -> list[Decision]:
        events = list(events)
        if events:
            self.forget_old(max(e.time for e in events))
        decisions, ready = [], []
        for e in events:
            if isinstance(e, TrackletUpdated):
                key = (e.camera, e.track_id)
                decisions += self._returned(key, e.frame)
                if self._record(e):
                    ready.append(key)
        decisions += self._identify(ready)
        for e in events:
            if isinstance(e, TrackletEnded):
                self._end((e.camera, e.track_id))
        return decisions

    def forget_old(self, now: float) -> None:
        """Every tenth of ``identity.horizon_s``: identities not seen for the horizon, and
        their ended tracklets, leave memory (GlobalIdentities.forget)."""
        horizon = self.matcher.cfg.horizon_s
        if horizon is None or now - self.forgotten_at < horizon / 10:
            return
        self.forgotten_at = now
        for t in self.matcher.forget(now - horizon):
            key = (t.camera, t.track_id)
            if key in self.last_seen:  # still open (not seen for the horizon): kept
                continue
            self.tracklets.pop(key, None)
            gid = self.ids.pop(key, None)
            if self.shown.get((t.camera, gid)) == key:
                del self.shown[(t.camera, gid)]

    def _record(self, e: TrackletUpdated) -> bool:
        """Updates the tracklet; says whether it is now ready to be identified."""
        key = (e.camera, e.track_id)
        tl = follow(self.tracklets, e)
        if key in self.ids:
            self.matcher.seen(tl)
        elif e.embedding is not None:
            tl.embedding = e.embedding
            return True
        return False

    def _returned(self, key: tuple[str, int], frame: int) -> list[Decision]:
        """A track seen again whose id another open track of its camera shows now: the
        id stays with that one; this track gets a new one from where it was lost."""
        last, self.last_seen[key] = self.last_seen.get(key), frame
        gid = self.ids.get(key)
        if gid is None:
            return []
        holder = self.shown.get((key[0], gid))
        if holder in (None, key) or holder not in self.last_seen:  # nobody else shows it
            self.shown[(key[0], gid)] = key
            return []
        new = self.ids[key] = self.matcher.detach(self.tracklets[key])
        self.shown[(key[0], new)] = key
        return [Decision(key[0], key[1], new, from_frame=(last or frame) + 1)]

    def _identify(self, keys: Sequence[tuple[str, int]]) -> list[Decision]:
        if not keys:
            return []
        ids = self.matcher.assign([self.tracklets[k] for k in keys])
        for k, gid in zip(keys, ids):
            self.ids[k] = gid
            self.shown[(k[0], gid)] = k
        return [Decision(k[0], k[1], gid) for k, gid in zip(keys, ids)]

    def _end(self, key: tuple[str, int]) -> None:
        self.last_seen.pop(key, None)
        if key in self.ids:
            self.tracklets[key].close()
        else:
            self.tracklets.pop(key, None)

    def finish(self) -> list[Decision]:
        return []


class OfflineIdentities:
    """Several cameras, recorded: ids as ``OnlineIdentities`` gives them while the run goes
    on (for outputs written as frames go by), then one pass over the whole recording when it
    ends: every tracklet, with its whole path on the ground plane, is cut where the person
    it stands with in an overlapping view changes (tracking.multicam.
    cut_where_partners_change: a swap inside a local track), each piece is described by
    the looks its track reported inside it, and the pieces are grouped into persons by one
    clustering (tracking.offline). The final decisions say from which frame each piece
    holds."""

    def __init__(self, config: IdentityConfig | None = None):
        self.cfg = config or IdentityConfig()
        self.online = OnlineIdentities(self.cfg)
        self.tracklets: dict[tuple[str, int], Tracklet] = {}
        self.frames: dict[tuple[str, int], list[tuple[float, int]]] = {}  # (time, frame)
        self.looks: dict[tuple[str, int], list[tuple[float, np.ndarray, int]]] = {}

    def consume(self, events: Iterable[TrackletEvent]) -> list[Decision]:
        events = list(events)
        for e in events:
            key = (e.camera, e.track_id)
            if isinstance(e, TrackletUpdated):
                tl = follow(self.tracklets, e, keep=10 ** 9)  # the whole path, for cutting
                self.frames.setdefault(key, []).append((e.time, e.frame))
                if e.embedding is not None:
                    tl.opening = e.embedding
                if e.look is not None:
                    self.looks.setdefault(key, []).append((e.time, e.look, e.look_crops))
            elif isinstance(e, TrackletEnded) and key in self.tracklets:
                self.tracklets[key].embedding = e.embedding
        return self.online.consume(events)

    def finish(self) -> list[Decision]:
        done = [t for t in self.tracklets.values() if t.embedding is not None]
        pieces = cut_where_partners_change(done, self.cfg)
        if not pieces:
            return []
        looks = np.stack([piece_look(p, self.looks.get((p.camera, p.track_id), []),
                                     self.cfg.look_every_s) for p in pieces])
        labels = persons(pieces, looks, self.cfg)
        return [Decision(p.camera, p.track_id, k + 1, self.first_frame(p))
                for p, k in zip(pieces, labels)]

    def first_frame(self, piece: Tracklet) -> int:
        """The first frame of a piece's track at or after the piece starts (0: from the
        track's start, which the first piece always is)."""
        seen = self.frames[(piece.camera, piece.track_id)]
        if piece.start <= seen[0][0]:
            return 0
        at = bisect_left(seen, piece.start - GROUND_BIN_S / 2, key=lambda s: s[0])
        return seen[min(at, len(seen) - 1)][1]


def identity_service(config: IdentityConfig, cameras: Sequence[str],
                     recorded: bool) -> IdentityService:
    """The strategy for a site: local ids for one camera; for several, one decision at the
    end for recordings (``identity.offline: auto``), online matching for live sources."""
    if len(cameras) == 1:
        return LocalIds()
    offline = recorded if config.offline == "auto" else config.offline == "always"
    return OfflineIdentities(config) if offline else OnlineIdentities(config)
