"""Global identities across cameras: tracklets from per-camera trackers are matched to
people seen before by Hungarian assignment on appearance, under time constraints.

A tracklet carries one embedding (the quality-weighted mean of its best crops) and the time
span it was seen. An identity keeps a bounded bank of its tracklets' embeddings and may not
take a tracklet that would put the person in two places at once: two overlapping tracklets
in one camera, or in two cameras whose views do not overlap. Optional transit windows bound
the time between leaving one camera and appearing in another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracking.association import assign


@dataclass
class Tracklet:
    camera: str
    track_id: int
    start: float | None          # seconds; None when the time is unknown (no time checks)
    end: float | None
    embedding: np.ndarray        # unit vector
    frames: int = 1


@dataclass
class IdentityConfig:
    max_distance: float = 0.4    # cosine distance above which a tracklet starts a new person
    bank: int = 20               # embeddings kept per identity
    overlapping: set = field(default_factory=set)   # {frozenset({"cam0", "cam1"}), ...}
    transit: dict = field(default_factory=dict)     # {("cam0", "cam1"): (min_s, max_s)}


@dataclass
class Identity:
    global_id: int
    tracklets: list = field(default_factory=list)
    bank: list = field(default_factory=list)


def quality_weighted_mean(embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Tracklet embedding: detection-score-weighted mean of crop embeddings, unit length."""
    w = np.ones(len(embeddings)) if weights is None else np.asarray(weights, float)
    v = (np.asarray(embeddings) * w[:, None]).sum(0)
    return v / max(np.linalg.norm(v), 1e-12)


class GlobalIdentities:
    def __init__(self, config: IdentityConfig | None = None):
        self.cfg = config or IdentityConfig()
        self.identities: list[Identity] = []

    def _compatible(self, ident: Identity, t: Tracklet) -> bool:
        for u in ident.tracklets:
            if u.start is None or t.start is None:
                continue
            overlap = u.start <= t.end and t.start <= u.end
            if overlap and (u.camera == t.camera
                            or frozenset((u.camera, t.camera)) not in self.cfg.overlapping):
                return False
            window = self.cfg.transit.get((u.camera, t.camera))
            if window and not overlap and u.end <= t.start:
                if not window[0] <= t.start - u.end <= window[1]:
                    return False
        return True

    def assign(self, tracklets: list[Tracklet]) -> list[int]:
        """Global id for each tracklet; tracklets given together are treated as seen at the
        same time (they never share an identity)."""
        if not tracklets:
            return []
        cost = np.full((len(tracklets), len(self.identities)), np.inf)
        feats = np.stack([t.embedding for t in tracklets])
        for j, ident in enumerate(self.identities):
            dist = (1 - feats @ np.stack(ident.bank).T).min(1)
            for i, t in enumerate(tracklets):
                if self._compatible(ident, t):
                    cost[i, j] = dist[i]
        matches, unmatched, _ = assign(cost, self.cfg.max_distance)
        out = [0] * len(tracklets)
        for i, j in matches:
            out[i] = self._add(self.identities[j], tracklets[i])
        for i in unmatched:
            ident = Identity(len(self.identities) + 1)
            self.identities.append(ident)
            out[i] = self._add(ident, tracklets[i])
        return out

    def _add(self, ident: Identity, t: Tracklet) -> int:
        ident.tracklets.append(t)
        ident.bank.append(t.embedding)
        del ident.bank[:-self.cfg.bank]
        return ident.global_id
