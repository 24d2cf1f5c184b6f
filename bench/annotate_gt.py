"""Helper for the hand-checked EPFL terrace1 ground truth (data/epfl_terrace1/).

How data/epfl_terrace1/ was made (scratch output goes to --work, default /tmp/gt_work; never
into the repo):

    python bench/annotate_gt.py extract            # sampled frames of c0 and c1 -> WORK/frames
    python bench/annotate_gt.py detect             # YOLO on every 5th frame -> WORK/dets.json
    python bench/annotate_gt.py step 1 26 ...      # propose frame(s) F: detections with ids
                                                   # carried from earlier (checked) frames,
                                                   # then render WORK/pairs/00000F.png
    python bench/annotate_gt.py zoom c1 0,30,120,288 76 101   # enlarged crops with a pixel grid
    python bench/annotate_gt.py edit - < edits.txt # fix ids / boxes (see apply_edit)
    python bench/annotate_gt.py idsheets           # every crop of each id, both cameras
    python bench/annotate_gt.py check              # ground-plane consistency report
    python bench/annotate_gt.py write              # gt/gt.txt + seqinfo.ini per camera

(`propose` builds a whole first table at once; `render` redraws pairs without changing them.)
The annotation table (data/epfl_terrace1/annotations.csv) has one row per box:
frame,cam,id,x1,y1,x2,y2,source (source: detector / adjusted / manual). Sampled frames are
1, 26, 51, ..., 2976 (1-based decode index = MOT frame number).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCREID_SHARED", ROOT.parent / "shared"))
VIDEO = SHARED / "data" / "video" / "EPFL-terrace1"
OUT = ROOT / "data" / "epfl_terrace1"
TABLE = OUT / "annotations.csv"
CAMS = ("c0", "c1")
N_FRAMES, STEP, DENSE = 3000, 25, 5
SAMPLED = list(range(1, N_FRAMES + 1, STEP))
W, H = 360, 288
# furniture the detector takes for people (checked by eye): never proposed
STATIC = {"c0": [], "c1": [[0, 52, 16.5, 84.5], [88, 47.5, 105.5, 74]]}
FIELDS = ["frame", "cam", "id", "x1", "y1", "x2", "y2", "source"]

COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
          (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
          (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
          (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)]


def color(i: int) -> tuple[int, int, int]:
    r, g, b = COLORS[int(i) % len(COLORS)]
    return (b, g, r)


def homographies() -> dict[str, np.ndarray]:
    import yaml

    site = yaml.safe_load((ROOT / "configs" / "cameras" / "epfl_terrace.yaml").read_text())
    return {c["name"]: np.array(c["homography"], float) for c in site["cameras"]}


def ground(h: np.ndarray, box) -> np.ndarray:
    x, y, w = h @ np.array([(box[0] + box[2]) / 2, box[3], 1.0])
    return np.array([x / w, y / w])


def frame_path(work: Path, cam: str, frame: int) -> Path:
    return work / "frames" / cam / f"{frame:06d}.png"


# ---------------------------------------------------------------- extract / detect
def cmd_extract(a) -> None:
    for cam in CAMS:
        (a.work / "frames" / cam).mkdir(parents=True, exist_ok=True)
        cap = cv2.VideoCapture(str(VIDEO / f"terrace1-{cam}.mp4"))
        n = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            n += 1
            if n in SAMPLED:
                cv2.imwrite(str(frame_path(a.work, cam, n)), img)
        cap.release()
        print(f"{cam}: {n} frames decoded, {len(SAMPLED)} sampled frames written")


def cmd_detect(a) -> None:
    from tracking.detector import Detector

    det = Detector(a.weights, conf=a.conf)
    out = {}
    for cam in CAMS:
        cap = cv2.VideoCapture(str(VIDEO / f"terrace1-{cam}.mp4"))
        frames, idx, n = [], [], 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            n += 1
            if (n - 1) % DENSE == 0:
                frames.append(img)
                idx.append(n)
        cap.release()
        boxes = det(frames)
        out[cam] = {str(f): [[round(float(v), 1) for v in b[:4]] + [round(float(b[4]), 3)]
                             for b in bs] for f, bs in zip(idx, boxes)}
        print(f"{cam}: {len(idx)} frames, {sum(len(b) for b in boxes)} boxes")
    (a.work / "dets.json").write_text(json.dumps(out))


# ---------------------------------------------------------------- proposals
def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def link(dets: dict[str, list], conf: float) -> dict[int, dict[int, list]]:
    """Every-5th-frame detections linked into short tracklets: {frame: {tracklet: box}}.

    Hungarian matching on IoU with the tracklet's constant-velocity prediction; a tracklet
    waits up to 1.2 s for its next detection. Only a guide for the id proposals."""
    from scipy.optimize import linear_sum_assignment

    tracks: dict[int, dict] = {}
    out: dict[int, dict[int, list]] = {}
    nxt = 1
    for f in sorted(int(k) for k in dets):
        bs = [b for b in dets[str(f)] if b[4] >= conf]
        live = [t for t, v in tracks.items() if f - v["last"] <= 6 * DENSE]
        pred = []
        for t in live:
            v = tracks[t]
            k = (f - v["last"]) / DENSE
            pred.append([v["box"][i] + v["vel"][i] * k for i in range(4)])
        out[f] = {}
        used = set()
        if live and bs:
            cost = np.array([[1 - iou(p, b) for b in bs] for p in pred])
            for i, j in zip(*linear_sum_assignment(cost)):
                gap = (f - tracks[live[i]]["last"]) / DENSE
                if cost[i, j] < (0.6 if gap <= 1 else 0.75):
                    t, v = live[i], tracks[live[i]]
                    vel = [(bs[j][q] - v["box"][q]) / gap for q in range(4)]
                    v["vel"] = [0.5 * a + 0.5 * b for a, b in zip(v["vel"], vel)]
                    v["box"], v["last"] = bs[j][:4], f
                    out[f][t] = bs[j]
                    used.add(j)
        for j, b in enumerate(bs):
            if j not in used:
                tracks[nxt] = {"box": b[:4], "last": f, "vel": [0.0] * 4}
                out[f][nxt] = b
                nxt += 1
    return out


def cmd_propose(a) -> None:
    if TABLE.exists() and not a.force:
        raise SystemExit(f"{TABLE} exists (pass --force to overwrite)")
    dets = json.loads((a.work / "dets.json").read_text())
    hs = homographies()
    linked = {cam: link(dets[cam], a.conf) for cam in CAMS}
    # cross-view: c1 track -> c0 track by median ground distance over shared sampled frames
    dist: dict[tuple[int, int], list[float]] = {}
    for f in linked["c0"]:
        for t0, b0 in linked["c0"][f].items():
            for t1, b1 in linked["c1"].get(f, {}).items():
                dist.setdefault((t0, t1), []).append(
                    float(np.linalg.norm(ground(hs["c0"], b0) - ground(hs["c1"], b1))))
    cand = sorted((float(np.median(v)), t0, t1) for (t0, t1), v in dist.items() if len(v) >= 5)
    m1, used0 = {}, set()
    for d, t0, t1 in cand:
        if d < 40 and t1 not in m1 and t0 not in used0:
            m1[t1] = t0
            used0.add(t0)
    rows = []
    for cam in CAMS:
        for f in SAMPLED:
            for t, b in linked[cam].get(f, {}).items():
                gid = (m1.get(t, 1000 + t) if cam == "c1" else t)
                rows.append({"frame": f, "cam": cam, "id": gid, "x1": b[0], "y1": b[1],
                             "x2": b[2], "y2": b[3], "source": "detector"})
    save(rows)
    print(f"{len(rows)} proposals -> {TABLE}")


# ---------------------------------------------------------------- table
def load() -> list[dict]:
    with open(TABLE) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["frame"], r["id"] = int(r["frame"]), int(r["id"])
        for k in ("x1", "y1", "x2", "y2"):
            r[k] = float(r[k])
    return rows


def clip(r: dict) -> dict:
    r["x1"], r["x2"] = (round(min(max(r[k], 0.0), W), 1) for k in ("x1", "x2"))
    r["y1"], r["y2"] = (round(min(max(r[k], 0.0), H), 1) for k in ("y1", "y2"))
    return r


def save(rows: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = sorted((clip(r) for r in rows), key=lambda r: (r["cam"], r["frame"], r["id"]))
    with open(TABLE, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def apply_edit(rows: list[dict], op: str, args: list[str]) -> tuple[list[dict], int]:
    """One edit:

    id CAM FRAME OLD NEW          one box's id
    rename CAM OLD NEW [F0 F1]    an id in one camera (cam 'all' for both), optionally frames F0..F1
    swap CAM A B [F0 F1]          two ids exchanged
    del CAM FRAME ID              delete a box
    box CAM FRAME ID x1 y1 x2 y2  set (or add, source=manual) a box
    """
    rng = lambda i: (int(args[i]), int(args[i + 1])) if len(args) > i + 1 else (0, 10 ** 9)  # noqa: E731
    hit = 0
    if op == "id":
        cam, f, old, new = args[0], int(args[1]), int(args[2]), int(args[3])
        for r in rows:
            if r["cam"] == cam and r["frame"] == f and r["id"] == old:
                r["id"] = new
                hit += 1
    elif op in ("rename", "swap"):
        cam, x, y = args[0], int(args[1]), int(args[2])
        f0, f1 = rng(3)
        for r in rows:
            if (cam == "all" or r["cam"] == cam) and f0 <= r["frame"] <= f1:
                if r["id"] == x:
                    r["id"] = y
                    hit += 1
                elif op == "swap" and r["id"] == y:
                    r["id"] = x
                    hit += 1
    elif op == "del":
        cam, f, i = args[0], int(args[1]), int(args[2])
        keep = [r for r in rows if not (r["cam"] == cam and r["frame"] == f and r["id"] == i)]
        hit, rows = len(rows) - len(keep), keep
    elif op == "box":
        cam, f, i = args[0], int(args[1]), int(args[2])
        x1, y1, x2, y2 = (float(v) for v in args[3:7])
        for r in rows:
            if r["cam"] == cam and r["frame"] == f and r["id"] == i:
                r.update(x1=x1, y1=y1, x2=x2, y2=y2,
                         source="adjusted" if r["source"] == "detector" else r["source"])
                hit += 1
        if not hit:
            rows.append({"frame": f, "cam": cam, "id": i, "x1": x1, "y1": y1, "x2": x2,
                         "y2": y2, "source": "manual"})
            hit = 1
    else:
        raise SystemExit(f"unknown edit {op}")
    return rows, hit


def cmd_edit(a) -> None:
    """Edits, one per line on stdin ('#' starts a comment), or one on the command line;
    see apply_edit for the operations. All or nothing: refused when an id repeats in a frame."""
    import sys

    rows = load()
    key = lambda r: tuple(r[k] for k in FIELDS[:7])  # noqa: E731
    before = {id(r): key(r) for r in rows}
    lines = [" ".join([a.op] + a.args)] if a.op != "-" else sys.stdin.read().splitlines()
    for line in lines:
        line = line.split("#")[0].split()
        if not line:
            continue
        rows, hit = apply_edit(rows, line[0], line[1:])
        if a.source:  # rows changed or added by this edit
            for r in rows:
                if before.get(id(r)) != key(r):
                    r["source"] = a.source
        print(f"{' '.join(line)}: {hit} box(es)")
        if not hit:
            raise SystemExit("edit matched nothing: nothing saved")
    dup = {}
    for r in rows:
        dup[(r["cam"], r["frame"], r["id"])] = dup.get((r["cam"], r["frame"], r["id"]), 0) + 1
    bad = [k for k, v in dup.items() if v > 1]
    if bad:
        raise SystemExit(f"edit refused: duplicate id in one frame {bad[:5]}")
    save(rows)


# ---------------------------------------------------------------- step (propagate ids)
def cmd_step(a) -> None:
    """Rebuild sampled frame(s) F from the detections, with ids carried from earlier frames:
    the same dense tracklet, then the other view at F (ground distance), then the nearest
    recent ground position, else a new id."""
    from scipy.optimize import linear_sum_assignment

    rows = load() if TABLE.exists() else []
    dets = json.loads((a.work / "dets.json").read_text())
    hs = homographies()
    links = {cam: link(dets[cam], a.conf) for cam in CAMS}
    gpos = lambda r: ground(hs[r["cam"]], [r["x1"], r["y1"], r["x2"], r["y2"]])  # noqa: E731

    def hungarian(cands, gate):
        """cands: list of (det_key, id, cost); returns {det_key: id}."""
        ks = sorted({c[0] for c in cands})
        ids = sorted({c[1] for c in cands})
        if not ks or not ids:
            return {}
        m = np.full((len(ks), len(ids)), 1e6)
        for k, i, c in cands:
            m[ks.index(k), ids.index(i)] = min(m[ks.index(k), ids.index(i)], c)
        out = {}
        for r, c in zip(*linear_sum_assignment(m)):
            if m[r, c] <= gate:
                out[ks[r]] = ids[c]
        return out

    done = {r["frame"] for r in rows}
    if not a.force and any(int(f) in done for f in a.frames):
        raise SystemExit("frame(s) already annotated: step rebuilds them from the detections "
                         "and drops their edits (pass --force to do that anyway)")
    for F in (int(f) for f in a.frames):
        rows = [r for r in rows if r["frame"] != F]
        prev = [r for r in rows if F - 3 * STEP <= r["frame"] < F]
        cur: dict[str, dict[int, dict]] = {}  # cam -> tracklet -> row
        for cam in CAMS:
            cur[cam] = {}
            t2g = {}
            for r in sorted((r for r in prev if r["cam"] == cam), key=lambda r: r["frame"]):
                rb = [r["x1"], r["y1"], r["x2"], r["y2"]]
                for t, b in links[cam].get(r["frame"], {}).items():
                    if iou(rb, b) > 0.6:
                        t2g[t] = r["id"]
            for t, b in links[cam].get(F, {}).items():
                if any(iou(b, z) > 0.5 for z in STATIC[cam]):
                    continue
                cur[cam][t] = {"frame": F, "cam": cam, "id": t2g.get(t), "x1": b[0], "y1": b[1],
                               "x2": b[2], "y2": b[3], "source": "detector"}
            seen = {}
            for t, r in cur[cam].items():  # one id twice: both lose it
                if r["id"] is not None:
                    seen.setdefault(r["id"], []).append(t)
            for ts in seen.values():
                if len(ts) > 1:
                    for t in ts:
                        cur[cam][t]["id"] = None

        def cross(cam, cur=cur):
            other = "c1" if cam == "c0" else "c0"
            used = {r["id"] for r in cur[cam].values() if r["id"] is not None}
            cands = [(t, o["id"], float(np.linalg.norm(gpos(r) - gpos(o))))
                     for t, r in cur[cam].items() if r["id"] is None
                     for o in cur[other].values() if o["id"] is not None and o["id"] not in used]
            for t, i in hungarian(cands, a.gate).items():
                cur[cam][t]["id"] = i

        def near(cam, cur=cur, prev=prev, F=F):  # noqa: N803
            used = {r["id"] for r in cur[cam].values() if r["id"] is not None}
            last = {}
            for r in sorted(prev, key=lambda r: r["frame"]):
                last[r["id"]] = (r["frame"], gpos(r))
            cands = []
            for t, r in cur[cam].items():
                if r["id"] is None:
                    for i, (f0, g) in last.items():
                        if i not in used:
                            d = float(np.linalg.norm(gpos(r) - g))
                            cands.append((t, i, d / ((F - f0) / STEP)))
            for t, i in hungarian(cands, 45).items():
                cur[cam][t]["id"] = i

        for cam in CAMS:
            cross(cam)
        for cam in CAMS:
            near(cam)
            cross("c1" if cam == "c0" else "c0")
        nxt = max([r["id"] for r in rows] + [0]) + 1
        for cam in CAMS:
            for r in cur[cam].values():
                if r["id"] is None:
                    r["id"] = nxt
                    nxt += 1
            cross("c1" if cam == "c0" else "c0")
        for cam in CAMS:
            rows += list(cur[cam].values())
        # ids seen just before but not now: listed to look for them
        for cam in CAMS:
            now = {r["id"] for r in cur[cam].values()}
            before = {r["id"] for r in prev if r["cam"] == cam and r["frame"] == F - STEP}
            lost = sorted(before - now)
            if lost:
                print(f"f{F} {cam}: ids at f{F - STEP} without a box now: {lost}")
    save(rows)
    a.dets, a.map = True, True
    cmd_render(a)


# ---------------------------------------------------------------- render
def cmd_render(a) -> None:
    rows = load()
    hs = homographies()
    dets = json.loads((a.work / "dets.json").read_text()) if a.dets else {}
    out = a.work / "pairs"
    out.mkdir(parents=True, exist_ok=True)
    s = a.scale
    frames = [int(f) for f in a.frames] or SAMPLED
    for f in frames:
        panels = []
        for cam in CAMS:
            img = cv2.imread(str(frame_path(a.work, cam, f)))
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            mine = [r for r in rows if r["cam"] == cam and r["frame"] == f]
            if a.dets:  # unmatched detector boxes in thin grey
                for b in dets[cam].get(str(f), []):
                    if max((iou(b, [r["x1"], r["y1"], r["x2"], r["y2"]]) for r in mine),
                           default=0) < 0.5:
                        p = [int(v * s) for v in b[:4]]
                        cv2.rectangle(img, p[:2], p[2:], (160, 160, 160), 1)
                        cv2.putText(img, f"{b[4]:.2f}", (p[0], p[3] + 12),
                                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 200, 200), 1)
            now = {r["id"] for r in mine}
            for r in rows:  # ids boxed one sample earlier but not now: dotted, "?id"
                if r["cam"] == cam and r["frame"] == f - STEP and r["id"] not in now:
                    p = [int(round(r[k] * s)) for k in ("x1", "y1", "x2", "y2")]
                    for x in range(p[0], p[2], 8):
                        cv2.line(img, (x, p[1]), (min(x + 3, p[2]), p[1]), color(r["id"]), 1)
                        cv2.line(img, (x, p[3]), (min(x + 3, p[2]), p[3]), color(r["id"]), 1)
                    for y in range(p[1], p[3], 8):
                        cv2.line(img, (p[0], y), (p[0], min(y + 3, p[3])), color(r["id"]), 1)
                        cv2.line(img, (p[2], y), (p[2], min(y + 3, p[3])), color(r["id"]), 1)
                    cv2.putText(img, f"?{r['id']}", (p[0] + 2, p[3] - 4), cv2.FONT_HERSHEY_SIMPLEX,
                                0.5, color(r["id"]), 1)
            for r in mine:
                p = [int(round(r[k] * s)) for k in ("x1", "y1", "x2", "y2")]
                c = color(r["id"])
                cv2.rectangle(img, p[:2], p[2:], c, 2 if r["source"] == "detector" else 3)
                g = ground(hs[cam], [r["x1"], r["y1"], r["x2"], r["y2"]])
                txt = f"{r['id']}"
                cv2.putText(img, txt, (p[0] + 2, p[1] + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                            (0, 0, 0), 4)
                cv2.putText(img, txt, (p[0] + 2, p[1] + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.6, c, 2)
                gt = f"{g[0]:.0f},{g[1]:.0f}"
                cv2.putText(img, gt, (p[0], p[3] + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (0, 0, 0), 3)
                cv2.putText(img, gt, (p[0], p[3] + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1)
            cv2.putText(img, f"{cam} f{f}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                        (255, 255, 255), 2)
            panels.append(img)
        sep = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
        pair = np.hstack([panels[0], sep, panels[1]])
        if a.map:  # ground map and the box list under the pair
            m = ground_map(rows, f, hs, 300)
            band = np.full((300, pair.shape[1], 3), 255, np.uint8)
            band[:, :300] = m
            y = 16
            here = sorted((r for r in rows if r["frame"] == f), key=lambda r: (r["id"], r["cam"]))
            for r in here:
                g = ground(hs[r["cam"]], [r["x1"], r["y1"], r["x2"], r["y2"]])
                t = (f"{r['cam']} id{r['id']:<4d} ({r['x1']:.0f},{r['y1']:.0f},{r['x2']:.0f},"
                     f"{r['y2']:.0f}) h{r['y2'] - r['y1']:.0f} g({g[0]:.0f},{g[1]:.0f}) "
                     f"{r['source'][0]}")
                x = 310 + ((y - 16) // 280) * 380
                cv2.putText(band, t, (x, 16 + (y - 16) % 280), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                            color(r["id"]), 1)
                y += 16
            pair = np.vstack([pair, band])
        cv2.imwrite(str(out / f"{f:06d}.png"), pair)
    print(f"{len(frames)} pair(s) -> {out}")


def ground_map(rows, f, hs, height: int) -> np.ndarray:
    """Ground positions of both views (c0 circle, c1 square) on one map."""
    size = height
    img = np.full((size, size, 3), 40, np.uint8)
    lo, hi = -160.0, 460.0  # ground units shown

    def px(g):
        return (int((g[0] - lo) / (hi - lo) * size), int((g[1] - lo) / (hi - lo) * size))

    for r in rows:
        if r["frame"] != f:
            continue
        g = ground(hs[r["cam"]], [r["x1"], r["y1"], r["x2"], r["y2"]])
        p, c = px(g), color(r["id"])
        if r["cam"] == "c0":
            cv2.circle(img, p, 7, c, 2)
        else:
            cv2.rectangle(img, (p[0] - 6, p[1] - 6), (p[0] + 6, p[1] + 6), c, 2)
        cv2.putText(img, str(r["id"]), (p[0] + 8, p[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1)
    cv2.putText(img, "o c0  [] c1", (5, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1)
    return img


def cmd_zoom(a) -> None:
    """A region of one or more frames of one camera, enlarged, with the table's boxes (thin)."""
    rows = load()
    x1, y1, x2, y2 = (int(v) for v in a.region.split(","))
    tiles = []
    for f in (int(v) for v in a.frames):
        img = cv2.imread(str(frame_path(a.work, a.cam, f)))[y1:y2, x1:x2]
        s = a.scale
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        for r in rows:
            if r["cam"] == a.cam and r["frame"] == f:
                p = [int(round((r[k] - o) * s)) for k, o in
                     (("x1", x1), ("y1", y1), ("x2", x1), ("y2", y1))]
                cv2.rectangle(img, p[:2], p[2:], color(r["id"]), 1)
                cv2.putText(img, str(r["id"]), (p[0] + 2, p[1] + 14), cv2.FONT_HERSHEY_SIMPLEX,
                            0.5, color(r["id"]), 1)
        # pixel grid every 10 px of the original frame
        for gx in range((x1 // 10 + 1) * 10, x2, 10):
            yellow = (0, 255, 255)
            cv2.line(img, ((gx - x1) * s, 0), ((gx - x1) * s, 6 if gx % 50 else 14), yellow, 1)
            if gx % 50 == 0:
                cv2.putText(img, str(gx), ((gx - x1) * s + 2, 24), cv2.FONT_HERSHEY_SIMPLEX,
                            0.4, (0, 255, 255), 1)
        for gy in range((y1 // 10 + 1) * 10, y2, 10):
            yellow = (0, 255, 255)
            cv2.line(img, (0, (gy - y1) * s), (6 if gy % 50 else 14, (gy - y1) * s), yellow, 1)
            if gy % 50 == 0:
                cv2.putText(img, str(gy), (16, (gy - y1) * s + 4), cv2.FONT_HERSHEY_SIMPLEX,
                            0.4, (0, 255, 255), 1)
        cv2.putText(img, f"{a.cam} f{f}", (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1)
        tiles.append(img)
        tiles.append(np.full((img.shape[0], 4, 3), 255, np.uint8))
    out = a.work / "zoom.png"
    cv2.imwrite(str(out), np.hstack(tiles[:-1]))
    print(out)


def cmd_idsheets(a) -> None:
    """Every crop of an id, both cameras, in time order (c0 on white, c1 on grey), in pages
    of ROWS x 16 tiles: WORK/ids/idNNN_P.png."""
    rows = load()
    out = a.work / "ids"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("id*.png"):
        old.unlink()
    ids = sorted({r["id"] for r in rows}) if not a.ids else [int(i) for i in a.ids]
    cache: dict = {}
    th, tw, per, page = 160, 80, 16, 16 * a.rows
    n = 0
    for i in ids:
        tiles = []
        for r in sorted((r for r in rows if r["id"] == i), key=lambda r: (r["frame"], r["cam"])):
            key = (r["cam"], r["frame"])
            if key not in cache:
                cache[key] = cv2.imread(str(frame_path(a.work, *key)))
            img = cache[key]
            x1, y1, x2, y2 = (int(round(r[k])) for k in ("x1", "y1", "x2", "y2"))
            crop = img[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)]
            sc = min(th / max(crop.shape[0], 1), tw / max(crop.shape[1], 1))
            size = (max(1, int(crop.shape[1] * sc)), max(1, int(crop.shape[0] * sc)))
            crop = cv2.resize(crop, size)
            tile = np.full((th + 14, tw + 2, 3), 255 if r["cam"] == "c0" else 170, np.uint8)
            tile[:crop.shape[0], :crop.shape[1]] = crop
            cv2.putText(tile, f"{r['cam'][1]}:{r['frame']}", (1, th + 11),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
            tiles.append(tile)
        for pg, s0 in enumerate(range(0, len(tiles), page)):
            chunk = tiles[s0:s0 + page]
            lines = []
            for s in range(0, len(chunk), per):
                line = chunk[s:s + per]
                line += [np.zeros_like(tiles[0])] * (per - len(line))
                lines.append(np.hstack(line))
            cv2.imwrite(str(out / f"id{i:03d}_{pg}.png"), np.vstack(lines))
            n += 1
    print(f"{n} sheet(s) for {len(ids)} id(s) -> {out}")


# ---------------------------------------------------------------- write / check
def cmd_write(a) -> None:
    rows = load()
    for cam in CAMS:
        d = OUT / cam
        (d / "gt").mkdir(parents=True, exist_ok=True)
        mine = sorted((r for r in rows if r["cam"] == cam), key=lambda r: (r["frame"], r["id"]))
        with open(d / "gt" / "gt.txt", "w") as fh:
            for r in mine:
                fh.write(f"{r['frame']},{r['id']},{r['x1']:.1f},{r['y1']:.1f},"
                         f"{r['x2'] - r['x1']:.1f},{r['y2'] - r['y1']:.1f},1,-1,-1,-1\n")
        (d / "seqinfo.ini").write_text(
            f"[Sequence]\nname={cam}\nimDir=img1\nframeRate=25\nseqLength={N_FRAMES}\n"
            f"imWidth={W}\nimHeight={H}\nimExt=.jpg\nannotatedEvery={STEP}\n")
        print(f"{cam}: {len(mine)} boxes, {len({r['id'] for r in mine})} ids")
    both = {r["id"] for r in rows if r["cam"] == "c0"} & {r["id"] for r in rows if r["cam"] == "c1"}
    print(f"ids: {len({r['id'] for r in rows})}, in both views: {len(both)}")


def cmd_check(a) -> None:
    """Ground distance between the two views of each id, and per-id step between samples."""
    rows = load()
    hs = homographies()
    pos = {(r["cam"], r["frame"], r["id"]):
           ground(hs[r["cam"]], [r["x1"], r["y1"], r["x2"], r["y2"]])
           for r in rows}
    cross = []
    for (cam, f, i), g in pos.items():
        if cam == "c0" and ("c1", f, i) in pos:
            d = float(np.linalg.norm(g - pos[("c1", f, i)]))
            cross.append(d)
            if d > a.gate:
                print(f"cross  f{f} id{i}: {d:.0f} units apart in c0/c1")
    for cam in CAMS:
        for (c, f, i), g in sorted(pos.items(), key=lambda kv: kv[0][1]):
            if c == cam and (cam, f - STEP, i) in pos:
                d = float(np.linalg.norm(g - pos[(cam, f - STEP, i)]))
                if d > a.step:
                    print(f"step   {cam} f{f - STEP}->{f} id{i}: {d:.0f} units in 1 s")
    if cross:
        print(f"{len(cross)} two-view pairs, median {np.median(cross):.1f}, "
              f"p90 {np.percentile(cross, 90):.1f}, max {max(cross):.1f}")
    # same frame, same camera, heavily overlapping boxes with different ids
    by = {}
    for r in rows:
        by.setdefault((r["cam"], r["frame"]), []).append(r)
    for (cam, f), rs in sorted(by.items()):
        for i in range(len(rs)):
            for j in range(i + 1, len(rs)):
                b = [[r[k] for k in ("x1", "y1", "x2", "y2")] for r in (rs[i], rs[j])]
                if iou(*b) > 0.6:
                    print(f"overlap {cam} f{f}: ids {rs[i]['id']} and {rs[j]['id']} "
                          f"IoU {iou(*b):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gt_work"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("extract")
    p = sub.add_parser("detect")
    p.add_argument("--weights",
                   default=str(SHARED / "weights/detector/yolov8n_coco_reconstructed.pt"))
    p.add_argument("--conf", type=float, default=0.1)
    p = sub.add_parser("propose")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("render")
    p.add_argument("frames", nargs="*")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--dets", action="store_true", help="also unmatched detections (grey)")
    p.add_argument("--map", action="store_true", help="ground-plane map beside the pair")
    p = sub.add_parser("step")
    p.add_argument("frames", nargs="+")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--gate", type=float, default=40)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("edit", help=cmd_edit.__doc__)
    p.add_argument("--source", help="source of the changed or added rows (e.g. pass2)")
    p.add_argument("op")
    p.add_argument("args", nargs="*")
    p = sub.add_parser("zoom")
    p.add_argument("cam")
    p.add_argument("region", help="x1,y1,x2,y2 in frame pixels")
    p.add_argument("frames", nargs="+")
    p.add_argument("--scale", type=int, default=5)
    p = sub.add_parser("idsheets")
    p.add_argument("ids", nargs="*")
    p.add_argument("--rows", type=int, default=4)
    sub.add_parser("write")
    p = sub.add_parser("check")
    p.add_argument("--gate", type=float, default=40)
    p.add_argument("--step", type=float, default=60)
    a = ap.parse_args()
    {"extract": cmd_extract, "detect": cmd_detect, "propose": cmd_propose,
     "render": cmd_render, "edit": cmd_edit, "idsheets": cmd_idsheets, "write": cmd_write,
     "check": cmd_check, "zoom": cmd_zoom, "step": cmd_step}[a.cmd](a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
