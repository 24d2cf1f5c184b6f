"""track serve on a real run (conftest's TUD-Campus run), in a real browser: Debian's headless
Chromium, driven by Selenium, looks at the page a person sees. Bad requests are sent over
plain HTTP to the same server process, which must keep serving."""

import contextlib
import http.client
import json
import shutil
import sqlite3
import threading
import time

import cv2
import numpy as np
import pytest

from bench.serve_browser import Server, browser_missing, chromium, free_port, wait_for
from tracking.cli import main
from tracking.index import TrackletIndex


@pytest.fixture(scope="module")
def server(tud_run):
    reason = browser_missing()
    if reason:
        pytest.skip(f"{reason}; scripts/setup.sh installs it as root")
    run_dir, _ = tud_run
    s = Server([run_dir])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(server):
    driver = chromium()
    yield driver
    driver.quit()


def people(run_dir) -> list[dict]:
    index = TrackletIndex(run_dir / "index.sqlite")
    found = index.identities()
    index.close()
    return found


def request(server, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, cookie: bool = False) -> tuple:
    """One raw HTTP request to a Server or a (host, port) (the path is sent as written: no
    client-side clean-up): the status, the JSON answer ({} if none) and, if asked, the
    Set-Cookie header."""
    host, port = server if isinstance(server, tuple) else ("127.0.0.1", server.port)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    return (r.status, answer, r.getheader("set-cookie") or "") if cookie else (r.status, answer)


