"""The offline identity pass: once a recording is tracked, every piece of every track gets
its person from one clustering over the whole recording, not first come, first served
(a greedy pass in time order lets one early mistake decide many later matches).

Pieces are tracks cut where the person inside changes (tracking.multicam.
cut_where_partners_change), each described by the looks its track reported inside it.
Every piece starts as its own person; the cheapest two persons are merged, again and again,
while the cost stays under ``identity.max_distance``:

- two persons that would put someone in two places at once (tracking.multicam.evidence)
  are never merged;
- pieces seen at the same time in overlapping views standing within half the ground gate
  are one person seen twice: those merge first, closest first;
- otherwise the cost is the smaller of (a) the cheapest position link between their
  pieces: a piece that is the only one to go on where another, the only one to end
  there, ended costs what it costs online (the smaller of its appearance distance and
  its ground ratio scaled to ``max_distance``); a pair seen together in overlapping views
  at more than half the gate, or a continuation where several people end or begin (a
  crossing), costs its appearance distance plus ``POSITION_WEIGHT`` times its ground
  ratio, since position alone cannot tell those people apart; and (b) the mean
  appearance distance over all their pairs of pieces (average linkage: one lucky close
  pair does not merge two crowds). A camera change moves one person's
  looks apart, so cross-camera distances are first lowered by how much further apart
  the recording's cross-camera pairs are than its same-camera ones (median against
  median, per pair of cameras): camera-aware normalisation measured on the recording.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import combinations

import numpy as np

from tracking.association import mean_direction
from tracking.multicam import IdentityConfig, Tracklet, evidence, start_of

SURE_RATIO = 0.5       # seen at once, this share of the ground gate apart: one person
POSITION_WEIGHT = 0.2  # cost of a position link per unit of ground ratio


def piece_look(piece: Tracklet, looks: Sequence[tuple[float, np.ndarray, int]],
               window_s: float) -> np.ndarray:
    """How a piece looked: the crop-weighted mean of the looks its track reported inside
    it (each look covers about ``window_s`` before its time, so the window must mostly lie
    in the piece), else the track's own look (a short piece with no report)."""
    inside = [(v, n) for t, v, n in looks
              if piece.start + window_s / 2 <= t <= piece.end + 1e-3]
    if not inside:
        return piece.first_look
    return mean_direction(np.stack([n * v for v, n in inside]))


def persons(pieces: Sequence[Tracklet], looks: np.ndarray, cfg: IdentityConfig) -> list[int]:
    """Person index (0, 1, ...) of each piece, numbered in order of first appearance;
    ``looks`` holds one unit vector per piece."""
    if not pieces:
        return []
    dist = 1 - looks @ looks.T
    conflict, link = _pairs(pieces, dist, cfg)
    groups = _agglomerate(conflict, link, camera_aware(dist, [p.camera for p in pieces]),
                          cfg.max_distance)
    label = np.empty(len(pieces), int)
    for k, group in enumerate(sorted(groups, key=lambda g: min(start_of(pieces[i]) for i in g))):
        label[group] = k
    return label.tolist()


def camera_aware(dist: np.ndarray, cameras: Sequence[str]) -> np.ndarray:
    """Appearance distances with each pair of cameras' shift taken off: the median
    distance between their pieces minus the mean of the medians within each (a shift,
    never a raise)."""
    cams = np.array(cameras)
    upper = np.triu(np.ones(dist.shape, bool), 1)
    within = {c: _median(dist, np.outer(cams == c, cams == c) & upper) for c in set(cameras)}
    out = dist.copy()
    for a, b in combinations(sorted(within), 2):
        inside = [m for m in (within[a], within[b]) if m is not None]
        if not inside:
            continue
        block = np.outer(cams == a, cams == b)
        block |= block.T
        out[block] -= max(0.0, _median(dist, block) - float(np.mean(inside)))
    return out


