"""Global identities across cameras: tracklets from per-camera trackers are matched to
people seen before by Hungarian assignment on appearance, under time constraints.

A tracklet carries one embedding (the quality-weighted mean of its best crops) and the time
span it was seen. An identity keeps a bounded bank of its tracklets' embeddings and may not
take a tracklet that would put the person in two places at once: two overlapping tracklets
in one camera, or in two cameras whose views do not overlap. Optional transit windows bound
the time between leaving one camera and appearing in another.

Where cameras map image points to a common ground plane (a homography per camera), position
is evidence too, often stronger than a look that changes with the viewpoint: a tracklet seen
at the same time as an identity's tracklet in an overlapping view must stand where that one
stands (within ``ground_gate``), and one that starts a moment after an identity's tracklet
ended, near where it ended (within the gate plus ``ground_speed`` times the gap), continues
it. The cost of a match is the smaller of the appearance distance and the ground distance
scaled to the same range.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np

from tracking.association import assign

GROUND_BIN_S = 0.1
RECENT_S = 30.0  # seconds an ended tracklet stays among the recent (GlobalIdentities)


@dataclass
class Tracklet:
    camera: str
    track_id: int
    start: float | None          # seconds; None when the time is unknown (no time checks)
    end: float | None
    embedding: np.ndarray | None  # unit vector; None until the track has enough crops
    frames: int = 1
    ground: dict = field(default_factory=dict)  # {time bin: (x, y)} on the ground plane
    opening: np.ndarray | None = None  # appearance of its first clean crops (offline)

    @property
    def first_look(self) -> np.ndarray:
        """What it is matched by: a track's start continues how someone last looked, so
        its first crops (when known) are compared with the identities' banks, which keep
        how each of their tracklets looked at its end (``embedding``)."""
        return self.opening if self.opening is not None else self.embedding

    def place(self, time: float, point: tuple[float, float], keep: int = 250) -> None:
        """Records a ground position; times are binned (GROUND_BIN_S) so that cameras with
        different frame rates or offsets still share bins; the oldest bins are dropped."""
        self.ground[round(time / GROUND_BIN_S)] = point
        if len(self.ground) > keep:
            del self.ground[next(iter(self.ground))]

    def split(self, bins: list[int], changed: float) -> list[Tracklet]:
        """Pieces of this tracklet cut at these time bins (ascending): each piece holds its
        own stretch of positions and time. Only two looks are known, the first crops
        (``opening``) and the last (``embedding``): the first piece starts with the one,
        the others with the other, and all end with the last crops, except the first
        where the two differ by more than the cosine distance ``changed`` (the person inside
        changed: it ends as it began)."""
        if not bins:
            return [self]
        pieces = []
        for lo, hi in zip([None, *bins], [*bins, None]):
            ground = {k: p for k, p in self.ground.items()
                      if (lo is None or k >= lo) and (hi is None or k < hi)}
            start = self.start if lo is None else lo * GROUND_BIN_S
            end = self.end if hi is None else max(start, (hi - 1) * GROUND_BIN_S)
            pieces.append(replace(self, start=start, end=end, ground=ground, opening=None))
        pieces[0].opening = self.opening
        if self.opening is not None and 1 - self.opening @ self.embedding > changed:
            pieces[0].embedding = self.opening
        return pieces

    def close(self) -> None:
        """The track ended: only its last position still matters (continuations), so a
        long live run does not keep every ended tracklet's trajectory."""
        if self.ground:
            last = next(reversed(self.ground))
            self.ground = {last: self.ground[last]}


@dataclass
class Camera:
    name: str
    source: str                      # file path, rtsp://... URL or webcam index
    offset_s: float = 0.0            # added to a file's media time (start-time alignment)
    homography: np.ndarray | None = None  # 3 x 3, image point -> ground plane

    def ground(self, box) -> tuple[float, float] | None:
        """Ground position of a person: the bottom centre of the box through the homography."""
        if self.homography is None:
            return None
        x, y, w = self.homography @ np.array([(box[0] + box[2]) / 2, box[3], 1.0])
        return float(x / w), float(y / w)


