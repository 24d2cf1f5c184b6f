"""How fast the identity service keeps up: a real run's tracklet events replayed as if from
many cameras (issue #14's benchmark).

    python bench/identity_service_speed.py --events runs/terrace/events.jsonl \\
        --config configs/cameras/epfl_terrace.yaml --cameras 2 20 100 1000 --seconds 30

The recorded site (e.g. EPFL terrace, two overlapping cameras, made with track run
--events) is copied side by side until there are N cameras: each copy's cameras get their
own names, overlap only with each other, stand 10^5 ground units from the other copies and
see their people through a fixed permutation of the embedding dimensions, so copies are
different people in different places at the same time. The online service (what a live
site runs) consumes the first ``--seconds`` of recorded steps; reported: events per second,
per-step decision latency (p50, p99) and how many recorded seconds it handles per second.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from common import write_results

from tracking.config import load_settings
from tracking.events import TrackletEvent, TrackletUpdated, read_events
from tracking.identities import OnlineIdentities
from tracking.multicam import IdentityConfig


def copies(step: list[TrackletEvent], n: int, perms: list[np.ndarray]) -> list[TrackletEvent]:
    """One recorded step as ``n`` copies of the site (see the module docstring)."""
    out = []
    for k in range(n):
        for e in step:
            changes = {"camera": f"{e.camera}_{k}"}
            if getattr(e, "embedding", None) is not None:
                changes["embedding"] = e.embedding[perms[k]]
            if isinstance(e, TrackletUpdated) and e.ground is not None:
                changes["ground"] = (e.ground[0] + 1e5 * k, e.ground[1])
            out.append(dataclasses.replace(e, **changes))
    return out


class SiteCopies:
    """The recorded site copied side by side until it has about ``n_cameras`` cameras:
    ``cameras`` their names, ``identity`` the site's identity settings with each copy's
    views overlapping, ``step`` a recorded step as all copies' events."""

    def __init__(self, steps: list[list[TrackletEvent]], n_cameras: int,
                 identity: IdentityConfig):
        recorded = sorted({e.camera for s in steps for e in s})
        self.n = max(1, n_cameras // len(recorded))
        self.cameras = [f"{c}_{k}" for k in range(self.n) for c in recorded]
        dim = len(next(e.embedding for s in steps for e in s
                       if getattr(e, "embedding", None) is not None))
        rng = np.random.default_rng(0)
        self.perms = [np.arange(dim)] + [rng.permutation(dim) for _ in range(self.n - 1)]
        self.identity = dataclasses.replace(identity, overlapping={
            frozenset(f"{c}_{k}" for c in g) for g in identity.overlapping
            for k in range(self.n)})

    def step(self, step: list[TrackletEvent]) -> list[TrackletEvent]:
        return copies(step, self.n, self.perms)


def recorded_steps(path: str, seconds: float) -> list[list[TrackletEvent]]:
    """The steps of a run's events.jsonl in its first ``seconds``."""
    return [s for s in read_events(path) if s and s[0].time <= seconds]


def run(steps: list, n_cameras: int, identity: IdentityConfig) -> dict:
    site = SiteCopies(steps, n_cameras, identity)
    service = OnlineIdentities(site.identity)
    latency, events = [], 0
    start = time.perf_counter()
    for step in steps:
        batch = site.step(step)
        t = time.perf_counter()
        service.consume(batch)
        latency.append(time.perf_counter() - t)
        events += len(batch)
    busy = sum(latency)
    recorded = steps[-1][0].time - steps[0][0].time if steps else 0.0
    return {"cameras": len(site.cameras), "events": events,
            "events_per_s": round(events / busy),
            "step_latency_ms_p50": round(1e3 * float(np.percentile(latency, 50)), 3),
            "step_latency_ms_p99": round(1e3 * float(np.percentile(latency, 99)), 3),
            "recorded_s_per_s": round(recorded / busy, 2),
            "identities": len(service.matcher.identities),
            "wall_s": round(time.perf_counter() - start, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--cameras", type=int, nargs="+", default=[2, 20, 100, 1000])
    ap.add_argument("--seconds", type=float, default=30.0, help="recorded seconds replayed")
    ap.add_argument("--out", default="bench/results/identity_service_speed.json")
    args = ap.parse_args()
    identity = load_settings(args.config).identity
    steps = recorded_steps(args.events, args.seconds)
    rows = []
    for n in args.cameras:
        r = run(steps, n, identity)
        rows.append(r)
        print(f"{r['cameras']:5d} cameras: {r['events_per_s']:,} events/s, step p50 "
              f"{r['step_latency_ms_p50']} ms, p99 {r['step_latency_ms_p99']} ms, "
              f"{r['recorded_s_per_s']} recorded s per s, {r['identities']} identities",
              flush=True)
    write_results(args.out, {"command": "python bench/identity_service_speed.py",
                             "events": args.events, "seconds": args.seconds, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