def _median(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(np.median(values[mask])) if mask.any() else None


def _pairs(pieces: Sequence[Tracklet], dist: np.ndarray, cfg: IdentityConfig
           ) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs cannot be one person, and the cost of each position link (inf: none;
    below 0: sure, seen at once standing together). Only pairs close enough in time for
    time and place to say anything are looked at."""
    n = len(pieces)
    conflict, link = np.zeros((n, n), bool), np.full((n, n), np.inf)
    goes_on: list[tuple[int, int, float]] = []  # (piece, a piece continuing it, ratio)
    for i, j, e in _evidence(pieces, cfg):
        if e == np.inf:
            conflict[i, j] = conflict[j, i] = True
        elif pieces[j].start > pieces[i].end:
            goes_on.append((i, j, e))
        else:
            link[i, j] = link[j, i] = e - 1 if e <= SURE_RATIO else dist[i, j] + POSITION_WEIGHT * e
    ways_on = Counter(i for i, _, _ in goes_on)
    ways_in = Counter(j for _, j, _ in goes_on)
    for i, j, e in goes_on:
        if ways_on[i] == ways_in[j] == 1:  # the only way on: position alone, as online
            link[i, j] = link[j, i] = min(dist[i, j], e * cfg.max_distance)
        else:  # where several people end or begin (a crossing) the looks must agree too
            link[i, j] = link[j, i] = dist[i, j] + POSITION_WEIGHT * e
    return conflict, link


def _evidence(pieces: Sequence[Tracklet], cfg: IdentityConfig
              ) -> Iterator[tuple[int, int, float]]:
    """(i, j, what time and place say) for pieces i and j (j starting no earlier) close
    enough in time for it to be anything (tracking.multicam.evidence)."""
    reach = max([cfg.ground_gap_s, *(w[1] for w in cfg.transit.values())])
    timed = sorted((i for i in range(len(pieces)) if pieces[i].start is not None),
                   key=lambda i: pieces[i].start)
    for k, i in enumerate(timed):
        for j in timed[k + 1:]:
            if pieces[j].start > pieces[i].end + reach:
                break
            e = evidence(pieces[i], pieces[j], cfg)
            if e is not None:
                yield i, j, e


def _agglomerate(conflict: np.ndarray, link: np.ndarray, appearance: np.ndarray,
                 max_cost: float) -> list[list[int]]:
    """Merge the cheapest two groups while the cost is under ``max_cost`` (module
    docstring). Sums, minima and cannot-links are carried along and each row keeps its
    cheapest partner, so a merge updates one row and the rows that pointed at it."""
    n = len(conflict)
    members, size, alive = [[i] for i in range(n)], np.ones(n), np.ones(n, bool)
    total, conflict, link = appearance.copy(), conflict.copy(), link.copy()

    def costs(rows: np.ndarray) -> np.ndarray:
        mean = total[rows] / np.outer(size[rows], size)
        out = np.where(conflict[rows] | ~alive, np.inf, np.minimum(link[rows], mean))
        out[np.arange(len(rows)), rows] = np.inf  # a group is not merged with itself
        return out

    cost = costs(np.arange(n))
    best, partner = cost.min(1), cost.argmin(1)
    while True:
        a = int(np.argmin(best))
        b = int(partner[a])
        if not best[a] <= max_cost:
            break
        members[a] += members[b]
        size[a] += size[b]
        total[a] += total[b]
        total[:, a] = total[a]
        link[a] = np.minimum(link[a], link[b])
        link[:, a] = link[a]
        conflict[a] |= conflict[b]
        conflict[:, a] = conflict[a]
        alive[b] = False
        cost[b], cost[:, b], best[b] = np.inf, np.inf, np.inf
        cost[a] = costs(np.array([a]))[0]
        cost[:, a] = cost[a]
        for c in np.flatnonzero(alive & ((partner == a) | (partner == b) | (cost[:, a] < best))):
            best[c], partner[c] = cost[c].min(), cost[c].argmin()
    return [members[i] for i in np.flatnonzero(alive)]
