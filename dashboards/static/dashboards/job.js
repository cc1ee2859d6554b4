/* Job page: span panel, copy button, and the live timeline (same geometry as dashboards/svg.py). */
"use strict";
(function () {
  const E = window.edobs;
  const job = E.readJson("job-data");
  let timeline = E.readJson("timeline-data");
  const seen = new Set(Array.from(document.querySelectorAll("#event-body tr")).map((tr) => tr.dataset.eventId));

  const LABEL_W = 170, PLOT_W = 860, RIGHT_PAD = 30, AXIS_H = 34, EXEC_H = 24;
  const ROW_H = 20, ROW_GAP = 5, GROUP_PAD = 8, PALETTE = 8, MAX_TICKS = 10;
  const STEPS = [100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5];
  const STATUS_CSS = { RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "failed" };

  const t = (iso) => (iso ? Date.parse(iso) : null);
  const incomingLabel = (span) => (span.incoming ? span.incoming.detailType : "(not observed)");

  function tickLabel(ms, step) {
    if (step < 1000) return (ms / 1000).toFixed(1) + " s";
    let s = Math.floor(ms / 1000);
    if (s < 120) return s + " s";
    const m = Math.floor(s / 60); s = s % 60;
    if (m < 120) return m + ":" + String(s).padStart(2, "0");
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0");
  }

  function geometry(tl) {
    const ex = tl.execution;
    const starts = tl.spans.map((s) => t(s.start)).concat([t(ex.start)]).filter((v) => v !== null);
    const ends = tl.spans.map((s) => t(s.end)).concat([t(ex.stop)]).filter((v) => v !== null).concat(starts);
    if (!starts.length) return null;
    const t0 = Math.min(...starts);
    let t1 = Math.max(...ends);
    if (t1 <= t0) t1 = t0 + 1000;
    const total = Math.max(1, t1 - t0);
    const x = (ms) => Math.round((LABEL_W + (ms - t0) / total * PLOT_W) * 10) / 10;
    const colours = new Map();
    tl.spans.forEach((s) => { const k = incomingLabel(s); if (!colours.has(k)) colours.set(k, colours.size % PALETTE); });
    const depth = new Map(), names = new Map(), counts = new Map();
    tl.spans.forEach((s) => {
      depth.set(s.fn_lane, Math.max(depth.get(s.fn_lane) || 0, s.sub_lane + 1));
      names.set(s.fn_lane, s.fn);
      counts.set(s.fn_lane, (counts.get(s.fn_lane) || 0) + 1);
    });
    const top = AXIS_H + EXEC_H + 22;
    const groups = [], laneY = new Map();
    let y = top;
    Array.from(depth.keys()).sort((a, b) => a - b).forEach((fnLane, i) => {
      const h = depth.get(fnLane) * (ROW_H + ROW_GAP) - ROW_GAP + 2 * GROUP_PAD;
      groups.push({ fn: names.get(fnLane), y: y, h: h, labelY: y + h / 2, count: counts.get(fnLane), odd: i % 2 === 1 });
      for (let sub = 0; sub < depth.get(fnLane); sub++) laneY.set(fnLane + "/" + sub, y + GROUP_PAD + sub * (ROW_H + ROW_GAP));
      y += h;
    });
    let step = STEPS[STEPS.length - 1];
    for (const s of STEPS) { if (total / s <= MAX_TICKS) { step = s; break; } }
    const ticks = [];
    for (let ms = 0; ms <= total; ms += step) ticks.push({ x: x(t0 + ms), label: tickLabel(ms, step) });
    const bars = tl.spans.map((s) => {
      const bx = x(t(s.start));
      const w = Math.max(3, Math.round((x(t(s.end)) - bx) * 10) / 10);
      return { span: s, x: bx, y: laneY.get(s.fn_lane + "/" + s.sub_lane), w: w, colour: colours.get(incomingLabel(s)) };
    });
    const exStart = t(ex.start) || t0, exStop = t(ex.stop);
    const exX = x(exStart), endX = x(exStop || t1);
    return {
      width: LABEL_W + PLOT_W + RIGHT_PAD, height: Math.max(y, top) + 12, ticks, groups, bars, colours,
      exec: { x: exX, w: Math.max(3, endX - exX), endX: endX, status: ex.status || "", css: STATUS_CSS[ex.status] || "unknown",
              running: !exStop, failed: ["FAILED", "TIMED_OUT", "ABORTED"].includes(ex.status), error: ex.error || "",
              duration: exStop ? E.humanMs(exStop - exStart) : "" },
    };
  }

  /* Same rule as dashboards/svg.py span_duration: no more precision than the clocks had. */
  function spanDuration(s) {
    const ms = s.duration_ms;
    if (!s.approx || ms === null || ms === undefined) return E.humanMs(ms);
    if (ms < 1000) return "< 1 s";
    return ms < 60000 ? "~" + Math.round(ms / 1000) + " s" : "~" + E.humanMs(ms);
  }

  function spanTitle(s) {
    let text = s.fn + ": " + incomingLabel(s) + " → " + ((s.outgoing || {}).detailType || "");
    if (s.step) text += " · step " + s.step;
    text += " · " + spanDuration(s);
    if (s.open) text += " · trigger not observed";
    return text;
  }

  function draw(tl) {
    const old = document.getElementById("timeline-svg");
    const g = geometry(tl);
    if (!g) return;
    const root = E.svg("svg", { id: "timeline-svg", class: "timeline", viewBox: "0 0 " + g.width + " " + g.height, width: "100%",
      role: "img", "aria-label": "Timeline of the job's work", "data-span-count": g.bars.length });
    const defs = E.svg("defs");
    const pattern = E.svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    pattern.appendChild(E.svg("rect", { width: 3, height: 6, fill: "rgba(255,255,255,.55)" }));
    defs.appendChild(pattern);
    root.appendChild(defs);
    const bands = E.svg("g", { class: "bands" });
    g.groups.forEach((grp) => bands.appendChild(E.svg("rect", { class: "band" + (grp.odd ? " odd" : ""), x: 0, y: grp.y, width: g.width, height: grp.h })));
    root.appendChild(bands);
    const ticks = E.svg("g", { class: "ticks" });
    g.ticks.forEach((tk) => {
      ticks.appendChild(E.svg("line", { class: "grid", x1: tk.x, x2: tk.x, y1: 22, y2: g.height }));
      ticks.appendChild(E.svg("text", { class: "tick", x: tk.x, y: 16 }, tk.label));
    });
    root.appendChild(ticks);
    const labels = E.svg("g", { class: "labels" });
    labels.appendChild(E.svg("text", { class: "lane-label exec-label", x: 12, y: AXIS_H + 16 }, "Execution"));
    g.groups.forEach((grp) => {
      const label = E.svg("text", { class: "lane-label", x: 12, y: grp.labelY, dy: "0.35em" }, grp.fn);
      label.appendChild(E.svg("tspan", { class: "lane-count", dx: 6 }, "×" + grp.count));
      labels.appendChild(label);
    });
    root.appendChild(labels);
    const ex = g.exec;
    const exG = E.svg("g", { class: "exec exec-" + ex.css });
    const bar = E.svg("rect", { class: "exec-bar" + (ex.running ? " exec-running" : ""), x: ex.x, y: AXIS_H, width: ex.w, height: EXEC_H, rx: 4 });
    bar.appendChild(E.svg("title", {}, "Execution " + (ex.status || "(no status event)") + (ex.duration ? " · " + ex.duration : "") + (ex.error ? " · " + ex.error : "")));
    exG.appendChild(bar);
    exG.appendChild(E.svg("text", { class: "exec-text", x: ex.x + 8, y: AXIS_H + 16 }, (ex.status || "no status event") + (ex.duration ? " · " + ex.duration : "")));
    if (ex.failed) {
      exG.appendChild(E.svg("line", { class: "fail-line", x1: ex.endX, x2: ex.endX, y1: AXIS_H, y2: g.height }));
      const mark = E.svg("g", { class: "fail-mark" });
      mark.appendChild(E.svg("circle", { cx: ex.endX, cy: AXIS_H + EXEC_H / 2, r: 10 }));
      mark.appendChild(E.svg("text", { x: ex.endX, y: AXIS_H + EXEC_H / 2, dy: "0.35em" }, "✕"));
      exG.appendChild(mark);
      if (ex.error) exG.appendChild(E.svg("text", { class: "fail-text", x: ex.endX - 14, y: AXIS_H + EXEC_H + 16 }, ex.error));
    }
    root.appendChild(exG);
    const spans = E.svg("g", { class: "spans" });
    g.bars.forEach((b, i) => {
      const s = b.span;
      const sg = E.svg("g", { class: "span-g", tabindex: 0, "data-index": i });
      const rect = E.svg("rect", { class: "span c" + b.colour + (s.open ? " open" : ""), x: b.x, y: b.y, width: b.w, height: ROW_H, rx: 3 });
      rect.appendChild(E.svg("title", {}, spanTitle(s)));
      sg.appendChild(rect);
      if (s.open) sg.appendChild(E.svg("rect", { class: "hatch", x: b.x, y: b.y, width: b.w, height: ROW_H, rx: 3, fill: "url(#hatch)", "pointer-events": "none" }));
      if (b.w >= 52) sg.appendChild(E.svg("text", { class: "span-text", x: b.x + 5, y: b.y + 14, "pointer-events": "none" }, spanDuration(s)));
      spans.appendChild(sg);
    });
    root.appendChild(spans);
    old.replaceWith(root);
    drawLegend(g.colours);
  }

  function drawLegend(colours) {
    const legend = document.getElementById("timeline-legend");
    const fixed = Array.from(legend.children).slice(-2);
    const items = Array.from(colours.entries()).map(([label, c]) => {
      const li = E.el("li");
      li.appendChild(E.el("span", { class: "swatch c" + c }));
      li.appendChild(document.createTextNode(label));
      return li;
    });
    legend.replaceChildren(...items, ...fixed);
  }

  function showSpan(index) {
    const s = timeline.spans[index];
    if (!s) return;
    document.querySelectorAll(".span-g.selected").forEach((n) => n.classList.remove("selected"));
    const node = document.querySelector('.span-g[data-index="' + Number(index) + '"]');
    if (node) node.classList.add("selected");
    const values = {
      fn: s.fn, incoming: incomingLabel(s) + (s.incoming ? " (" + s.incoming.source + ")" : ""),
      outgoing: ((s.outgoing || {}).detailType || "") + " (" + ((s.outgoing || {}).source || "") + ")",
      step: s.step || "—", start: E.utc(s.start) + " UTC", end: E.utc(s.end) + " UTC",
      duration: spanDuration(s) + (s.open ? " (trigger not observed: from the job's first event)" : ""),
      paired: s.paired_by || (s.open ? "—" : ""),
    };
    document.querySelectorAll("#span-detail dd").forEach((dd) => { dd.textContent = values[dd.dataset.k] || ""; });
    document.getElementById("span-detail").hidden = false;
    document.getElementById("span-hint").hidden = true;
  }

  document.getElementById("timeline-box").addEventListener("click", (ev) => {
    const node = ev.target.closest ? ev.target.closest(".span-g") : null;
    if (node) showSpan(node.dataset.index);
  });
  document.getElementById("timeline-box").addEventListener("keydown", (ev) => {
    const node = ev.target.closest ? ev.target.closest(".span-g") : null;
    if (node && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); showSpan(node.dataset.index); }
  });

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = E.el("textarea", { readonly: "", style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  const copyButton = document.getElementById("copy-token");
  copyButton.addEventListener("click", () => {
    const note = document.getElementById("copy-note");
    copyText(copyButton.dataset.token).then(
      () => { note.textContent = "Copied"; },
      () => { note.textContent = "Copy failed: select the name above"; });
    setTimeout(() => { note.textContent = ""; }, 2500);
  });

  function eventRow(ev) {
    const tr = E.el("tr", { class: "event-row flash" });
    tr.dataset.eventId = ev.id;
    const time = E.el("td", { class: "mono nowrap" });
    time.appendChild(E.el("time", { datetime: ev.time }, E.utc(ev.time)));
    tr.appendChild(time);
    tr.appendChild(E.el("td", {}, ev.source));
    const type = E.el("td");
    type.appendChild(E.el("span", { class: "type" }, ev.detail_type));
    tr.appendChild(type);
    tr.appendChild(E.el("td", {}, ev.fn || ""));
    const cell = E.el("td");
    const details = E.el("details");
    const summary = E.el("summary", {}, "JSON");
    details.appendChild(summary);
    details.appendChild(E.el("pre", { class: "json" }, JSON.stringify(sortKeys(ev), null, 2)));
    const full = fullUrl(ev);
    if (ev.truncated) {
      // Sent trimmed (over the frame budget): its detail and raw are at `full`.
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(E.el("span", { class: "cut-note" }, "(truncated, " + Math.max(1, Math.round((ev.bytes || 0) / 1024)) + " KB)"));
    }
    const link = E.el("a", { class: "full-json", target: "_blank", rel: "noopener" }, ev.truncated ? "open the full JSON" : "full JSON");
    link.href = full;
    details.appendChild(link);
    cell.appendChild(details);
    tr.appendChild(cell);
    return tr;
  }

  /* The server's link for a trimmed event, else the same built here; never another origin. */
  function fullUrl(ev) {
    if (typeof ev.full === "string" && ev.full.startsWith("/api/events/")) return ev.full;
    return "/api/events/" + encodeURIComponent(ev.id) + "?account=" + encodeURIComponent(ev.account || "");
  }

  function sortKeys(value) {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value && typeof value === "object") {
      const out = {};
      Object.keys(value).sort().forEach((k) => { out[k] = sortKeys(value[k]); });
      return out;
    }
    return value;
  }

  function addEvent(ev) {
    if (!ev || !ev.id || seen.has(ev.id)) return false;
    seen.add(ev.id);
    const body = document.getElementById("event-body");
    const row = eventRow(ev);
    // Keep the table in time order: insert before the first later event.
    const later = Array.from(body.children).find((tr) => {
      const when = tr.querySelector("time");
      return when && Date.parse(when.getAttribute("datetime")) > Date.parse(ev.time);
    });
    body.insertBefore(row, later || null);
    document.getElementById("event-total").textContent = String(seen.size);
    return true;
  }

  async function refetch() {
    try {
      const data = await E.getJson("/api/jobs/" + encodeURI(job.id) + "/timeline");
      timeline = data;
      draw(data);
      const j = data.job || {};
      if (j.status) {
        const badge = document.getElementById("job-status");
        badge.textContent = j.status;
        badge.className = "badge badge-" + (STATUS_CSS[j.status] || "unknown");
      }
      if (j.event_count !== undefined) document.getElementById("job-count").textContent = String(j.event_count);
      if (j.stopped_at) document.getElementById("job-stopped").textContent = E.utc(j.stopped_at) + " UTC";
      const start = j.started_at || j.first_event_at, stop = j.stopped_at || j.last_event_at;
      if (start && stop) document.getElementById("job-duration").textContent = E.humanMs(Date.parse(stop) - Date.parse(start));
    } catch (e) {
      console.warn("edobs: could not refresh the timeline", e);
    }
  }
  const refresh = E.debounce(refetch, 300);

  // A snapshot may come in chunks under the frame budget: "more": true until the last one.
  let snapshotAdded = false;
  E.liveSocket("/ws/jobs/" + encodeURI(job.id) + "/", (msg) => {
    if (msg.type === "snapshot") {
      (msg.events || []).forEach((ev) => { snapshotAdded = addEvent(ev) || snapshotAdded; });
      if (msg.more) return;
      if (snapshotAdded) refresh();
      snapshotAdded = false;
    } else if (msg.type === "event") {
      addEvent(msg.event);
      refresh();
    } else if (msg.type === "lagged") {
      refresh();
    }
  });
})();
