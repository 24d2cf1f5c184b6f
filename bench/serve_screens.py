"""Screenshots of the track serve page for the docs, taken in a real browser (Debian's headless
Chromium, bench/serve_browser.py) on an indexed run with videos, and a check that a
sighting's video starts at that sighting's moment.

    python bench/serve_screens.py runs/search_pets --out docs/img

Writes serve_page.png (the identities), serve_identity.png (one seen in several cameras,
or the longest seen: sheet, timeline, its video at a later sighting) and serve_search.png
(a crop of that person from the source video uploaded and searched).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
from common import ROOT

from bench.serve_browser import Server, chromium, wait_for


def subject(run: Path) -> tuple[int, dict]:
    """The identity to show: seen in most cameras, then longest; and its latest sighting."""
    from tracking.index import INDEX_NAME, TrackletIndex

    index = TrackletIndex(run / INDEX_NAME)
    person = max(index.identities(), key=lambda p: (len(p["cameras"]), p["end_s"] - p["start_s"]))
    last = max((t for _, t in index.tracklets("global_id = ?", (person["identity"],))),
               key=lambda t: t.start_s)
    index.close()
    return person["identity"], {"camera": last.camera, "frame": last.thumb_frame,
                                "box": last.box}


def source_crop(run: Path, seen: dict, out: Path) -> Path:
    from tracking.sinks import crop
    from tracking.sources import VideoFile

    sources = {c["name"]: c["source"] for c in json.loads((run / "run.json").read_text())
               ["cameras"]}
    for index, image in VideoFile(sources[seen["camera"]]):
        if index == seen["frame"]:
            cv2.imwrite(str(out), crop(image, seen["box"]))
            return out
    raise SystemExit(f"frame {seen['frame']} not in {sources[seen['camera']]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="an indexed run folder with its videos")
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args()
    run, out = Path(args.run), ROOT / args.out
    gid, seen = subject(run)
    server, driver = Server([run]), chromium(1400, 1000)
    try:
        driver.get(server.url + "/")
        assert wait_for(driver, "return window.mcreidReady === true", 60)
        wait_for(driver, "return [...document.images].every(i => i.complete)", 20)
        driver.save_screenshot(str(out / "serve_page.png"))
        driver.find_element("css selector", f".identity[data-id='{gid}']").click()
        assert wait_for(driver, "return document.querySelector('#sightings tr.sighting')")
        row = driver.find_elements("css selector", "#sightings tr.sighting")[-1]
        t = float(row.get_attribute("data-t"))
        for _ in range(120):  # the WebM is made in the background at the server's start
            row.click()
            if wait_for(driver, "return document.querySelector('#player video').readyState"
                        " >= 2", 5):
                break
        driver.execute_script("document.querySelector('#player video').pause()")
        at = driver.execute_script("return document.querySelector('#player video').currentTime")
        print(f"identity {gid}: sighting at {t:.2f} s, video at {at:.2f} s")
        assert abs(at - t) < 0.5, (at, t)
        driver.save_screenshot(str(out / "serve_identity.png"))
        with tempfile.TemporaryDirectory() as tmp:
            photo = source_crop(run, seen, Path(tmp) / "person.png")
            driver.get(server.url + "/")
            assert wait_for(driver, "return window.mcreidReady === true", 60)
            driver.find_element("id", "photo").send_keys(str(photo))
            driver.find_element("css selector", "#search button").click()
            assert wait_for(driver, "return document.querySelectorAll('#results .hit').length",
                            120)
        first = driver.execute_script("return +document.querySelector('#results .hit')"
                                      ".dataset.id")
        print(f"upload of identity {gid}'s crop: first hit identity {first}")
        wait_for(driver, "return [...document.images].every(i => i.complete)", 20)
        driver.save_screenshot(str(out / "serve_search.png"))
    finally:
        driver.quit()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
