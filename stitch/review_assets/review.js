// Stitch review page: synchronised playback of the original and the edits, edit picker, strength slider and
// per-frame curves. No dependencies; the data is the JSON in #review-data (written by stitch/review.py).
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("review-data").textContent);
  const fps = D.fps_num / D.fps_den;
  const N = D.num_frames;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const source = $("source");
  const edited = $("edited");
  const state = { method: D.methods[0], edit: null, strength: 0, playing: false };
  const cursors = [];  // {line, panel, value}: redrawn on every frame change
  let lastFrame = -1;

  // ------------------------------------------------------------------------------------------ time and frames
  const clampFrame = (k) => Math.max(0, Math.min(N - 1, k));
  const frameOf = (t) => clampFrame(Math.floor(t * fps + 1e-3));
  const timeOf = (k) => (clampFrame(k) + 0.5) / fps;  // the middle of frame k: robust to rounding
  const videos = () => Array.from(document.querySelectorAll("video.sync"));
  const followers = () => videos().filter((v) => v !== source);

  function quietPlay(v) {
    const p = v.play();
    if (p) p.catch((e) => { if (e.name !== "AbortError") console.warn("play:", v.getAttribute("src"), e.message); });
  }

  function play() {
    if (frameOf(source.currentTime) >= N - 1) seek(timeOf(0));
    state.playing = true;
    for (const v of videos()) { v.playbackRate = 1; quietPlay(v); }
    $("play").textContent = "Pause";
  }

  function pause() {
    state.playing = false;
    for (const v of videos()) v.pause();
    seek(source.currentTime);
    $("play").textContent = "Play";
  }

  function seek(t) {
    for (const v of videos()) v.currentTime = t;
    render(t);
  }

  function step(delta) {
    if (state.playing) pause();
    seek(timeOf(frameOf(source.currentTime) + delta));
  }

  // Followers chase the original: a small drift is absorbed by the playback rate, a large one by a seek.
  function syncFollowers() {
    const t = source.currentTime;
    for (const v of followers()) {
      if (v.readyState < 2 || v.seeking) continue;
      const d = v.currentTime - t;
      if (Math.abs(d) > 0.3) { v.currentTime = t; v.playbackRate = 1; }
      else v.playbackRate = Math.abs(d) < 0.25 / fps ? 1 : Math.max(0.5, Math.min(1.5, 1 - 2 * d));
      if (v.paused && !v.ended) quietPlay(v);
    }
  }

  function tick() {
    if (state.playing && !source.paused) syncFollowers();
    render(source.currentTime);
    requestAnimationFrame(tick);
  }

  // ------------------------------------------------------------------------------------------ clips
  const sweepRows = () => D.sweeps[state.edit] || null;
  const clipName = () => (sweepRows() ? sweepRows()[state.strength][1] : state.edit);
  const clip = (name) => D.clips[state.method][name];
  const editLabel = (e) => (e === "_recon" ? "reconstruction" : e);

  // Swap a video's file keeping the playhead: the new file starts where the original is.
  function setSource(v, url) {
    if (v.getAttribute("src") === url) return;
    v.pause();
    v.addEventListener("loadedmetadata", () => {
      v.currentTime = source.currentTime;
      if (state.playing) quietPlay(v);
    }, { once: true });
    v.setAttribute("src", url);
  }

  function showClip() {
    const name = clipName();
    const c = clip(name);
    setSource(edited, c.video);
    edited.dataset.clip = name;
    $("edit-label").textContent = `${state.method}: ${editLabel(name)}`;
    const rows = sweepRows();
    $("strength-label").textContent = rows ? `\u00d7${rows[state.strength][0]} (${editLabel(name)})` : "";
    const links = [[c.video, "edited mp4"], [c.side_by_side, "side-by-side mp4"], [D.source, "original mp4"]];
    if (D.index) links.unshift([D.index, "all videos"]);
    $("links").replaceChildren(...links.filter((l) => l[0]).map(([href, text]) => link(href, text)));
    drawCurves(c);
    for (const f of $("grid").children) f.classList.toggle("current", f.dataset.edit === state.edit);
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function pickEdit(edit) {
    state.edit = edit;
    $("edit").value = edit;
    const rows = sweepRows();
    $("strength-box").hidden = !rows;
    if (rows) {
      const one = rows.findIndex((r) => r[1] === edit);
      state.strength = one >= 0 ? one : rows.length - 1;
      $("strength").max = rows.length - 1;
      $("strength").value = state.strength;
    }
    showClip();
  }

  function pickMethod(method) {
    state.method = method;
    buildGrid();
    pickEdit(state.edit);
  }

  // ------------------------------------------------------------------------------------------ grid of edits
  function buildGrid() {
    for (const v of $("grid").querySelectorAll("video")) { v.pause(); v.removeAttribute("src"); v.load(); }
    const figures = D.edits.map((e) => {
      const f = document.createElement("figure");
      f.dataset.edit = e;
      const cap = document.createElement("figcaption");
      cap.textContent = editLabel(e);
      const v = document.createElement("video");
      v.className = "sync";
      v.muted = true;
      v.playsInline = true;
      v.preload = "auto";
      watchErrors(v);
      f.append(cap, v);
      f.addEventListener("click", () => pickEdit(e));
      setSource(v, clip(e).video);
      return f;
    });
    $("grid").replaceChildren(...figures);
  }

  function watchErrors(v) {
    v.addEventListener("error", () => {
      const msg = `cannot play ${v.getAttribute("src")} (media error ${v.error ? v.error.code : "?"})`;
      $("status").textContent = msg;
      console.error(msg);
    });
  }

  // ------------------------------------------------------------------------------------------ curves
  const W = 600, H = 130, L = 44, R = 8, T = 8, B = 18;
  const xOf = (k) => L + ((W - L - R) * k) / Math.max(1, N - 1);
  const fmt = (v) => (v === null || v === undefined ? "\u2013" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));

  function svgEl(tag, attrs, parent) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  function range(series) {
    const vals = series.flat().filter((v) => v !== null && v !== undefined);
    if (!vals.length) return [0, 1];
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (hi - lo < 1e-9) { const pad = Math.max(0.5, Math.abs(lo) * 0.1); lo -= pad; hi += pad; }
    return [lo, hi];
  }

  // "M x y L x y ..." broken where a value is missing; lone points get a zero-length segment (a round dot).
  function pathOf(ys, lo, hi) {
    const yOf = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    let d = "", run = 0;
    ys.forEach((v, k) => {
      if (v === null || v === undefined) { if (run === 1) d += "h0"; run = 0; return; }
      d += `${run ? "L" : "M"}${xOf(k).toFixed(1)} ${yOf(v).toFixed(1)}`;
      run += 1;
    });
    return run === 1 ? d + "h0" : d;
  }

  function drawPanel(p, c) {
    const ys = c.curves[p.edit];
    const src = p.src ? c.curves[p.src] : null;
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.dataset.key = p.key;
    const head = document.createElement("div");
    head.className = "panel-head";
    head.innerHTML = `<span>${p.title} <span class="key-edit">&#9644; edit</span>` +
      (src ? ` <span class="key-src">&#9476; original</span>` : "") + `</span><span class="value"></span>`;
    const svg = svgEl("svg", { class: "curve", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": p.title });
    const [lo, hi] = range(src ? [ys, src] : [ys]);
    svgEl("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }, svg);
    svgEl("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, svg).textContent = fmt(hi);
    svgEl("text", { x: L - 4, y: H - B, "text-anchor": "end" }, svg).textContent = fmt(lo);
    svgEl("text", { x: L, y: H - 4 }, svg).textContent = "frame 1";
    svgEl("text", { x: W - R, y: H - 4, "text-anchor": "end" }, svg).textContent = `${N}`;
    if (src) svgEl("path", { class: "src", d: pathOf(src, lo, hi) }, svg);
    svgEl("path", { class: "edit", d: pathOf(ys, lo, hi) }, svg);
    const line = svgEl("line", { class: "cursor", x1: L, x2: L, y1: T, y2: H - B }, svg);
    svg.addEventListener("pointerdown", (e) => seekFromCurve(svg, e));
    svg.addEventListener("pointermove", (e) => { if (e.buttons & 1) seekFromCurve(svg, e); });
    panel.append(head, svg);
    cursors.push({ line, ys, src, value: head.querySelector(".value") });
    return panel;
  }

  function seekFromCurve(svg, e) {
    const r = svg.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * W;
    if (state.playing) pause();
    seek(timeOf(Math.round(((x - L) / (W - L - R)) * (N - 1))));
  }

  function drawCurves(c) {
    cursors.length = 0;
    const panels = D.panels.filter((p) => c.curves[p.edit]).map((p) => drawPanel(p, c));
    $("curves").replaceChildren(...panels);
    lastFrame = -1;
    render(source.currentTime);
  }

  // ------------------------------------------------------------------------------------------ display
  function render(t) {
    const k = frameOf(t);
    if (k === lastFrame) return;
    lastFrame = k;
    $("timeline").value = k;
    $("frame-label").textContent = `frame ${k + 1} / ${N} \u00b7 ${t.toFixed(3)} s`;
    for (const c of cursors) {
      const x = xOf(k).toFixed(1);
      c.line.setAttribute("x1", x);
      c.line.setAttribute("x2", x);
      c.line.dataset.frame = k;
      c.value.textContent = `edit ${fmt(c.ys[k])}` + (c.src ? ` \u00b7 original ${fmt(c.src[k])}` : "");
    }
  }

  // ------------------------------------------------------------------------------------------ wiring
  function fillSelect(sel, items, label) {
    sel.replaceChildren(...items.map((v) => new Option(label(v), v)));
  }

  function wire() {
    $("play").addEventListener("click", () => (state.playing ? pause() : play()));
    $("prev").addEventListener("click", () => step(-1));
    $("next").addEventListener("click", () => step(1));
    $("timeline").addEventListener("input", (e) => seek(timeOf(Number(e.target.value))));
    $("method").addEventListener("change", (e) => pickMethod(e.target.value));
    $("edit").addEventListener("change", (e) => pickEdit(e.target.value));
    $("strength").addEventListener("input", (e) => { state.strength = Number(e.target.value); showClip(); });
    $("sound").addEventListener("change", (e) => { source.muted = !e.target.checked; });
    source.addEventListener("ended", () => { if (state.playing) pause(); });
    source.addEventListener("seeked", () => render(source.currentTime));
    document.addEventListener("keydown", (e) => {
      if (e.target.closest("input, select, button")) return;
      if (e.key === " ") { e.preventDefault(); state.playing ? pause() : play(); }
      else if (e.key === "ArrowLeft") step(-1);
      else if (e.key === "ArrowRight") step(1);
    });
  }

  function init() {
    $("title").textContent = `${D.video} \u2014 ${N} frames at ${fps.toFixed(3)} fps`;
    $("timeline").max = N - 1;
    $("method").closest("label").hidden = D.methods.length < 2;
    fillSelect($("method"), D.methods, (m) => m);
    fillSelect($("edit"), D.edits, editLabel);
    watchErrors(source);
    watchErrors(edited);
    source.setAttribute("src", D.source);
    wire();
    state.edit = D.edits.find((e) => e !== "_recon") || D.edits[0];
    pickMethod(state.method);
    window.stitchReview = { state, frameOf, timeOf, fps, frames: N };
    requestAnimationFrame(tick);
  }

  init();
})();