def wait_until(ready, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    return ready()


def open_page(browser, server) -> None:
    browser.get(server.url + "/")
    assert wait_for(browser, "return window.mcreidReady === true")


def test_the_page_lists_cameras_and_identities(browser, server, tud_run):
    open_page(browser, server)
    shown = browser.execute_script(
        "return [...document.querySelectorAll('.identity')].map(e => +e.dataset.id)")
    assert shown == [p["identity"] for p in people(tud_run[0])] and shown
    assert browser.execute_script(
        "return [...document.querySelectorAll('.camera')].map(e => e.textContent)") == [
        "TUD-Campus"]
    assert wait_for(browser, "return [...document.querySelectorAll('.identity img')]"
                    ".every(i => i.complete && i.naturalHeight === 128)")  # thumbnails


def test_an_identity_opens_with_its_sheet_timeline_and_sightings(browser, server, tud_run):
    run_dir, _ = tud_run
    open_page(browser, server)
    someone = next(p for p in people(run_dir)
                   if (run_dir / "TUD-Campus_gallery" / f"id_{p['identity']:04d}.png").is_file())
    browser.find_element("css selector", f".identity[data-id='{someone['identity']}']").click()
    assert wait_for(browser, "return !document.querySelector('#detail').hidden && "
                    "document.querySelector('#sightings tr.sighting')")
    assert browser.find_element("id", "detail-title").text.startswith(
        f"Identity {someone['identity']}")
    for img in ("img.sheet", "img.timeline"):
        assert wait_for(browser, f"const i = document.querySelector('#detail {img}'); "
                        "return i.complete && i.naturalWidth > 100")
    rows = browser.find_elements("css selector", "#sightings tr.sighting")
    assert [r.get_attribute("data-camera") for r in rows] == ["TUD-Campus"] * len(rows)


def test_a_sighting_plays_the_video_from_its_moment(browser, server, tud_run):
    """The video really decodes and plays from the sighting's start (here every person is
    in the first frame, so the start is 0 s; bench/serve_screens.py checks a later start
    on a longer run)."""
    open_page(browser, server)
    later = max(people(tud_run[0]), key=lambda p: p["start_s"])
    browser.find_element("css selector", f".identity[data-id='{later['identity']}']").click()
    assert wait_for(browser, "return document.querySelector('#sightings tr.sighting')")
    row = browser.find_element("css selector", "#sightings tr.sighting")
    t = float(row.get_attribute("data-t"))
    assert t == pytest.approx(later["start_s"])
    for _ in range(30):  # the WebM is converted in the background when the server starts
        row.click()
        if wait_for(browser, "const v = document.querySelector('#player video'); "
                    "return v.readyState >= 2 || v.error", 10) is True:
            break
        wait_for(browser, "return false", 2)
    state = browser.execute_script("const v = document.querySelector('#player video'); "
                                   "return [v.error && v.error.code, v.videoWidth, v.src]")
    assert state[0] is None and state[1] == 640 and state[2].endswith(f"#t={t:g}")
    assert wait_for(browser, "const v = document.querySelector('#player video'); "
                    f"return !v.paused && v.currentTime > {t} + 0.2", 20)  # it plays on


def test_an_uploaded_crop_finds_its_identity_first(browser, server, tud_run, tmp_path):
    run_dir, video = tud_run
    frame_no = 20
    ids = {p["identity"] for p in people(run_dir)}
    entry = next(json.loads(line) for line in (run_dir / "TUD-Campus.jsonl").read_text()
                 .splitlines() if json.loads(line)["frame"] == frame_no)
    track = max((t for t in entry["tracks"] if t["id"] in ids), key=lambda t: t["score"])
    cap = cv2.VideoCapture(str(video))
    for _ in range(frame_no):
        _, image = cap.read()
    cap.release()
    x1, y1, x2, y2 = (int(v) for v in track["box"])
    cv2.imwrite(str(tmp_path / "person.png"), image[y1:y2, x1:x2])
    open_page(browser, server)
    browser.find_element("id", "photo").send_keys(str(tmp_path / "person.png"))
    browser.find_element("css selector", "#search button").click()
    assert wait_for(browser, "return document.querySelectorAll('#results .hit').length", 60)
    hits = browser.execute_script(
        "return [...document.querySelectorAll('#results .hit')].map(e => +e.dataset.id)")
    assert hits[0] == track["id"] and len(set(hits)) == len(hits)
    assert "identities found" in browser.find_element("id", "status").text
    browser.find_element("css selector", "#results .hit").click()  # a hit opens its identity
    assert wait_for(browser, "return document.querySelector('#detail-title').textContent"
                    f".startsWith('Identity {track['id']} ')")


def test_bad_uploads_are_4xx_and_the_server_keeps_serving(server, tud_run):
    _, video = tud_run
    ok, jpg = cv2.imencode(".jpg", cv2.VideoCapture(str(video)).read()[1])
    cases = [(b"just some text, not a photo", 400, "not an image"),
             (jpg.tobytes()[:300], 400, "not an image"),  # a real JPEG cut short
             (b"\xff" * (9 * 2**20), 413, "over 8 MB"),
             (cv2.imencode(".png", np.full((480, 640, 3), 128, np.uint8))[1].tobytes(), 422,
              "no person")]
    for body, status, words in cases:
        got, answer = request(server, "POST", "/api/search", body,
                              {"Content-Type": "application/octet-stream"})
        assert got == status and words in answer["error"]
    assert request(server, "POST", "/api/search?box=1,2", jpg.tobytes())[0] == 422
    assert request(server, "GET", "/api/runs")[0] == 200


def test_paths_outside_the_run_are_not_served(server):
    for path in ["/runs/0/videos/../../../../etc/passwd", "/runs/0/videos/..%2F..%2Fetc%2Fpasswd"
                 ".webm", "/runs/0/videos/..%2Fevents.jsonl.webm", "/runs/0/sheets/..%2Fx.png",
                 "/runs/0/thumbs/..%2F..%2Findex.sqlite.png", "/runs/7/thumbs/1.png",
                 "/../../etc/passwd", "/runs/0/timelines/999999.png"]:
        status, _ = request(server, "GET", path)
        assert status in (400, 404, 422), path
    assert request(server, "GET", "/api/runs")[0] == 200


@contextlib.contextmanager
def in_thread(folders, host: str = "127.0.0.1", token: str | None = None):
    """The app track serve runs, served by uvicorn in a thread of this process: its
    (host, port)."""
    import uvicorn

    from tracking.serve import PhotoSearch, make_app, open_runs

    runs = open_runs([str(f) for f in folders])
    app = make_app(runs, PhotoSearch(runs, None, None), token=token)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started)
    try:
        yield host, server.config.port
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_token_guards_every_request(tud_run):
    """Bound to another address than 127.0.0.1 (here 127.0.0.2) with a token."""
    with in_thread([tud_run[0]], "127.0.0.2", "s3cret") as at:
        for path in ("/", "/api/runs", "/runs/0/thumbs/1.png"):
            status, answer = request(at, "GET", path)
            assert status == 401 and "token" in answer["error"]
        assert request(at, "GET", "/api/runs", headers={"Authorization": "Bearer no"})[0] == 401
        assert request(at, "GET", "/api/runs",
                       headers={"Authorization": "Bearer s3cret"})[0] == 200
        status, _, cookie = request(at, "GET", "/?token=s3cret", cookie=True)
        assert status == 200 and cookie.startswith("mcreid_token=s3cret")
        assert request(at, "GET", "/api/runs", headers={"Cookie": cookie.split(";")[0]})[0] == 200


