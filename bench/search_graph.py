"""The saved search graph: ``track search`` on an index above EXACT_MAX builds its HNSW graph
once and keeps it beside index.sqlite (RUN/index.hnsw); later calls read it instead.

    python bench/search_graph.py --real runs/search_pets --n 200000 \
        --out bench/results/search_graph.json

The index holds --n tracklets (three per identity) whose vectors are noisy copies of the
real vectors of the indexed run --real (bench/search_scale.py's ``noisy``), without
thumbnails. Each figure is the wall time of one whole ``track search --index DIR --identity
1`` process (start-up, reading, searching, writing the sheets), in this order:

1. first call: no graph file, it is built and saved;
2. second call: the graph is read;
3. after --append rows were appended (as a live run does): read, the new rows added, saved;
4. third call on the unchanged index: read again;
5. the graph file cut in half: a one-line warning, rebuilt and saved.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, write_results
from search_scale import noisy


def fill(folder: Path, real: Path, first: int, n: int, noise: float) -> None:
    """Append n tracklets to folder's index (made with --real's model if new)."""
    from tracking.index import INDEX_NAME, Tracklet, TrackletIndex

    source = TrackletIndex(real / INDEX_NAME)
    base = source.vectors()[1]
    model = source.model
    source.close()
    vectors = noisy(base, n, noise, np.random.default_rng(first))
    index = TrackletIndex(folder / INDEX_NAME, model=model)
    for s in range(0, n, 20_000):
        index.add(Tracklet("synthetic", "cam", i, i // 3 + 1, float(i), i + 1.0, i, i, i,
                           (0, 0, 1, 1), None, vectors[i - first])
                  for i in range(first + s, first + min(n, s + 20_000)))
    index.close()


def timed_search(folder: Path) -> dict:
    """One track search process: its wall time and its warnings."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tracking.cli", "search", "--index", str(folder),
                        "--identity", "1", "--json", str(folder / "hits.json")], cwd=ROOT,
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"track search failed: {p.stderr[-2000:]}")
    hits = json.loads((folder / "hits.json").read_text())["hits"]
    return {"wall_s": round(wall, 2), "hits": len(hits),
            "warnings": [line.split(": ", 1)[-1] for line in p.stderr.splitlines()
                         if " WARNING " in line]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="an indexed run, for its vectors")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--append", type=int, default=1_000)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--out", default="bench/results/search_graph.json")
    args = ap.parse_args()
    from tracking import search

    assert args.n >= search.EXACT_MAX, "below EXACT_MAX the search is exact: no graph"
    folder = ROOT / "runs" / f"search_graph_{args.n}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    t = time.perf_counter()
    fill(folder, Path(args.real), 0, args.n, args.noise)
    store_s = time.perf_counter() - t
    graph = folder / "index.hnsw"
    calls = {"first (builds the graph)": timed_search(folder)}
    calls["second (reads it)"] = timed_search(folder)
    fill(folder, Path(args.real), args.n, args.append, args.noise)
    calls[f"after {args.append} rows appended (reads, adds)"] = timed_search(folder)
    calls["next, unchanged"] = timed_search(folder)
    size = graph.stat().st_size
    whole = graph.read_bytes()
    graph.write_bytes(whole[:len(whole) // 2])
    calls["graph file cut in half (rebuilds)"] = timed_search(folder)
    for name, c in calls.items():
        print(f"{name}: {c}", flush=True)
    result = {"n": args.n, "appended": args.append, "store_s": round(store_s, 1),
              "index_bytes": (folder / "index.sqlite").stat().st_size, "graph_bytes": size,
              "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()], "calls": calls}
    write_results(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
