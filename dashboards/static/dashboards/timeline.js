/* The job timeline: its geometry and its drawing, in this one place (the server sends the
   timeline JSON and a text table of the spans, the no-script fallback).

   Rows: one group per fn_lane: a workflow state (its name on top, each Lambda of it a sub-label on
   its first row), or a fn, or "awaiting <detail-type>" for pending work no state claims; one row per
   sub_lane. Bar colours come from the server (`colour`: fixed per state, events.domain.lanes). Time runs left to right in wall-clock UTC over the view [v0, v1] (zoom and pan), the
   minimap always shows the whole job. Pending spans run to the job's end, or to now while it runs.
   Every event string goes into the page as text (textContent, setAttribute), never as markup. */
"use strict";
(function () {
  const E = window.edobs;
  const ROW_H = 20, ROW_GAP = 4, GROUP_PAD = 6, STATE_HEAD = 16, AXIS_H = 30, EXEC_H = 22, EXEC_GAP = 14, RIGHT_PAD = 14;
  const PALETTE = 8, MIN_VIEW_MS = 5, BAR_TEXT_W = 46, MINIMAP_H = 40;
  const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5,
    9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5];
  const FAILURES = ["FAILED", "TIMED_OUT", "ABORTED"];
  const STATUS_CSS = { RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "failed" };

  const ms = (iso) => (iso ? Date.parse(iso) : null);
  const incomingType = (s) => (s.incoming ? s.incoming.detailType : "(not observed)");
  /* The work's name: its fn, or what pending work awaits (its lane may be its state's). */
  const laneName = (s) => s.fn || (s.status === "pending" && s.incoming ? "awaiting " + s.incoming.detailType : s.lane || "");
  const colourOf = (s) => (s.colour === null || s.colour === undefined ? PALETTE - 1 : s.colour);
  /* The id a span is known by in links (#span=): its answer, or its trigger while pending. An
     answer can also be the trigger of pending work, and a trigger can wait on several consumers,
     so a key already taken gets a suffix: answered spans keep the bare id. */
  const spanKey = (s) => s.end_event || s.start_event || "";
  function spanKeys(spans) {
    const taken = new Set(spans.filter((s) => s.end_event).map((s) => s.end_event));
    return spans.map((s) => {
      if (s.end_event) return s.end_event;
      let key = s.start_event || "", n = 1;
      while (taken.has(key)) key = (s.start_event || "") + ":pending" + (n++ > 1 ? n - 1 : "");
      taken.add(key);
      return key;
    });
  }

  /* "2026-11-20 09:01:54.123 UTC" */
  function wall(t) {  /* in the zone the user chose (theme.js: UTC unless local) */
    return t === null || t === undefined ? "—" : window.edobsClock.wall(t, true);
  }

  function tickLabel(t, step) {
    const iso = window.edobsClock.format(t, true);  // "2026-11-20 09:01:54.123", the chosen zone
    if (step < 1000) return iso.slice(11, 23);
    return step < 60000 ? iso.slice(11, 19) : iso.slice(11, 16);
  }

  /* A span whose end reads before its start (two clocks that disagree) has no duration. */
  function skewText(s) {
    return "clock skew " + Math.round(s.skew_ms) + " ms";
  }

  /* Rounded for a bar's label: no more precision than the clocks had (as formatting.span_duration). */
  function shortDuration(s, duration) {
    if (s.skew_ms) return skewText(s);
    if (s.status === "pending") return "waiting " + E.humanMs(duration);
    if (!s.approx || duration === null || duration === undefined) return E.humanMs(duration);
    if (duration < 1000) return "< 1 s";
    return duration < 60000 ? "~" + Math.round(duration / 1000) + " s" : "~" + E.humanMs(duration);
  }

  /* The duration at its real precision, for the tooltip: milliseconds unless both clocks had seconds. */
  function preciseDuration(s, duration) {
    if (s.skew_ms) return skewText(s) + " (its two ends come from clocks that disagree)";
    if (duration === null || duration === undefined) return "—";
    let text;
    if (s.approx) text = "~" + Math.round(duration / 1000) + " s (both ends known to the second)";
    else if (duration < 1000) text = Math.round(duration) + " ms";
    else text = (duration / 1000).toFixed(3) + " s (" + Math.round(duration) + " ms)";
    return s.status === "pending" ? text + " so far, no answer" : text;
  }

  function statusText(s) {
    if (s.status === "pending") return "pending: no answer came";
    if (s.status === "failed") return "failed: running when the execution failed";
    return s.open ? "ok (trigger not observed)" : "ok";
  }

  /* The job's shape in time: start, end (its stop, or now while it runs) and each span's ends. */
  function model(tl, job, now) {
    const ex = tl.execution || {};
    const running = (ex.status || job.status) === "RUNNING" && !ex.stop;
    const times = [];
    tl.spans.forEach((s) => { times.push(ms(s.start)); if (s.end) times.push(ms(s.end)); });
    [ex.start, ex.stop].forEach((v) => { if (v) times.push(ms(v)); });
    const known = times.filter((v) => v !== null && !isNaN(v));
    if (!known.length) return null;
    const t0 = Math.min(...known);
    let end = ex.stop ? ms(ex.stop) : Math.max(...known);
    if (running) end = Math.max(end, now);
    const t1 = Math.max(end, ...known, t0 + 1);
    const keys = spanKeys(tl.spans);
    const bars = tl.spans.map((s, i) => {
      const start = ms(s.start);
      const stop = s.end ? ms(s.end) : Math.max(start, end);
      return { i, s, key: keys[i], start, stop, duration: s.end ? s.duration_ms : stop - start };
    });
    return { t0, t1, end, running, ex, bars, failedAt: FAILURES.includes(ex.status) && ex.stop ? ms(ex.stop) : null };
  }

  /* Groups of rows (one per fn_lane) and each bar's row; bars of a row in time order. */
  function rowsOf(bars) {
    const groups = new Map();
    bars.forEach((b) => {
      const g = groups.get(b.s.fn_lane) || { lane: b.s.fn_lane, name: b.s.state || laneName(b.s), state: b.s.state || null, depth: 0, count: 0, pending: true, subs: new Map() };
      g.depth = Math.max(g.depth, b.s.sub_lane + 1);
      g.count += 1;
      g.pending = g.pending && b.s.status === "pending";
      const sub = laneName(b.s);
      if (!g.subs.has(sub) || g.subs.get(sub) > b.s.sub_lane) g.subs.set(sub, b.s.sub_lane);
      groups.set(b.s.fn_lane, g);
    });
    const ordered = Array.from(groups.values()).sort((a, b) => a.lane - b.lane);
    const rows = [];
    let y = AXIS_H + EXEC_H + EXEC_GAP;
    ordered.forEach((g, gi) => {
      g.y = y; g.odd = gi % 2 === 1;
      const head = g.state ? STATE_HEAD : 0;
      g.h = head + g.depth * (ROW_H + ROW_GAP) - ROW_GAP + 2 * GROUP_PAD;
      for (let sub = 0; sub < g.depth; sub++) rows.push({ lane: g.lane, sub, y: y + head + GROUP_PAD + sub * (ROW_H + ROW_GAP), bars: [] });
      y += g.h;
    });
    const index = new Map(rows.map((r, ri) => [r.lane + "/" + r.sub, ri]));
    bars.forEach((b) => { b.row = index.get(b.s.fn_lane + "/" + b.s.sub_lane); rows[b.row].bars.push(b); });
    rows.forEach((r) => {
      r.bars.sort((a, b) => a.start - b.start || a.i - b.i);
      r.bars.forEach((b, k) => { b.col = k; b.alt = k % 2 === 1; b.y = r.y; });
    });
    return { groups: ordered, rows, bottom: y };
  }

  /* Legend entries: each state (else fn) shown, with its fixed colour. */
  function colourKeys(bars) {
    const keys = new Map();
    bars.forEach((b) => {
      if (b.s.status === "pending") return;
      const k = b.s.state || b.s.fn || "";
      if (!keys.has(k)) keys.set(k, colourOf(b.s));
    });
    return keys;
  }

  function tickStep(span, plotW) {
    for (const step of STEPS) {
      if (span / step <= plotW / (step < 1000 ? 110 : 72)) return step;
    }
    return STEPS[STEPS.length - 1];
  }

  function mount(opts) {
    const box = opts.box, minimap = opts.minimap, tip = opts.tip;
    const st = {
      tl: opts.timeline, job: opts.job, tokens: opts.tokens || {}, view: null, selected: null, focusKey: null,
      critical: false, matches: null, linked: new Set(), m: null, layout: null, geo: null, tipKey: null,
    };

    const labelW = (width) => Math.round(Math.min(220, Math.max(96, width * 0.24)));

    function geometry() {
      const width = Math.max(300, Math.floor(box.clientWidth || 900));
      const lw = labelW(width);
      const plotW = width - lw - RIGHT_PAD;
      const m = st.m;
      const v0 = st.view ? st.view[0] : m.t0, v1 = st.view ? st.view[1] : m.t1;
      const X = (t) => lw + (t - v0) / (v1 - v0) * plotW;
      return { width, lw, plotW, v0, v1, X };
    }

    function refresh(now) {
      st.m = model(st.tl, st.job, now === undefined ? Date.now() : now);
      if (!st.m) { drawEmpty(); return; }
      st.layout = rowsOf(st.m.bars);
      st.colours = colourKeys(st.m.bars);
      if (st.view) {
        // A zoomed view stays where the user put it, inside the job's (growing) range.
        st.view = [Math.max(st.m.t0, st.view[0]), Math.min(st.m.t1, st.view[1])];
        if (st.view[1] - st.view[0] < MIN_VIEW_MS) st.view = null;
      }
      draw();
    }

    function drawEmpty() {
      const root = E.svg("svg", { id: "timeline-svg", class: "timeline", viewBox: "0 0 600 50", width: "100%", "data-span-count": 0 });
      root.appendChild(E.svg("text", { class: "tick", x: 20, y: 30 }, "No events with times yet."));
      box.replaceChildren(root);
    }

    function barClass(b) {
      const s = b.s;
      let cls = "span";
      if (s.status === "pending") cls += " pending";
      else cls += " c" + colourOf(s) + (b.alt ? " alt" : "");
      if (s.status === "failed") cls += " failed";
      if (s.open) cls += " open";
      return cls;
    }

    function groupClass(b) {
      let cls = "span-g";
      if (b.key === st.selected) cls += " selected";
      if (st.linked.has(b.i)) cls += " linked";
      const onPath = st.critical && st.tl.critical_path.includes(b.i);
      if (onPath) cls += " critical";
      const matched = st.matches && st.matches.has(b.i);
      if (matched) cls += " match";
      if ((st.critical && !onPath) || (st.matches && !matched)) cls += " dimmed";
      return cls;
    }

    function barLabel(b) {
      const s = b.s;
      return laneName(s) + (s.state ? " in state " + s.state : "") + ", " + s.status + ", starts " + wall(b.start) + ", " + preciseDuration(s, b.duration) +
        ", triggered by " + incomingType(s) + (s.outgoing ? ", answered " + s.outgoing.detailType : "");
    }

    function drawBar(b, g, clipId) {
      const s = b.s;
      const x = g.X(b.start), x2 = g.X(b.stop);
      let w = Math.max(3, x2 - x);
      // A gap of 1.5 px between bars that touch, so two spans never read as one.
      const gap = w > 6 ? 1.5 : 0;
      const node = E.svg("g", {
        class: groupClass(b), role: "option", id: "span-opt-" + b.i, "data-index": b.i, "data-key": b.key,
        "data-status": s.status, tabindex: b.key === st.focusKey ? 0 : -1,
        "aria-selected": b.key === st.selected ? "true" : "false", "aria-label": barLabel(b), "clip-path": "url(#" + clipId + ")",
      });
      w = Math.max(2, w - gap);
      node.appendChild(E.svg("rect", { class: barClass(b), x: r1(x), y: b.y, width: r1(w), height: ROW_H, rx: 3 }));
      if (s.status === "pending") {
        node.appendChild(E.svg("rect", { class: "hatch", x: r1(x), y: b.y, width: r1(w), height: ROW_H, rx: 3, fill: "url(#tl-hatch)", "pointer-events": "none" }));
      }
      const text = shortDuration(s, b.duration);
      const textW = text.length * 6.2 + 10;
      const visibleX = Math.max(x, g.lw), visibleW = Math.min(x + w, g.lw + g.plotW) - visibleX;
      if (visibleW >= Math.max(BAR_TEXT_W, textW)) {
        const tone = s.status === "pending" ? " t-pending" : " t-c" + colourOf(s) + (b.alt ? " alt" : "");
        node.appendChild(E.svg("text", { class: "span-text" + tone, x: r1(visibleX + 5), y: b.y + 14, "pointer-events": "none" }, text));
      }
      if (s.status === "failed" && st.m.failedAt !== null) {
        const fx = Math.min(Math.max(g.X(st.m.failedAt), x + 7), x + w - 1);
        const mark = E.svg("g", { class: "span-fail", "pointer-events": "none" });
        mark.appendChild(E.svg("circle", { cx: r1(fx), cy: b.y + ROW_H / 2, r: 7 }));
        mark.appendChild(E.svg("text", { x: r1(fx), y: b.y + ROW_H / 2, dy: "0.35em" }, "✕"));
        node.appendChild(mark);
      }
      return node;
    }

    function draw() {
      const g = st.geo = geometry();
      const m = st.m, lay = st.layout;
      const height = Math.max(lay.bottom, AXIS_H + EXEC_H + EXEC_GAP) + 10;
      const hadFocus = box.contains(document.activeElement), tipWas = st.tipKey;
      if (!m.bars.some((b) => b.key === st.focusKey)) st.focusKey = st.selected && m.bars.some((b) => b.key === st.selected) ? st.selected : (m.bars[0] || {}).key || null;
      const root = E.svg("svg", {
        id: "timeline-svg", class: "timeline", width: g.width, height: height, viewBox: "0 0 " + g.width + " " + height,
        role: "listbox", "aria-label": "Spans of the job: arrow keys move between them, Enter selects",
        "aria-describedby": "timeline-help", "data-span-count": m.bars.length,
        "data-view0": Math.round(g.v0), "data-view1": Math.round(g.v1), "data-running": m.running ? "1" : "0",
      });
      const clipId = "tl-clip";
      const defs = E.svg("defs");
      const clip = E.svg("clipPath", { id: clipId });
      clip.appendChild(E.svg("rect", { x: g.lw, y: 0, width: g.plotW, height: height }));
      defs.appendChild(clip);
      const pattern = E.svg("pattern", { id: "tl-hatch", width: 7, height: 7, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
      pattern.appendChild(E.svg("rect", { class: "hatch-stripe", width: 3, height: 7 }));
      defs.appendChild(pattern);
      root.appendChild(defs);

      const deco = E.svg("g", { "aria-hidden": "true" });
      lay.groups.forEach((grp) => deco.appendChild(E.svg("rect", { class: "band" + (grp.odd ? " odd" : "") + (grp.pending ? " pending-band" : ""), x: 0, y: grp.y, width: g.width, height: grp.h })));
      const step = tickStep(g.v1 - g.v0, g.plotW);
      for (let t = Math.ceil(g.v0 / step) * step; t <= g.v1; t += step) {
        const x = r1(g.X(t));
        deco.appendChild(E.svg("line", { class: "grid", x1: x, x2: x, y1: AXIS_H - 8, y2: height }));
        if (x > g.lw + 24 && x < g.width - 30) deco.appendChild(E.svg("text", { class: "tick", x: x, y: 16 }, tickLabel(t, step)));
      }
      deco.appendChild(E.svg("text", { class: "tick tick-zone", x: 10, y: 16 }, "Time (" + window.edobsClock.label() + ")"));
      deco.appendChild(E.svg("text", { class: "lane-label exec-label", x: 10, y: AXIS_H + 15 }, "Execution"));
      lay.groups.forEach((grp) => {
        if (grp.state) { deco.appendChild(stateLabels(grp, g)); return; }
        const label = E.svg("text", { class: "lane-label" + (grp.pending ? " pending-label" : ""), x: 10, y: grp.y + grp.h / 2, dy: "0.35em" }, fit(grp.pending ? shortPending(grp.name, g.lw - 44) : grp.name, g.lw - 44));
        label.appendChild(E.svg("tspan", { class: "lane-count", dx: 5 }, "×" + grp.count));
        deco.appendChild(label);
      });
      deco.appendChild(drawExecution(g, height, clipId));
      root.appendChild(deco);

      const spans = E.svg("g", { class: "spans" });
      lay.rows.forEach((row) => row.bars.forEach((b) => spans.appendChild(drawBar(b, g, clipId))));
      root.appendChild(spans);
      if (m.running) root.appendChild(drawNow(g, height));
      box.replaceChildren(root);
      if (hadFocus) focusBar(st.focusKey);
      drawMinimap();
      if (tipWas) showTip(tipWas);
      if (opts.onDraw) opts.onDraw(g);
    }

    /* A state lane: the state's name on top with its colour, and each Lambda (or awaited
       detail-type) of it as a sub-label on the first of its rows. */
    function stateLabels(grp, g) {
      const out = E.svg("g", { class: "state-lane", "data-state": grp.state });
      const c = colourOf(st.m.bars.find((b) => b.s.fn_lane === grp.lane).s);
      out.appendChild(E.svg("rect", { class: "state-swatch swatch-c" + c, x: 10, y: grp.y + GROUP_PAD, width: 9, height: 9, rx: 2 }));
      const label = E.svg("text", { class: "lane-label state-label", x: 24, y: grp.y + GROUP_PAD + 8.5 }, fit(grp.state, g.lw - 60));
      label.appendChild(E.svg("tspan", { class: "lane-count", dx: 5 }, "×" + grp.count));
      out.appendChild(label);
      const rows = st.layout.rows.filter((r) => r.lane === grp.lane);
      grp.subs.forEach((sub, name) => {
        const row = rows[sub];
        if (!row) return;
        const pending = name.startsWith("awaiting ");
        out.appendChild(E.svg("text", { class: "lane-label lane-sublabel" + (pending ? " pending-label" : ""), x: 24, y: row.y + ROW_H / 2, dy: "0.35em" },
          fit(pending ? shortPending(name, g.lw - 34) : name, g.lw - 34)));
      });
      return out;
    }

    function drawExecution(g, height, clipId) {
      const m = st.m, ex = m.ex;
      const start = ms(ex.start) || m.t0, stop = ms(ex.stop);
      const css = STATUS_CSS[ex.status] || "unknown";
      const grp = E.svg("g", { class: "exec exec-" + css });
      const x = g.X(start), x2 = g.X(stop || m.end);
      const bar = E.svg("g", { "clip-path": "url(#" + clipId + ")" });
      bar.appendChild(E.svg("rect", { class: "exec-bar", x: r1(x), y: AXIS_H, width: r1(Math.max(3, x2 - x)), height: EXEC_H, rx: 4 }));
      const label = (ex.status || "no status event") + " · " + E.humanMs((stop || m.end) - start);
      const tx = Math.max(x, g.lw) + 8;
      if (Math.min(x2, g.lw + g.plotW) - tx > label.length * 6.5) bar.appendChild(E.svg("text", { class: "exec-text", x: r1(tx), y: AXIS_H + 15 }, label));
      grp.appendChild(bar);
      if (FAILURES.includes(ex.status) && stop && stop >= g.v0 && stop <= g.v1) {
        const fx = r1(g.X(stop));
        grp.appendChild(E.svg("line", { class: "fail-line", x1: fx, x2: fx, y1: AXIS_H, y2: height }));
        const mark = E.svg("g", { class: "fail-mark" });
        mark.appendChild(E.svg("circle", { cx: fx, cy: AXIS_H + EXEC_H / 2, r: 10 }));
        mark.appendChild(E.svg("text", { x: fx, y: AXIS_H + EXEC_H / 2, dy: "0.35em" }, "✕"));
        grp.appendChild(mark);
      }
      return grp;
    }

    function drawNow(g, height) {
      const grp = E.svg("g", { class: "now", "aria-hidden": "true" });
      const x = r1(Math.min(g.X(st.m.end), g.lw + g.plotW));
      grp.appendChild(E.svg("line", { class: "now-line", x1: x, x2: x, y1: AXIS_H - 6, y2: height }));
      grp.appendChild(E.svg("rect", { class: "now-chip", x: x - 16, y: 19, width: 32, height: 14, rx: 7 }));
      grp.appendChild(E.svg("text", { class: "now-text", x: x, y: 29.5 }, "now"));
      return grp;
    }

    /* The whole job, small, with the visible range as a window; drag on it to choose a range. */
    function drawMinimap() {
      if (!minimap) return;
      const width = Math.max(300, Math.floor(box.clientWidth || 900));
      const g = st.geo, m = st.m, lay = st.layout;
      const lw = g.lw, plotW = g.plotW;
      const X = (t) => lw + (t - m.t0) / (m.t1 - m.t0) * plotW;
      const rows = Math.max(1, lay.rows.length);
      const rowH = Math.max(1, Math.min(4, (MINIMAP_H - 6) / rows));
      const svg = minimap;
      svg.setAttribute("width", width);
      svg.setAttribute("height", MINIMAP_H);
      svg.setAttribute("viewBox", "0 0 " + width + " " + MINIMAP_H);
      const parts = [E.svg("rect", { class: "mm-bg", x: lw, y: 0, width: plotW, height: MINIMAP_H })];
      parts.push(E.svg("text", { class: "mm-label", x: 10, y: MINIMAP_H / 2, dy: "0.35em" }, "Whole job"));
      m.bars.forEach((b) => {
        parts.push(E.svg("rect", {
          class: "mm-bar" + (b.s.status === "pending" ? " pending" : b.s.status === "failed" ? " failed" : ""),
          x: r1(X(b.start)), y: r1(3 + b.row * rowH), width: r1(Math.max(1, X(b.stop) - X(b.start))), height: Math.max(1, rowH - 0.5),
        }));
      });
      const wx = X(g.v0), ww = Math.max(2, X(g.v1) - wx);
      parts.push(E.svg("rect", { class: "mm-shade", x: lw, y: 0, width: r1(Math.max(0, wx - lw)), height: MINIMAP_H }));
      parts.push(E.svg("rect", { class: "mm-shade", x: r1(wx + ww), y: 0, width: r1(Math.max(0, lw + plotW - wx - ww)), height: MINIMAP_H }));
      parts.push(E.svg("rect", { class: "mm-window", x: r1(wx), y: 0.5, width: r1(ww), height: MINIMAP_H - 1 }));
      if (st.drag) {
        const a = Math.min(st.drag.x0, st.drag.x1), z = Math.max(st.drag.x0, st.drag.x1);
        parts.push(E.svg("rect", { class: "mm-select", x: a, y: 0, width: Math.max(1, z - a), height: MINIMAP_H }));
      }
      svg.replaceChildren(...parts);
      svg.dataset.t0 = String(m.t0);
      svg.dataset.t1 = String(m.t1);
    }

    function setView(a, b) {
      const m = st.m;
      if (!m) return;
      let lo = Math.min(a, b), hi = Math.max(a, b);
      const full = m.t1 - m.t0;
      if (hi - lo >= full) { st.view = null; draw(); return; }
      if (hi - lo < MIN_VIEW_MS) { const c = (lo + hi) / 2; lo = c - MIN_VIEW_MS / 2; hi = c + MIN_VIEW_MS / 2; }
      if (lo < m.t0) { hi += m.t0 - lo; lo = m.t0; }
      if (hi > m.t1) { lo -= hi - m.t1; hi = m.t1; }
      st.view = [Math.max(m.t0, lo), Math.min(m.t1, hi)];
      draw();
    }

    function zoom(factor, centre) {
      const g = st.geo;
      if (!g) return;
      const c = centre === undefined ? (g.v0 + g.v1) / 2 : centre;
      setView(c - (c - g.v0) * factor, c + (g.v1 - c) * factor);
    }

    function pan(deltaMs) {
      const g = st.geo;
      if (g && st.view) setView(g.v0 + deltaMs, g.v1 + deltaMs);
    }

    const timeAt = (clientX) => {
      const g = st.geo, r = box.getBoundingClientRect();
      return g.v0 + (clientX - r.left - g.lw) / g.plotW * (g.v1 - g.v0);
    };

    /* --- selection, focus, tooltip ------------------------------------------------------ */
    const barNode = (key) => (key ? box.querySelector('.span-g[data-key="' + cssEscape(key) + '"]') : null);
    const barOf = (key) => (st.m ? st.m.bars.find((b) => b.key === key) : null);

    function select(key, how) {
      const b = barOf(key) || (st.m ? st.m.bars.find((x) => x.s.start_event === key) : null);
      if (!b) return false;
      st.selected = b.key;
      st.focusKey = b.key;
      reveal(b);
      draw();
      if (how && how.focus) focusBar(b.key);
      if (how && how.scroll) { const node = barNode(b.key); if (node) node.scrollIntoView({ block: "center" }); }
      if (how && how.tip) showTip(b.key);
      if (opts.onSelect) opts.onSelect(b);
      return true;
    }

    /* Pans a zoomed view so that a bar one moves to or selects is in sight. */
    function reveal(b) {
      if (!st.view) return;
      const [v0, v1] = st.view, w = v1 - v0;
      if (b.stop < v0 || b.start > v1) setViewQuiet(b.start - w * 0.1, b.start + w * 0.9);
    }
    function setViewQuiet(a, b) {
      const m = st.m;
      const w = b - a;
      a = Math.max(m.t0, Math.min(a, m.t1 - w));
      st.view = [a, a + w];
    }

    function focusBar(key) {
      const node = barNode(key);
      if (!node) return;
      box.querySelectorAll('.span-g[tabindex="0"]').forEach((n) => n.setAttribute("tabindex", "-1"));
      node.setAttribute("tabindex", "0");
      node.focus({ preventScroll: true });
    }

    function moveFocus(b) {
      if (!b) return;
      st.focusKey = b.key;
      const before = st.view ? st.view.slice() : null;
      reveal(b);
      if (String(before) !== String(st.view)) draw();
      focusBar(b.key);
      showTip(b.key);
    }

    function neighbour(b, key) {
      const rows = st.layout.rows;
      const row = rows[b.row];
      if (key === "ArrowLeft") return row.bars[b.col - 1];
      if (key === "ArrowRight") return row.bars[b.col + 1];
      if (key === "Home") return rows.find((r) => r.bars.length).bars[0];
      if (key === "End") { const last = rows.filter((r) => r.bars.length).pop(); return last.bars[last.bars.length - 1]; }
      const dir = key === "ArrowUp" ? -1 : 1;
      const mid = (b.start + b.stop) / 2;
      for (let r = b.row + dir; r >= 0 && r < rows.length; r += dir) {
        if (!rows[r].bars.length) continue;
        return rows[r].bars.reduce((best, c) => (Math.abs((c.start + c.stop) / 2 - mid) < Math.abs((best.start + best.stop) / 2 - mid) ? c : best));
      }
      return null;
    }

    function tipFields(b) {
      const s = b.s;
      const token = st.tokens[s.start_event] || st.tokens[s.end_event] || "";
      const answer = s.outgoing ? s.outgoing.detailType + " (" + s.outgoing.source + ")" : (st.m.running ? "none yet" : "none: the job ended without one");
      const rows = [
        ["Status", statusText(s)],
        ["Start", wall(b.start)],
        ["Duration", preciseDuration(s, b.duration)],
        ["Trigger", s.incoming ? s.incoming.detailType + " (" + s.incoming.source + ")" : "not observed"],
        ["Answer", answer],
      ];
      if (s.state) rows.push(["State", s.state]);
      else if (s.step) rows.push(["Step", s.step]);
      if (token) rows.push(["Task token", token]);
      return rows;
    }

    function fill(target, b) {
      const head = E.el("p", { class: "tip-head" });
      head.appendChild(E.el("strong", {}, laneName(b.s)));
      if (b.s.status !== "ok") head.appendChild(E.el("span", { class: "tip-status tip-" + b.s.status }, b.s.status === "failed" ? "✕ failed" : "◌ pending"));
      const dl = E.el("dl");
      tipFields(b).forEach(([k, v]) => {
        dl.appendChild(E.el("dt", {}, k));
        dl.appendChild(E.el("dd", { class: k === "Task token" ? "mono token" : "" }, v));
      });
      target.replaceChildren(head, dl);
    }

    function showTip(key) {
      const b = barOf(key), node = barNode(key);
      if (!b || !node || !tip) { hideTip(); return; }
      st.tipKey = key;
      fill(tip, b);
      tip.hidden = false;
      node.setAttribute("aria-describedby", tip.id);
      const area = tip.offsetParent || box;
      const r = node.getBoundingClientRect(), a = area.getBoundingClientRect();
      const left = Math.max(4, Math.min(r.left - a.left, a.width - tip.offsetWidth - 4));
      let top = r.bottom - a.top + 6;
      if (r.bottom + tip.offsetHeight + 12 > window.innerHeight && r.top - a.top - tip.offsetHeight - 6 > 0) top = r.top - a.top - tip.offsetHeight - 6;
      tip.style.left = Math.round(left) + "px";
      tip.style.top = Math.round(top) + "px";
    }

    function hideTip() {
      st.tipKey = null;
      if (tip) tip.hidden = true;
    }

    /* --- input ---------------------------------------------------------------------------- */
    box.addEventListener("click", (ev) => {
      if (st.dragged) { st.dragged = false; return; }
      const node = ev.target.closest ? ev.target.closest(".span-g") : null;
      if (node) select(node.dataset.key, { focus: true, tip: true });
    });
    box.addEventListener("pointerover", (ev) => {
      const node = ev.target.closest ? ev.target.closest(".span-g") : null;
      if (node && !st.pan) showTip(node.dataset.key);
    });
    box.addEventListener("pointerleave", () => {
      const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".span-g") : null;
      if (focused && box.contains(focused)) showTip(focused.dataset.key); else hideTip();
    });
    box.addEventListener("focusin", (ev) => {
      const node = ev.target.closest ? ev.target.closest(".span-g") : null;
      if (node) { st.focusKey = node.dataset.key; showTip(node.dataset.key); }
    });
    box.addEventListener("focusout", (ev) => { if (!box.contains(ev.relatedTarget)) hideTip(); });
    box.addEventListener("keydown", (ev) => {
      const node = ev.target.closest ? ev.target.closest(".span-g") : null;
      const b = node ? barOf(node.dataset.key) : null;
      if (!b) return;
      if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"].includes(ev.key)) {
        ev.preventDefault();
        moveFocus(neighbour(b, ev.key));
      } else if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        select(b.key, { focus: true, tip: true });
      } else if (ev.key === "Escape") {
        hideTip();
      } else if (ev.key === "+" || ev.key === "=") {
        zoom(0.5, (b.start + b.stop) / 2); focusBar(b.key);
      } else if (ev.key === "-") {
        zoom(2, (b.start + b.stop) / 2); focusBar(b.key);
      }
    });
    box.addEventListener("wheel", (ev) => {
      if (!st.geo) return;
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        zoom(ev.deltaY > 0 ? 1.25 : 0.8, timeAt(ev.clientX));
      } else if (st.view && (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY))) {
        ev.preventDefault();
        const d = ev.shiftKey ? ev.deltaY : ev.deltaX;
        pan(d / st.geo.plotW * (st.geo.v1 - st.geo.v0));
      }
    }, { passive: false });
    box.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || !st.view) return;
      st.pan = { x: ev.clientX, view: st.view.slice(), moved: false };
    });
    window.addEventListener("pointermove", (ev) => {
      if (!st.pan) return;
      const dx = ev.clientX - st.pan.x;
      if (Math.abs(dx) > 4) st.pan.moved = true;
      if (st.pan.moved) {
        const w = st.pan.view[1] - st.pan.view[0];
        hideTip();
        setView(st.pan.view[0] - dx / st.geo.plotW * w, st.pan.view[1] - dx / st.geo.plotW * w);
      }
    });
    window.addEventListener("pointerup", () => {
      if (st.pan && st.pan.moved) st.dragged = true;
      st.pan = null;
    });

    if (minimap) {
      const mmTime = (x) => st.m.t0 + (x - st.geo.lw) / st.geo.plotW * (st.m.t1 - st.m.t0);
      const mmX = (ev) => {
        const r = minimap.getBoundingClientRect();
        return Math.max(st.geo.lw, Math.min(st.geo.lw + st.geo.plotW, ev.clientX - r.left));
      };
      minimap.addEventListener("pointerdown", (ev) => {
        if (ev.button !== 0 || !st.m) return;
        minimap.setPointerCapture(ev.pointerId);
        st.drag = { x0: mmX(ev), x1: mmX(ev) };
      });
      minimap.addEventListener("pointermove", (ev) => {
        if (!st.drag) return;
        st.drag.x1 = mmX(ev);
        drawMinimap();
      });
      minimap.addEventListener("pointerup", () => {
        const d = st.drag;
        st.drag = null;
        if (!d) return;
        if (Math.abs(d.x1 - d.x0) < 4) {
          // A click: centre the view there, as wide as it was.
          const g = st.geo, w = g.v1 - g.v0, c = mmTime(d.x0);
          if (st.view) setView(c - w / 2, c + w / 2); else drawMinimap();
        } else {
          setView(mmTime(d.x0), mmTime(d.x1));
        }
      });
    }

    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (st.m) draw(); }, 100);
    });

    refresh();
    return {
      setData(tl, job) { st.tl = tl; if (job) st.job = job; refresh(); },
      addToken(id, token) { if (token) st.tokens[id] = token; },
      tick() { if (st.m && st.m.running) refresh(); return st.m ? st.m.running : false; },
      select,
      selected: () => (st.selected ? barOf(st.selected) : null),
      setCritical(on) { st.critical = on; if (st.m) draw(); return criticalTotal(); },
      setMatches(set) { st.matches = set; if (st.m) draw(); },
      setLinked(set) { st.linked = set; if (st.m) draw(); },
      zoom, reset() { st.view = null; if (st.m) draw(); },
      bars: () => (st.m ? st.m.bars : []),
      fields: (b) => tipFields(b),
      running: () => (st.m ? st.m.running : false),
      colours: () => st.colours || new Map(),
      wall, preciseDuration, shortDuration, statusText, laneName, incomingType, spanKey, spanKeys,
    };

    /* The critical path's spans and its length: its first span's start to its last one's end. */
    function criticalTotal() {
      const path = (st.tl.critical_path || []).map((i) => st.m.bars[i]).filter(Boolean);
      if (!path.length) return { count: 0, ms: 0 };
      return { count: path.length, ms: Math.max(...path.map((b) => b.stop)) - Math.min(...path.map((b) => b.start)) };
    }
  }

  function r1(v) { return Math.round(v * 10) / 10; }

  function fit(text, width) {
    const max = Math.max(4, Math.floor(width / 6.6));
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  /* "awaiting getUserProfile" too long for the label column: the detail-type is what tells. */
  function shortPending(name, width) {
    return name.length > Math.floor(width / 6.6) ? name.replace(/^awaiting /, "◌ ") : name;
  }

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
  }

  E.timeline = { mount, wall, shortDuration, preciseDuration, statusText, laneName, incomingType, spanKey, spanKeys };
})();
