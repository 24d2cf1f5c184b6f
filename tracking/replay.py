"""A recorded run's identities decided again from its tracklet events (``track run
--events`` writes them): ``track identities --events RUN/events.jsonl``. No video, no model:
the identity service consumes the same steps the run gave it, with the settings given now,
and the MOT files and identities table are written from its decisions. Rows are the boxes
the events carry, with the frames a track was lost in between filled by interpolation, as
the tracker fills them in a run (``tracker.fill_gaps``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tracking.camera_run import Row
from tracking.events import Ids, TrackletEnded, TrackletEvent, TrackletUpdated
from tracking.identities import identity_service
from tracking.multicam import IdentityConfig
from tracking.sinks import IdentitiesFile, MotFile
from tracking.sources import Frame


def cameras_of(steps: list[list[TrackletEvent]]) -> list[str]:
    return sorted({e.camera for step in steps for e in step})


def replay(steps: list[list[TrackletEvent]], identity: IdentityConfig,
           output_dir: str | Path) -> Ids:
    """Decide the identities of the recorded steps (tracking.events.read_events) again;
    write <camera>.txt (and, for several cameras, identities.json/.csv) into
    ``output_dir``; return the decisions."""
    cameras = cameras_of(steps)
    service, ids = identity_service(identity, cameras, recorded=True), Ids()
    for step in steps:
        for d in service.consume(step):
            ids.apply(d)
    for d in service.finish():
        ids.apply(d)
    write_outputs(steps, cameras, ids, output_dir)
    return ids


def write_outputs(steps: Iterable[list[TrackletEvent]], cameras: list[str], ids: Ids,
                  output_dir: str | Path) -> None:
    """The MOT files and (several cameras) the identities table of these steps' tracks,
    with the final decisions ``ids`` (the outputs of a replay and of the identity service
    over a broker, tracking.broker)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    mot = {c: MotFile(out / f"{c}.txt", c) for c in cameras}
    table = [IdentitiesFile(out)] if len(cameras) > 1 else []
    last: dict[tuple[str, int], TrackletUpdated] = {}
    for step in steps:
        for camera, rows in rows_of(step, last).items():
            frame = Frame(rows[0].frame, rows[0].time, None, 0.0)
            for sink in (mot[camera], *table):  # a camera's rows to its own file only
                sink.write(camera, frame, rows, ids)
        for e in step:  # a track that ended has all its rows: they leave memory
            if isinstance(e, TrackletEnded) and table:
                table[0].settle(e.camera, e.track_id, ids)
    for sink in (*mot.values(), *table):
        sink.close(ids)


def rows_of(step: list[TrackletEvent], last: dict) -> dict[str, list[Row]]:
    """Each camera's rows of one step: a box per updated track, plus interpolated boxes
    (late rows) for the frames since the track was last seen. ``last`` carries each
    track's previous update from step to step."""
    rows: dict[str, list[Row]] = defaultdict(list)
    for e in step:
        if isinstance(e, TrackletEnded):
            last.pop((e.camera, e.track_id), None)
        if not isinstance(e, TrackletUpdated):
            continue
        rows[e.camera].append(Row(e.camera, e.frame, e.time, e.track_id, list(e.box), e.score))
        before = last.get((e.camera, e.track_id))
        missed = e.frame - before.frame - 1 if before else 0
        for k in range(1, missed + 1):
            w = k / (missed + 1)
            box = (1 - w) * np.asarray(before.box) + w * np.asarray(e.box)
            rows[e.camera].append(Row(e.camera, before.frame + k, e.time, e.track_id,
                                      box.tolist(), e.score, late=True))
        last[(e.camera, e.track_id)] = e
    return rows
