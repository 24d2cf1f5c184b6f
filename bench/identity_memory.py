"""Does a long live run's identity service stay bounded? A simulated week of a 100-camera
site, made from a real run's tracklet events, through the online identity service with
``identity.horizon_s`` on (issue #14's memory benchmark).

    python bench/identity_memory.py --events runs/pets40/events.jsonl \\
        --config configs/cameras/pets_two_view.yaml --cameras 100 --days 7 --every-s 1800

The recorded site is copied side by side until there are N cameras (as in
bench/identity_service_speed.py), and the copies' recorded seconds are replayed again every
``--every-s`` simulated seconds for ``--days`` days, each time shifted in time, with new
track ids and new people (the embedding dimensions permuted per episode), so without a
horizon identities and tracklets would pile up. Reported: resident memory (RSS) and what the
service holds (identities, tracklets) after the first simulated day and at the end, and
events per second.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from common import write_results

from tracking.config import load_settings
from tracking.events import Ids, TrackletEvent, read_events
from tracking.identities import OnlineIdentities


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


def episode(steps: list[list[TrackletEvent]], copies: int, shift: float, tracks: int,
            rng: np.random.Generator, dim: int) -> list[list[TrackletEvent]]:
    """The recorded steps as ``copies`` sites, ``shift`` seconds later, with new people."""
    perms = [rng.permutation(dim) for _ in range(copies)]
    out = []
    for step in steps:
        batch = []
        for k in range(copies):
            for e in step:
                changes = {"camera": f"{e.camera}_{k}", "time": e.time + shift,
                           "track_id": e.track_id + tracks}
                if getattr(e, "embedding", None) is not None:
                    changes["embedding"] = e.embedding[perms[k]]
                if getattr(e, "ground", None) is not None:
                    changes["ground"] = (e.ground[0] + 1e5 * k, e.ground[1])
                batch.append(dataclasses.replace(e, **changes))
        out.append(batch)
    return out


def held(service: OnlineIdentities, ids: Ids) -> dict:
    return {"identities": len(service.matcher.identities),
            "tracklets": sum(len(i.tracklets) for i in service.matcher.identities),
            "open_or_identified_tracks": len(service.tracklets),
            "decisions_in_memory": len(ids)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--every-s", type=float, default=1800.0)
    ap.add_argument("--out", default="bench/results/identity_memory.json")
    ap.add_argument("overrides", nargs="*", help="e.g. identity.horizon_s=3600")
    args = ap.parse_args()
    identity = load_settings(args.config, args.overrides).identity
    steps = [s for s in read_events(args.events) if s]
    cameras = sorted({e.camera for s in steps for e in s})
    copies = max(1, args.cameras // len(cameras))
    dim = len(next(e.embedding for s in steps for e in s
                   if getattr(e, "embedding", None) is not None))
    overlapping = {frozenset(f"{c}_{k}" for c in g) for g in identity.overlapping
                   for k in range(copies)}
    service = OnlineIdentities(dataclasses.replace(identity, overlapping=overlapping))
    rng = np.random.default_rng(0)
    episodes = int(args.days * 86400 / args.every_s)
    max_track = max(e.track_id for s in steps for e in s) + 1
    rows, events, busy, start = [], 0, 0.0, rss_mb()
    scratch = tempfile.TemporaryDirectory(prefix="identity_memory_")
    ids = Ids(Path(scratch.name) / "decisions.sqlite")
    for n in range(episodes):
        for batch in episode(steps, copies, n * args.every_s, n * max_track, rng, dim):
            t = time.perf_counter()
            for d in service.consume(batch):
                ids.apply(d)
            ids.settle_ended(batch)
            busy += time.perf_counter() - t
            events += len(batch)
        ids.commit()
        day = (n + 1) * args.every_s / 86400
        if n == 0 or int(day) != int(n * args.every_s / 86400) or n == episodes - 1:
            rows.append({"day": round(day, 2), "rss_mb": rss_mb(), **held(service, ids)})
            print(rows[-1], flush=True)
    rows[-1]["decisions_on_disk"] = len(ids.items()) - len(ids)
    scratch.cleanup()
    result = {"command": "python bench/identity_memory.py", "events_file": args.events,
              "cameras": copies * len(cameras), "days": args.days, "every_s": args.every_s,
              "horizon_s": identity.horizon_s, "rss_mb_before": start, "events": events,
              "events_per_s": round(events / busy), "rows": rows}
    write_results(args.out, result)
    print(f"{events:,} events, {result['events_per_s']:,} events/s; RSS {rows[0]['rss_mb']} MB "
          f"after the first episode, {rows[-1]['rss_mb']} MB at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
