"""The page ``track serve`` shows: one HTML document, its style and script inline, so that
it needs nothing from the internet. It reads the server's JSON (tracking.serve)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcreid: people in these recordings</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; color: #222; background: #f6f6f4; }
header { display: flex; gap: 16px; align-items: center; padding: 10px 16px;
         background: #233; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
#status { color: #fc6; }
main { display: grid; grid-template-columns: minmax(320px, 44%) 1fr; gap: 16px; padding: 16px; }
h2 { font-size: 15px; margin: 8px 0; }
.run { margin-bottom: 14px; }
.cameras { margin: 4px 0 8px; color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; }
.identity, .hit { width: 84px; border: 1px solid #ccc; background: #fff; padding: 3px;
                  cursor: pointer; text-align: center; font-size: 12px; border-radius: 4px; }
.identity:hover, .hit:hover, .identity.open { border-color: #2a7; }
.identity img, .hit img { width: 48px; height: 96px; object-fit: contain; display: block;
                          margin: 0 auto; background: #eee; }
.identity small, .hit small { display: block; color: #666; white-space: nowrap;
                              overflow: hidden; text-overflow: ellipsis; }
#results { display: flex; gap: 6px; align-items: flex-start; flex-wrap: wrap; }
#results .query img { height: 120px; border: 2px solid #233; }
#detail img.sheet, #detail img.timeline { display: block; max-width: 100%; margin: 6px 0;
                                          background: #fff; }
#sightings td { padding: 2px 8px; }
#sightings tr.sighting { cursor: pointer; }
#sightings tr.sighting:hover { background: #dfe; }
#sightings img { height: 48px; }
video { max-width: 100%; background: #000; }
.error { color: #b00; }
</style></head>
<body>
<header><h1>mcreid</h1>
<form id="search"><label>Search by photo: <input type="file" id="photo" accept="image/*">
</label> <button type="submit">Search</button></form><span id="status"></span></header>
<main>
<section id="runs"><p>Loading...</p></section>
<section>
<div id="results"></div>
<div id="detail" hidden><h2 id="detail-title"></h2>
<img class="sheet" alt="contact sheet"><img class="timeline" alt="timeline">
<table id="sightings"></table></div>
<div id="player" hidden><h2 id="player-title"></h2>
<video controls muted playsinline></video><p id="video-error" class="error"></p></div>
</section></main>
<script>
"use strict";
const $ = (q) => document.querySelector(q);
const esc = (s) => String(s).replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const secs = (t) => t.toFixed(1) + " s";
function status(text, bad) {
  $("#status").textContent = text;
  $("#status").className = bad ? "error" : "";
}
async function json(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || body.detail || response.statusText);
  return body;
}
// The first screenful of pictures is asked for at once, the rest as the page is scrolled:
// "lazy" waits for the layout of the whole list (about 200 ms of 1,000 identities here).
const EAGER = 60;
function card(cls, run, p, extra, i) {
  const img = p.thumb ? `<img loading="${i < EAGER ? "eager" : "lazy"}" src="${esc(p.thumb)}" ` +
    'alt="">' : "<img alt=''>";
  return `<div class="${cls}" data-run="${run}" data-id="${p.identity}">${img}` +
    `<b>id ${p.identity}</b><small>${esc(p.cameras.join(", "))}</small>${extra}</div>`;
}
async function loadRuns() {
  const runs = await json(await fetch("/api/runs"));
  $("#runs").innerHTML = runs.map((r) =>
    `<div class="run"><h2>${esc(r.name)}: <span class="count">${r.identities.length}</span>` +
    ` identities</h2><div class="cameras">Cameras: ${r.cameras.map((c) =>
      `<span class="camera">${esc(c.name)}</span>` + (c.video ? "" : " (no video)")).join(", ")}` +
    "</div>" +
    `<div class="grid identities">${r.identities.map((p, i) => card("identity", r.number, p,
      `<small>${secs(p.start_s)}-${secs(p.end_s)}</small>`, i)).join("")}</div></div>`).join("");
}
async function openIdentity(run, id) {
  document.querySelectorAll(".identity.open").forEach((e) => e.classList.remove("open"));
  const el = document.querySelector(`.identity[data-run="${run}"][data-id="${id}"]`);
  if (el) el.classList.add("open");
  try {
    const d = await json(await fetch(`/api/runs/${run}/identities/${id}`));
    $("#detail-title").textContent = `Identity ${d.identity} in ${d.run}`;
    const sheet = $("#detail img.sheet");
    sheet.hidden = !d.sheet;
    if (d.sheet) sheet.src = d.sheet;
    $("#detail img.timeline").src = d.timeline;
    $("#sightings").innerHTML =
      "<tr><th></th><th>camera</th><th>from</th><th>to</th><th></th></tr>" +
      d.sightings.map((s) => `<tr class="sighting" data-video="${esc(s.video || "")}" ` +
        `data-t="${s.video_t}" data-camera="${esc(s.camera)}">` +
        `<td>${s.thumb ? `<img src="${esc(s.thumb)}" alt="">` : ""}</td>` +
        `<td>${esc(s.camera)}</td><td>${secs(s.start_s)}</td><td>${secs(s.end_s)}</td>` +
        `<td>${s.video ? "&#9654; play" : "no video"}</td></tr>`).join("");
    $("#detail").hidden = false;
    status("");
  } catch (e) { status(e.message, true); }
}
function play(row) {
  const url = row.dataset.video, t = parseFloat(row.dataset.t);
  if (!url) { status(`camera ${row.dataset.camera} has no video`, true); return; }
  const video = $("#player video");
  $("#player").hidden = false;
  $("#video-error").textContent = "";
  $("#player-title").textContent = `${row.dataset.camera} from ${secs(t)}`;
  video.onloadedmetadata = () => { video.currentTime = t; video.play().catch(() => {}); };
  video.onerror = async () => {
    const r = await fetch(url, {headers: {Range: "bytes=0-0"}});
    $("#video-error").textContent = r.ok ? "this browser cannot play the video"
      : (await r.json().catch(() => ({}))).error || r.statusText;
  };
  video.src = `${url}#t=${t}`;
}
async function searchPhoto(ev) {
  ev.preventDefault();
  const file = $("#photo").files[0];
  if (!file) { status("choose a photo first", true); return; }
  status("searching...");
  try {
    const r = await json(await fetch("/api/search?top=10", {method: "POST", body: file,
      headers: {"Content-Type": file.type || "application/octet-stream"}}));
    $("#results").innerHTML =
      `<div class="query"><img src="${r.query}" alt="query"><small>query</small></div>` +
      r.hits.map((h, i) => card("hit", h.run_number, h,
        `<small>#${i + 1} d ${h.distance.toFixed(3)}</small><small>${esc(h.run)}</small>`, i))
        .join("");
    status(`${r.hits.length} identities found`);
  } catch (e) { $("#results").innerHTML = ""; status(e.message, true); }
}
document.addEventListener("click", (ev) => {
  const person = ev.target.closest(".identity, .hit");
  if (person) openIdentity(person.dataset.run, person.dataset.id);
  const row = ev.target.closest("tr.sighting");
  if (row) play(row);
});
$("#search").addEventListener("submit", searchPhoto);
loadRuns().then(() => { window.mcreidReadyAt = performance.now(); window.mcreidReady = true; },
  (e) => status(e.message, true));
</script>
</body></html>
"""
