"""The track serve page's first load with many identities, in a real browser (Debian's
headless Chromium through Selenium, bench/serve_browser.py).

    python bench/serve_page_load.py --real RUN --out bench/results/search_page_load.json

The index is synthetic: --identities people, two sightings each in two cameras, random unit
vectors (the page never reads them) and the real thumbnails of the indexed run RUN, cycled.
Measured from navigation start (the browser's own clock) to the identity list shown (the
page's mark after it has drawn the list) and to the last thumbnail in view received (resource
timing); all in view: the later of the two. Over --loads fresh page loads in one browser
(its cache kept: thumbnails are cached for good, the list revalidated); the first, cold, is
reported apart (also the server's first request). The browser window is 1400 x 900.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from common import ROOT, write_results

from bench.serve_browser import Server, chromium, wait_for

IN_VIEW = "i => i.getBoundingClientRect().top < innerHeight"


def synthetic_run(folder: Path, real: Path, people: int) -> None:
    from tracking.index import INDEX_NAME, Tracklet, TrackletIndex

    source = TrackletIndex(real / INDEX_NAME)
    thumbs = [t.thumb for _, t in source.tracklets() if t.thumb]
    model = source.model
    source.close()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INDEX_NAME).unlink(missing_ok=True)
    (folder / "run.json").write_text(json.dumps({"cameras": [
        {"name": c, "offset_s": 0.0, "source": "none"} for c in ("door", "hall")],
        "reid": model, "live": False}))
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2 * people, int(model["embedding_dim"]))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = TrackletIndex(folder / INDEX_NAME, model=model)
    index.add(Tracklet("synthetic", cam, 2 * g + k, g + 1, 10.0 * g + 5 * k, 10.0 * g + 5 * k + 4,
                       0, 0, 0, (0, 0, 1, 1), thumbs[(2 * g + k) % len(thumbs)], vecs[2 * g + k])
              for g in range(people) for k, cam in enumerate(("door", "hall")))
    index.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="an indexed run, for its thumbnails")
    ap.add_argument("--identities", type=int, default=1000)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--out", default="bench/results/search_page_load.json")
    args = ap.parse_args()
    folder = ROOT / "runs" / f"search_page_load_{args.identities}"
    synthetic_run(folder, Path(args.real), args.identities)
    server, driver = Server([folder]), chromium()
    try:
        loads = []
        for _ in range(args.loads):
            driver.get("about:blank")
            t = time.perf_counter()
            driver.get(server.url + "/")  # returns at the load event
            assert wait_for(driver, "return window.mcreidReady === true", 60)
            shown = driver.execute_script("return document.querySelectorAll('.identity')"
                                          ".length")
            assert shown == args.identities, shown
            assert wait_for(driver, f"return [...document.images].filter({IN_VIEW})"
                            ".every(i => i.complete)", 60)
            shown_ms, thumbs_ms, in_view = driver.execute_script(
                f"const urls = new Set([...document.images].filter({IN_VIEW}).map(i => i.src));"
                " const ends = performance.getEntriesByType('resource')"
                ".filter(e => urls.has(e.name)).map(e => e.responseEnd);"
                " return [window.mcreidReadyAt, Math.max(...ends), urls.size]")
            loads.append({"list_shown_ms": round(shown_ms), "thumbs_in_view_ms": round(thumbs_ms),
                          "all_in_view_ms": round(max(shown_ms, thumbs_ms)),
                          "thumbs_in_view": in_view,
                          "selenium_wall_ms": round(1000 * (time.perf_counter() - t))})
            print(loads[-1], flush=True)
    finally:
        driver.quit()
        server.stop()
    later = loads[1:] or loads
    result = {"identities": args.identities, "browser": "chromium (Debian), headless",
              "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
              "first_load": loads[0],
              "later_median": {k: float(np.median([x[k] for x in later])) for k in loads[0]},
              "loads": loads}
    write_results(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