@dataclass
class IdentityConfig:
    max_distance: float = 0.4    # cosine distance above which a tracklet starts a new person
    bank: int = 20               # embeddings kept per identity
    min_crops: int = 5           # clean crops a track needs before it gets a global id
    look_every_s: float = 1.0    # how often a track reports how it looks now (0: never)
    offline: str = "auto"        # one decision at the end: auto (recordings), always, never
    overlapping: set = field(default_factory=set)   # {frozenset({"cam0", "cam1"}), ...}
    transit: dict = field(default_factory=dict)     # {("cam0", "cam1"): (min_s, max_s)}
    ground_gate: float | None = None  # ground-plane distance (its units) for one person
    ground_samples: int = 2           # common time bins needed to compare positions
    ground_speed: float | None = None  # walking speed (ground units/s) for continuations
    ground_gap_s: float = 2.0         # longest gap a continuation by position may bridge
    partner_run_s: float = 0.5        # offline: a track is cut where its partner in an
    #                                   overlapping view changes, each held this long
    horizon_s: float | None = 3600.0  # online: people not seen for this long are forgotten


@dataclass
class Identity:
    global_id: int
    tracklets: list = field(default_factory=list)
    bank: list = field(default_factory=list)


def evidence(u: Tracklet, t: Tracklet, cfg: IdentityConfig) -> float | None:
    """What time and place say about u and t (t not starting before u) being one person:
    inf when they cannot be (two places at once, a broken transit window), a ground
    distance over the allowed one (<= 1) when position links them, else None."""
    if u.start is None or t.start is None:
        return None
    if u.start <= t.end and t.start <= u.end:  # seen at the same time
        if u.camera == t.camera or frozenset((u.camera, t.camera)) not in cfg.overlapping:
            return np.inf
        d = _same_time_distance(u, t, cfg)
        if d is None:
            return None
        return np.inf if d > cfg.ground_gate else d / cfg.ground_gate
    window = cfg.transit.get((u.camera, t.camera))
    if window and u.end <= t.start and not window[0] <= t.start - u.end <= window[1]:
        return np.inf
    return _continuation(u, t, cfg)


def _same_time_distance(u: Tracklet, t: Tracklet, cfg: IdentityConfig) -> float | None:
    if not cfg.ground_gate:
        return None
    common = u.ground.keys() & t.ground.keys()
    if len(common) < cfg.ground_samples:
        return None
    return float(np.median([np.hypot(u.ground[k][0] - t.ground[k][0],
                                     u.ground[k][1] - t.ground[k][1]) for k in common]))


def _continuation(u: Tracklet, t: Tracklet, cfg: IdentityConfig) -> float | None:
    """t starting near where u ended a moment ago: distance over the allowed distance."""
    if not (cfg.ground_gate and cfg.ground_speed and u.ground and t.ground):
        return None
    gap = t.start - u.end
    if not 0 <= gap <= cfg.ground_gap_s:
        return None
    (ux, uy), (tx, ty) = u.ground[next(reversed(u.ground))], t.ground[next(iter(t.ground))]
    ratio = np.hypot(ux - tx, uy - ty) / (cfg.ground_gate + cfg.ground_speed * gap)
    return float(ratio) if ratio <= 1 else None


def linkable(u: Tracklet, t: Tracklet, cfg: IdentityConfig, near: dict[str, set]) -> bool:
    """Whether position could link t to u, that is ``evidence(u, t)`` could be a ground
    distance: seen at the same time in overlapping views (``near``: each camera's), or t
    starting at most ``ground_gap_s`` after u ended. A cheap superset of that test (no
    distances), so that the full rules run only on the pairs it lets through."""
    if not cfg.ground_gate or u.start is None or t.start is None:
        return False
    if u.start <= t.end and t.start <= u.end:
        return t.camera in near.get(u.camera, ())
    return bool(cfg.ground_speed and u.ground and t.ground
                and 0 <= t.start - u.end <= cfg.ground_gap_s)