def fetch(at, path: str, **headers) -> tuple[int, dict, bytes]:
    """GET: status, headers (lower-case names), body."""
    conn = http.client.HTTPConnection(*at, timeout=60)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_answers_are_cached_until_the_index_changes(tud_run, tmp_path):
    """Thumbnails are kept by the browser (their address names the index file), the rest
    is revalidated (ETag): unchanged -> 304, rows appended by a live run or an index rebuilt
    while the server runs -> the new records, and the old thumbnails' addresses gone."""
    run_dir = tmp_path / "run"
    shutil.copytree(tud_run[0], run_dir)
    with in_thread([run_dir]) as at:
        status, head, body = fetch(at, "/api/runs")
        listed = json.loads(body)[0]["identities"]
        assert status == 200 and "no-cache" in head["cache-control"]
        assert fetch(at, "/api/runs", **{"If-None-Match": head["etag"]})[0] == 304
        thumb = listed[0]["thumb"]
        status, thead, png = fetch(at, thumb)
        assert status == 200 and "immutable" in thead["cache-control"] and png[:4] == b"\x89PNG"
        assert fetch(at, thumb, **{"If-None-Match": thead["etag"]})[0] == 304

        index = TrackletIndex(run_dir / "index.sqlite")  # a live run appends a tracklet
        (_, t), = index.tracklets("id = ?", (1,))
        t.global_id = 999
        with index.db:
            index.add([t])
        index.close()
        status, head2, body = fetch(at, "/api/runs", **{"If-None-Match": head["etag"]})
        assert status == 200 and head2["etag"] != head["etag"]
        assert [p["identity"] for p in json.loads(body)[0]["identities"]][-1] == 999

        assert main(["index", str(run_dir)]) == 0  # rebuilt: a new file
        status, _, body = fetch(at, "/api/runs")
        again = json.loads(body)[0]["identities"]
        assert [p["identity"] for p in again] == [p["identity"] for p in listed]
        assert again[0]["thumb"] != thumb and fetch(at, thumb)[0] == 404
        assert fetch(at, again[0]["thumb"])[2] == png


def fails(capsys, *args) -> str:
    assert main(["serve", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_bad_starts_are_one_line_errors(tud_run, tmp_path, capsys):
    run_dir, _ = tud_run
    assert "--token" in fails(capsys, run_dir, "--host", "0.0.0.0")
    assert "does not exist" in fails(capsys, tmp_path / "nowhere")
    (tmp_path / ".events.part.jsonl").write_text("")
    assert "half-written" in fails(capsys, tmp_path)
    assert "port" in fails(capsys, run_dir, "--port", "70000")
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(run_dir / "index.sqlite", broken)
    (broken / "run.json").write_text("{\"cameras\": [")  # cut short
    assert "not a run manifest" in fails(capsys, broken)
    other = tmp_path / "other_model"
    shutil.copytree(run_dir, other)
    db = sqlite3.connect(other / "index.sqlite")
    with db:
        db.execute("UPDATE meta SET value = json_set(value, '$.sha256', 'another') "
                   "WHERE key = 'model'")
    db.close()
    assert "different re-ID models" in fails(capsys, run_dir, other)
    assert "query model is" in fails(capsys, other)
