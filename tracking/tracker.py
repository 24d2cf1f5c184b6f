"""Single-camera tracker: Kalman motion + re-ID appearance, Hungarian assignment.

Per frame (ByteTrack's two stages, with appearance in the first):
1. predict every track;
2. confident detections vs confirmed and lost tracks: cost mixes IoU and the cosine distance
   to the track's appearance memory, gated by Mahalanobis distance and by appearance. Tracks
   seen last frame first keep the boxes they continue beyond doubt (``sure_cost``); then every
   track left, lost ones included, competes for the rest, so a lost track whose appearance is
   roughly right cannot take a box from the person walking in front of it;
3. remaining tracks seen last frame vs low-score detections, by IoU alone;
4. tentative tracks vs remaining confident detections, by IoU;
5. unmatched confident detections start tentative tracks; tracks lost for longer than
   ``max_lost_s`` seconds are dropped, earlier ones can be re-activated in step 2. A lost track
   keeps walking at its last velocity (its size frozen), so after an occlusion it is found
   where the person reappears, not where they disappeared. When it is found again, the
   frames it missed get boxes interpolated between where it was lost and where it is found
   (``Track.gap``), for outputs that can be written late such as MOT files. Tracks dropped
   here are reported once by ``pop_ended`` (``finish`` ends the rest when the source ends).

Appearance memory is a bounded set of embeddings from clean, confident detections: the
distance is to the closest of them, so one bad crop never drags the identity away.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tracking.association import assign, iou_matrix, mean_direction
from tracking.motion import BoxKalman

TENTATIVE, CONFIRMED, LOST = "tentative", "confirmed", "lost"


@dataclass
class TrackerConfig:
    high_score: float = 0.5       # detections above go to the first association
    low_score: float = 0.1        # detections between low and high go to the second
    new_track_score: float = 0.6  # a track starts only from a detection this confident
    min_hits: int = 2             # frames before a tentative track is confirmed
    # Squared Mahalanobis distance of the box centre beyond which motion forbids a match.
    # Off by default: on PETS09 / TUD every finite gate we tried (9.2, 100) lost to none.
    gate: float = float("inf")
    # Seconds a lost track can be re-activated (in frames at the video's frame rate, so
    # 25 fps and 7 fps footage keep a hidden person equally long; see BENCHMARKS).
    max_lost_s: float = 2.0
    match_cost: float = 0.75      # first association: highest acceptable mixed cost
    iou_weight: float = 0.5       # mixed cost = w * (1 - IoU) + (1 - w) * cosine distance
    max_appearance: float = 0.5   # cosine distance above which appearance gives no support
    # A lost track may be found away from its box (or beyond the motion gate) only with a
    # cosine distance below this: a near-certain appearance match.
    reactivate_appearance: float = 0.25
    sure_cost: float = 0.3        # step 2's first round (>= match_cost: one round only)
    lost_keeps_velocity: bool = True  # False: a lost track stands still where it was lost
    fill_gaps: bool = True        # a re-found track reports the boxes of the frames it missed
    # A confirmed track (seen last frame) gets appearance help only for boxes it overlaps
    # this much; only a lost track may be found by appearance away from its box.
    appearance_iou: float = 0.1
    motion_iou: float = 0.2       # first association without appearance support: minimum IoU
    low_iou: float = 0.5          # second association (low-score boxes): minimum IoU
    tentative_iou: float = 0.3    # third association (tentative tracks): minimum IoU
    memory: int = 30              # embeddings kept per track
    memory_score: float = 0.6     # only detections at least this confident are memorised
    memory_overlap: float = 0.3   # nor those overlapping another detection by more IoU
    selective_reid: bool = True   # embed only crops whose match is not obvious
    refresh: int = 10             # frames after which an obvious track is re-embedded anyway


@dataclass
class Track:
    track_id: int
    kalman: BoxKalman
    score: float
    frame: int
    state: str = TENTATIVE
    hits: int = 1
    last_seen: int = 0
    last_embedded: int = -(10 ** 9)
    memory: deque = field(default_factory=deque)
    memorised: int = 0  # crops ever memorised (the newest ``memory`` of them are kept)
    seen_box: np.ndarray | None = None  # the box at ``last_seen`` (set from creation on)
    # Set for one frame when a lost track is found again: interpolated boxes of the frames
    # it missed, oldest first (frames ``frame - len(gap)`` to ``frame - 1``).
    gap: list = field(default_factory=list)

    @property
    def box(self) -> np.ndarray:
        return self.kalman.box

    def appearance_distance(self, feats: np.ndarray) -> np.ndarray:
        """Cosine distance of each feature to the closest memorised embedding (1 if none)."""
        if not self.memory:
            return np.ones(len(feats))
        return (1 - feats @ np.stack(self.memory).T).min(1)

    def embedding(self, min_crops: int = 1) -> np.ndarray | None:
        """The tracklet's appearance for matching across cameras: the mean direction of its
        memorised crops (clean, confident, unoccluded ones only), or None while it has fewer
        than ``min_crops`` (one crop is too noisy to match a person by)."""
        if len(self.memory) < max(1, min_crops):
            return None
        return mean_direction(np.stack(self.memory))

    def crops_since(self, memorised: int) -> np.ndarray:
        """Embeddings of the crops memorised after the first ``memorised`` (those memory
        still holds), for looks reported as a track goes on."""
        new = min(self.memorised - memorised, len(self.memory))
        return np.stack(list(self.memory)[-new:]) if new > 0 else np.empty((0, 0))


Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (frame, boxes) -> N x D unit rows


class Tracker:
    def __init__(self, config: TrackerConfig | None = None, embedder: Embedder | None = None,
                 fps: float = 25.0):
        self.cfg = config or TrackerConfig()
        self.max_lost = max(1, round(self.cfg.max_lost_s * fps))  # frames
        self.embedder = embedder
        self.tracks: list[Track] = []
        self.frame = 0
        self._next_id = 1
        self.crops_embedded = 0
        self._ended: list[Track] = []

    # ---- appearance -------------------------------------------------------------------
    def _embed(self, image: np.ndarray | None, dets: np.ndarray,
               active: list[Track]) -> np.ndarray | None:
        """Embeddings of the confident detections (rows of NaN where skipped), or None."""
        if self.embedder is None or image is None or len(dets) == 0:
            return None
        need = np.ones(len(dets), bool)
        if self.cfg.selective_reid and active:
            iou = iou_matrix(dets, np.stack([t.box for t in active]))
            for i in range(len(dets)):
                j = int(iou[i].argmax())
                obvious = (iou[i, j] > 0.6 and (iou[i] > 0.3).sum() == 1
                           and (iou[:, j] > 0.3).sum() == 1
                           and self.frame - active[j].last_embedded < self.cfg.refresh)
                need[i] = not obvious
        feats = np.full((len(dets), 0), np.nan, np.float32)
        if need.any():
            got = self.embedder(image, dets[need, :4])
            feats = np.full((len(dets), got.shape[1]), np.nan, np.float32)
            feats[need] = got
            self.crops_embedded += int(need.sum())
        return feats if feats.shape[1] else None

    def _remember(self, track: Track, det_index: int, dets: np.ndarray,
                  feats: np.ndarray | None) -> None:
        if feats is None or np.isnan(feats[det_index, 0]):
            return
        track.last_embedded = self.frame
        others = np.delete(dets, det_index, axis=0)
        crowded = len(others) and iou_matrix(dets[det_index:det_index + 1],
                                             others).max() > self.cfg.memory_overlap
        if dets[det_index, 4] >= self.cfg.memory_score and not crowded:
            track.memory.append(feats[det_index])
            track.memorised += 1
            while len(track.memory) > self.cfg.memory:
                track.memory.popleft()

    # ---- association ------------------------------------------------------------------
    def _mixed_cost(self, tracks: list[Track], dets: np.ndarray,
                    feats: np.ndarray | None) -> np.ndarray:
        """Rows: tracks, columns: detections. Appearance-similar pairs cost a mix of IoU and
        cosine distance; others may match on strong overlap alone; the Kalman gate forbids
        jumps, except for a lost track whose appearance is a near-certain match."""
        cfg = self.cfg
        cost = 1 - iou_matrix(np.stack([t.box for t in tracks]), dets)
        known = (~np.isnan(feats[:, 0]) if feats is not None
                 else np.zeros(len(dets), bool))
        for r, t in enumerate(tracks):
            iou_d = cost[r].copy()
            motion_only = np.where(iou_d <= 1 - cfg.motion_iou, iou_d, np.inf)
            gate = (t.kalman.mahalanobis2(dets[:, :4]) > cfg.gate if np.isfinite(cfg.gate)
                    else np.zeros(len(dets), bool))
            if t.memory and known.any():
                app = t.appearance_distance(np.nan_to_num(feats, nan=0.0))
                similar = known & (app <= cfg.max_appearance)
                near = iou_d <= 1 - cfg.appearance_iou
                # only a lost track may be found away from its box, on a near-certain match
                certain = (known & (app <= cfg.reactivate_appearance) if t.state == LOST
                           else np.zeros(len(dets), bool))
                similar &= near | certain
                row = np.where(similar, cfg.iou_weight * iou_d + (1 - cfg.iou_weight) * app,
                               motion_only)
                row = np.where(gate & certain, app, np.where(gate, np.inf, row))
            else:
                row = np.where(gate, np.inf, motion_only)
            cost[r] = row
        return cost

    def _first_association(self, pool: list[Track], dets: np.ndarray,
                           feats: np.ndarray | None
                           ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Step 2 in two rounds: sure continuations of tracks seen last frame, then every
        track left against every box left. Returns what ``assign`` does."""
        cfg = self.cfg
        if not pool or not len(dets):
            return [], list(range(len(pool))), list(range(len(dets)))
        cost = self._mixed_cost(pool, dets, feats)
        matches: list[tuple[int, int]] = []
        active = [r for r, t in enumerate(pool) if t.state == CONFIRMED]
        if active and cfg.sure_cost < cfg.match_cost:
            sure, _, _ = assign(cost[active], cfg.sure_cost)
            matches = [(active[r], c) for r, c in sure]
        taken_rows, taken_cols = {r for r, _ in matches}, {c for _, c in matches}
        rows = [r for r in range(len(pool)) if r not in taken_rows]
        cols = [c for c in range(len(dets)) if c not in taken_cols]
        if not rows or not cols:
            return matches, rows, cols
        rest, um_rows, um_cols = assign(cost[np.ix_(rows, cols)], cfg.match_cost)
        matches += [(rows[r], cols[c]) for r, c in rest]
        return matches, [rows[r] for r in um_rows], [cols[c] for c in um_cols]

    def _update_track(self, t: Track, det_index: int, dets: np.ndarray,
                      feats: np.ndarray | None) -> None:
        t.kalman.update(dets[det_index, :4])
        box = t.kalman.box
        missed = self.frame - t.last_seen - 1
        if t.state == LOST and self.cfg.fill_gaps and missed > 0:
            w = np.arange(1, missed + 1)[:, None] / (missed + 1)
            t.gap = list((1 - w) * t.seen_box + w * box)
        t.seen_box = box
        t.score = float(dets[det_index, 4])
        t.hits += 1
        t.last_seen = self.frame
        if t.state == LOST or (t.state == TENTATIVE and t.hits >= self.cfg.min_hits):
            self._confirm(t)
        self._remember(t, det_index, dets, feats)

    @property
    def ids_issued(self) -> int:
        return self._next_id - 1

    def pop_ended(self) -> list[Track]:
        """Tracks that ended (lost for longer than ``max_lost_s``) since the last call."""
        ended, self._ended = self._ended, []
        return ended

    def finish(self) -> list[Track]:
        """End of the source: every track with an id ends now (returned with those that
        ended before and were not popped yet)."""
        self._ended += [t for t in self.tracks if t.track_id]
        self.tracks = []
        return self.pop_ended()

    def _confirm(self, t: Track) -> None:
        """Ids are handed out on confirmation, so short-lived false starts use none."""
        t.state = CONFIRMED
        if t.track_id == 0:
            t.track_id = self._next_id
            self._next_id += 1

    def coast(self) -> list[Track]:
        """Advance one frame without detecting (detection stride): tracks seen in the last
        frame move on their Kalman prediction and count as seen, so a skipped frame is not a
        miss; the confirmed ones are returned at their predicted boxes."""
        self.frame += 1
        for t in self.tracks:
            t.gap = []
            t.kalman.predict()
            if t.last_seen == self.frame - 1:
                t.last_seen = self.frame
                t.seen_box = t.kalman.box
        return [t for t in self.tracks if t.state == CONFIRMED and t.last_seen == self.frame]

    def update(self, dets: np.ndarray, image: np.ndarray | None = None) -> list[Track]:
        """Advance one frame with detections (N x 5: x1, y1, x2, y2, score); return the
        confirmed tracks seen in this frame."""
        self.frame += 1
        cfg = self.cfg
        dets = np.asarray(dets, np.float32).reshape(-1, 5)
        for t in self.tracks:
            t.gap = []
            t.kalman.predict()
        high = dets[dets[:, 4] >= cfg.high_score]
        low = dets[(dets[:, 4] >= cfg.low_score) & (dets[:, 4] < cfg.high_score)]

        pool = [t for t in self.tracks if t.state in (CONFIRMED, LOST)]
        feats = self._embed(image, high, [t for t in pool if t.state == CONFIRMED])
        matches, um_tracks, um_dets = self._first_association(pool, high, feats)
        for r, c in matches:
            self._update_track(pool[r], c, high, feats)

        # second stage: tracks seen last frame vs low-score boxes, IoU only
        recent = [pool[r] for r in um_tracks if pool[r].last_seen == self.frame - 1]
        if recent and len(low):
            m2, _, _ = assign(1 - iou_matrix(np.stack([t.box for t in recent]), low),
                              1 - cfg.low_iou)
            for r, c in m2:
                self._update_track(recent[r], c, low, None)

        # third stage: tentative tracks vs the confident boxes left over
        tentative = [t for t in self.tracks if t.state == TENTATIVE]
        rest = high[um_dets]
        rest_feats = feats[um_dets] if feats is not None else None
        m3, um_tent, um_rest = (assign(1 - iou_matrix(np.stack([t.box for t in tentative]),
                                                      rest), 1 - cfg.tentative_iou)
                                if tentative else ([], [], list(range(len(rest)))))
        for r, c in m3:
            self._update_track(tentative[r], c, rest, rest_feats)
        dead = {id(tentative[r]) for r in um_tent}

        for t in self.tracks:
            if t.state == CONFIRMED and t.last_seen < self.frame:
                t.state = LOST
                t.kalman.stop(keep_velocity=cfg.lost_keeps_velocity)
        keep = [t for t in self.tracks if id(t) not in dead
                and self.frame - t.last_seen <= self.max_lost]
        kept = {id(t) for t in keep}
        self._ended += [t for t in self.tracks if t.track_id and id(t) not in kept]
        self.tracks = keep

        for c in um_rest:
            if rest[c, 4] < cfg.new_track_score:
                continue
            t = Track(0, BoxKalman(rest[c, :4]), float(rest[c, 4]), self.frame,
                      last_seen=self.frame, seen_box=rest[c, :4].astype(float))
            if self.frame == 1 or cfg.min_hits <= 1:
                self._confirm(t)
            self._remember(t, c, rest, rest_feats)
            self.tracks.append(t)
        return [t for t in self.tracks if t.state == CONFIRMED and t.last_seen == self.frame]