class Places:
    """Tracklets by camera and by ground cell, so that those ``linkable`` could pair with a
    tracklet are found in a few look-ups, not by trying every one: the time and place rules
    then cost what the people near a new tracklet cost, not what the whole site holds.

    ``later`` says which side of ``linkable(u, t)`` it holds: t's (tracklets that start
    later, filed by where they start) or u's (filed by where they ended). A continuation
    moves at most ``ground_gate + ground_speed * ground_gap_s``, the cell's side, so it is in
    one of the 3 x 3 cells around its start or end."""

    def __init__(self, cfg: IdentityConfig, near: dict[str, set], later: bool):
        self.cfg, self.near, self.later = cfg, near, later
        self.side = (cfg.ground_gate or 0) + (cfg.ground_speed or 0) * cfg.ground_gap_s
        self.by_camera: dict[str, list] = defaultdict(list)
        self.by_cell: dict[tuple[int, int], list] = defaultdict(list)

    def _cell(self, t: Tracklet, first: bool) -> tuple[int, int] | None:
        if not (self.cfg.ground_speed and self.side and t.ground):
            return None
        x, y = t.ground[next(iter(t.ground) if first else reversed(t.ground))]
        if not (np.isfinite(x) and np.isfinite(y)):  # no continuation from there either
            return None
        return int(np.floor(x / self.side)), int(np.floor(y / self.side))

    def add(self, t: Tracklet, tag) -> None:
        self.by_camera[t.camera].append((t, tag))
        if (cell := self._cell(t, first=self.later)) is not None:
            self.by_cell[cell].append((t, tag))

    def query(self, x: Tracklet) -> set:
        """Tags of the held tracklets that ``linkable`` pairs with x."""
        found = [p for cam in self.near.get(x.camera, ()) for p in self.by_camera.get(cam, ())]
        if (cell := self._cell(x, first=not self.later)) is not None:
            found += [p for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                      for p in self.by_cell.get((cell[0] + dx, cell[1] + dy), ())]
        pairs = ((x, t) if self.later else (t, x) for t, _ in found)
        return {tag for (u, t), (_, tag) in zip(pairs, found)
                if linkable(u, t, self.cfg, self.near)}


class GlobalIdentities:
    """People across cameras: each new tracklet is matched to an identity (see the module
    docstring). Candidates are narrowed before the rules run: by appearance (one product
    over every identity's looks) and by place (``Places``: identities with a tracklet in an
    overlapping view at the same time, or that ended a moment ago nearby), so a thousand
    cameras cost a little more than ten, not a hundred times more per tracklet.

    A caller that updates an identified tracklet (its end moves on) tells ``seen``, so that
    it is among the recent tracklets the place rules look at."""

    def __init__(self, config: IdentityConfig | None = None):
        self.cfg = config or IdentityConfig()
        self.identities: list[Identity] = []
        self.issued = 0  # ids given so far (forgotten identities keep theirs)
        self._banks: tuple[np.ndarray, np.ndarray] | None = None  # stacked, see distances
        self.near: dict[str, set] = defaultdict(set)  # camera -> cameras overlapping it
        for pair in self.cfg.overlapping:
            for a in pair:
                self.near[a] |= pair - {a}
        self._owner: dict[int, Identity] = {}   # id(tracklet) -> its identity, all held
        self._recent: dict[int, Tracklet] = {}  # every held tracklet ended at or after:
        self._floor = -np.inf

    def distances(self, feats: np.ndarray) -> np.ndarray:
        """Cosine distance of each row of ``feats`` to each identity's closest look (rows x
        identities), in one product over every bank stacked (rebuilt after a bank changes)."""
        if self._banks is None:
            sizes = [len(ident.bank) for ident in self.identities]
            self._banks = (np.stack([v for ident in self.identities for v in ident.bank]).T,
                           np.cumsum([0] + sizes[:-1]))
        looks, starts = self._banks
        return np.minimum.reduceat(1 - feats @ looks, starts, axis=1)

    def _cost(self, ident: Identity, t: Tracklet, appearance: float) -> float:
        """Cost of giving tracklet t to an identity: inf when it would put the person in
        two places at once or break a transit window; otherwise the smaller of the
        appearance distance and the ground evidence (a distance over what is allowed, scaled
        to ``max_distance``)."""
        ground = []
        for u in ident.tracklets:
            e = evidence(u, t, self.cfg)
            if e == np.inf:
                return np.inf
            if e is not None:
                ground.append(e)
        if ground:
            return min(appearance, min(ground) * self.cfg.max_distance)
        return appearance

    def assign(self, tracklets: list[Tracklet]) -> list[int]:
        """Global id for each tracklet. Tracklets given together may join one identity
        (one person entering two overlapping views at once) when the constraints allow it,
        but never two from the same camera: unmatched ones open a new identity one at a
        time and the rest are matched again (only the identities that changed are costed
        again)."""
        n, m, limit = len(tracklets), len(self.identities), self.cfg.max_distance
        feats = np.stack([t.first_look for t in tracklets])
        dist = np.full((n, m + n), np.inf)  # room for the identities this call may open
        if m:
            dist[:, :m] = self.distances(feats)
        near = self._linked(tracklets)
        cost = np.full((n, m + n), np.inf)
        within: set[tuple[int, int]] = set()  # (row, identity) pairs costing <= limit
        close = zip(*(k.tolist() for k in np.nonzero(dist[:, :m] <= limit)))
        for r, j in set(close) | {(r, j) for j, rows in near.items() for r in rows}:
            cost[r, j] = self._cost(self.identities[j], tracklets[r], dist[r, j])
            if cost[r, j] <= limit:
                within.add((r, j))
        later = Places(self.cfg, self.near, later=True)
        for r, t in enumerate(tracklets):
            later.add(t, r)
        out, todo, cameras_now = [0] * n, list(range(n)), {}
        while todo:
            matches = self._match(cost, within)
            if not matches:  # open one new identity, then match the rest again
                self.identities.append(self._new())
                matches = [(todo[0], len(self.identities) - 1)]
            for r, j in matches:
                out[r] = self._add(self.identities[j], tracklets[r])
                cameras_now.setdefault(j, set()).add(tracklets[r].camera)
                near.setdefault(j, set()).update(later.query(tracklets[r]))
            done = {r for r, _ in matches}
            todo = [r for r in todo if r not in done]
            within = {(r, j) for r, j in within if r not in done}
            for j in {j for _, j in matches} if todo else ():
                within = self._recost(j, tracklets, todo, feats, dist, cost, within,
                                      near.get(j, set()), cameras_now[j])
        return out

    def _match(self, cost: np.ndarray, within: set[tuple[int, int]]) -> list[tuple[int, int]]:
        """Hungarian assignment (row, identity) of the rows still to match, on the rows and
        identities with a pair within ``max_distance`` (the others cannot match; most of a
        site's new tracklets are new people)."""
        if not within:
            return []
        rows, cols = sorted({r for r, _ in within}), sorted({j for _, j in within})
        sub = cost[np.ix_(rows, cols)]
        return sorted((rows[a], cols[b]) for a, b in assign(sub, self.cfg.max_distance)[0])

    def _recost(self, j: int, tracklets: list[Tracklet], todo: list[int], feats: np.ndarray,
                dist: np.ndarray, cost: np.ndarray, within: set[tuple[int, int]],
                near: set[int], cameras: set) -> set[tuple[int, int]]:
        """Costs of the rows still to match for identity j, which just took a tracklet;
        the pairs within ``max_distance`` with j's brought up to date."""
        ident, limit = self.identities[j], self.cfg.max_distance
        dist[todo, j] = (1 - feats[todo] @ np.stack(ident.bank).T).min(1)
        cost[todo, j] = np.inf
        within = {p for p in within if p[1] != j}
        close = {todo[k] for k in np.flatnonzero(dist[todo, j] <= limit)}
        for r in close | (near & set(todo)):
            if tracklets[r].camera not in cameras:
                cost[r, j] = self._cost(ident, tracklets[r], dist[r, j])
                if cost[r, j] <= limit:
                    within.add((r, j))
        return within

    def _linked(self, tracklets: list[Tracklet]) -> dict[int, set[int]]:
        """The identities (indices) position could link some of these tracklets to, each
        with those tracklets (rows): an identity with a tracklet ``linkable`` to one
        (Places over the recent tracklets)."""
        starts = [t.start for t in tracklets if t.start is not None]
        if not (self.cfg.ground_gate and self.identities and starts):
            return {}
        since = min(starts) - self.cfg.ground_gap_s
        column = {id(ident): j for j, ident in enumerate(self.identities)}
        earlier = Places(self.cfg, self.near, later=False)
        for u in self._recent_since(since):
            earlier.add(u, column[id(self._owner[id(u)])])
        near: dict[int, set[int]] = {}
        for r, t in enumerate(tracklets):
            for j in earlier.query(t):
                near.setdefault(j, set()).add(r)
        return near

    def _recent_since(self, since: float) -> list[Tracklet]:
        """The held tracklets that ended at or after ``since``. The recent ones are kept
        apart (ended within ``RECENT_S`` of the latest asked for, or seen since): older
        ones than that are found by walking every identity."""
        if since < self._floor:
            held = [u for ident in self.identities for u in ident.tracklets]
        else:
            if since - self._floor > 2 * RECENT_S:
                self._floor = since - RECENT_S
                self._recent = {k: u for k, u in self._recent.items()
                                if u.end is None or u.end >= self._floor}
            held = list(self._recent.values())
        return [u for u in held if u.end is not None and u.end >= since]

    def seen(self, t: Tracklet) -> None:
        """An identified tracklet was seen again (its end moved on)."""
        if id(t) in self._owner:
            self._recent[id(t)] = t

    def detach(self, t: Tracklet) -> int:
        """Takes tracklet t out of its identity into a new one of its own; its new id."""
        ident = self._owner.get(id(t))
        if ident is not None:
            ident.tracklets = [u for u in ident.tracklets if u is not t]
        self.identities.append(self._new())
        return self._add(self.identities[-1], t)

    def _new(self) -> Identity:
        self.issued += 1
        return Identity(self.issued)

    def forget(self, before: float) -> list[Tracklet]:
        """Drops the tracklets that ended before ``before`` (seconds) and the identities
        left without any, so that a live run's memory and matching time stay bounded (the
        banks keep each identity's looks): a person who comes back later gets a new id.
        Returns the tracklets dropped."""
        gone: list[Tracklet] = []
        for ident in self.identities:
            ended = [t.end is not None and t.end < before for t in ident.tracklets]
            gone += [t for t, e in zip(ident.tracklets, ended) if e]
            ident.tracklets = [t for t, e in zip(ident.tracklets, ended) if not e]
        for t in gone:
            self._owner.pop(id(t), None)
            self._recent.pop(id(t), None)
        if gone:
            self.identities = [i for i in self.identities if i.tracklets]
            self._banks = None
        return gone

    def _add(self, ident: Identity, t: Tracklet) -> int:
        ident.tracklets.append(t)
        ident.bank.append(t.embedding)
        del ident.bank[:-self.cfg.bank]
        self._banks = None
        self._owner[id(t)], self._recent[id(t)] = ident, t
        return ident.global_id


def cut_where_partners_change(tracklets: list[Tracklet], cfg: IdentityConfig
                               ) -> list[Tracklet]:
    """Offline: cut each tracklet where the person it stands with in an overlapping view
    changes. A local tracker that swaps two people who cross keeps one track id for both;
    the other view usually keeps them apart, so the swap shows as a change of partner (the
    track it is matched to, time bin by time bin, on the ground plane). Each partner must
    hold for ``partner_run_s``, and one hidden for a moment cuts nothing. A new partner
    that only continues the old one (the other view's track was lost and found again) cuts
    too: the pieces join again by position when they are matched, and cutting there scored
    better on EPFL terrace than waiting for proof of a swap. Returns the pieces in time
    order (whole tracklets where nothing changed)."""
    if not (cfg.ground_gate and cfg.overlapping):
        return sorted(tracklets, key=start_of)
    found = partners(tracklets, cfg)
    run = max(1, round(cfg.partner_run_s / GROUND_BIN_S))
    pieces = []
    for t, by_camera in zip(tracklets, found):
        cuts = sorted({k for by_bin in by_camera.values() for k in _partner_changes(by_bin, run)})
        pieces += t.split(cuts, cfg.max_distance)
    return sorted(pieces, key=start_of)


def partners(tracklets: list[Tracklet], cfg: IdentityConfig) -> list[dict[str, dict[int, int]]]:
    """For each tracklet, per overlapping camera and time bin, the index of the tracklet it
    stands with there: positions in two views are matched one to one per time bin
    (Hungarian, within ``ground_gate``), so of two people side by side each gets one."""
    at: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, t in enumerate(tracklets):
        for k in t.ground:
            at[k][t.camera].append(i)
    found: list[dict[str, dict[int, int]]] = [defaultdict(dict) for _ in tracklets]
    for k, cams in at.items():
        for a, b in combinations(sorted(cams), 2):
            if frozenset((a, b)) not in cfg.overlapping:
                continue
            pa = np.array([tracklets[i].ground[k] for i in cams[a]])
            pb = np.array([tracklets[j].ground[k] for j in cams[b]])
            cost = np.hypot(*(pa[:, None] - pb[None]).transpose(2, 0, 1))
            for r, c in assign(cost, cfg.ground_gate)[0]:
                i, j = cams[a][r], cams[b][c]
                found[i][b][k], found[j][a][k] = j, i
    return found


def _partner_changes(by_bin: dict[int, int], run: int, max_gap: int = 3) -> list[int]:
    """Time bins where one partner, held ``run`` bins, gives way to another held as long
    (bins a few apart count as one stretch); the cut falls halfway between them."""
    stretches: list[list[int]] = []  # [partner, first bin, last bin, bins]
    for k in sorted(by_bin):
        last = stretches[-1] if stretches else None
        if last and last[0] == by_bin[k] and k - last[2] <= max_gap:
            last[2], last[3] = k, last[3] + 1
        else:
            stretches.append([by_bin[k], k, k, 1])
    held = [s for s in stretches if s[3] >= run]
    return [(a[2] + b[1] + 1) // 2 for a, b in zip(held, held[1:]) if a[0] != b[0]]


def start_of(t: Tracklet) -> float:
    return t.start if t.start is not None else 0.0
