/* The architecture page: measures every label, has ELK (vendor/elk.bundled.js, layered) place
   the nodes and route the edges with each edge's label on the edge itself, then draws the SVG
   with textContent only (event names are hostile). Zoom and pan move the viewBox; a refresh
   redraws in place and keeps them. Event types with no edge at all ("orphans") are drawn apart,
   below the graph, with what to do about them. With a diff (compare=...), added nodes and edges
   are green and marked "+ new", removed ones dashed and marked "− gone", p95 moves labelled. */
"use strict";
(function () {
  const { svg, readJson, humanMs } = window.edobs;
  const viewport = document.getElementById("arch-viewport");
  if (!viewport || typeof ELK === "undefined") return;

  const PAD_X = 14, PAD_Y = 8, LINE = 19, HEX_INSET = 14, LABEL_PAD = 8, LABEL_H = 22;
  const MARGIN = 24, ORPHAN_GAP = 56, MIN_K = 0.15, MAX_K = 4, MIN_VIEW_H = 320;
  const elk = new ELK();
  const view = { x: 0, y: 0, k: 1, touched: false };
  let bounds = { x: 0, y: 0, w: 1, h: 1 };
  let root = null, drawing = 0, direction_ = null;

  /* --- what to draw ------------------------------------------------------------------------ */

  function byEdge(edges) {
    const map = new Map();
    (edges || []).forEach((e) => map.set(e.source + "\u0000" + e.target, e));
    return map;
  }

  /* The window's graph, plus what only the base had (removed), each marked with its change. */
  function merged(data) {
    const diff = data.diff || {};
    const added = new Set((diff.nodes_added || []).map((n) => n.id));
    const addedEdges = byEdge(diff.edges_added), moved = byEdge(diff.edges_moved);
    const sampled = !!data.graph.failures_sampled;  // more failed jobs than were read: at least
    const nodes = data.graph.nodes.map((n) => ({ ...n, change: added.has(n.id) ? "added" : "", sampled }));
    (diff.nodes_removed || []).forEach((n) => nodes.push({ ...n, change: "removed" }));
    const edges = data.graph.edges.map((e) => {
      const key = e.source + "\u0000" + e.target;
      return { ...e, change: addedEdges.has(key) ? "added" : "", moved: moved.get(key) || null };
    });
    (diff.edges_removed || []).forEach((e) => edges.push({ ...e, change: "removed", moved: null }));
    return { nodes, edges };
  }

  function eventKey(node) {
    if (typeof node.source === "string" && typeof node.detail_type === "string") {
      return [node.source, node.detail_type];
    }
    const rest = node.id.slice("event:".length), cut = rest.indexOf("/");
    return [rest.slice(0, cut), rest.slice(cut + 1)];
  }

  function nodeHref(node) {
    const name = node.id.slice(node.id.indexOf(":") + 1);
    if (node.kind === "state_machine") return "/?state_machine=" + encodeURIComponent(name);
    if (node.kind === "fn") return "/events/?fn=" + encodeURIComponent(name);
    const [source, detailType] = eventKey(node);
    return "/events/?source=" + encodeURIComponent(source) + "&detail_type=" + encodeURIComponent(detailType);
  }

  function schemaHref(node) {
    const [source, detailType] = eventKey(node);
    return "/schemas/" + encodeURIComponent(source) + "/" + encodeURIComponent(detailType) + "/";
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function nodeLines(node, orphan) {
    const mark = node.change === "added" ? "+ new · " : node.change === "removed" ? "− gone · " : "";
    if (orphan) {
      return [node.label, mark + "seen " + plural(node.count, "time") + "; no function consumed it and no producer was inferred",
        "— add the kit's meta to the producer"];
    }
    let count = node.kind === "state_machine" ? plural(node.count, "job")
      : node.kind === "fn" ? plural(node.count, "run") : node.count + " seen";
    if (node.sink) count += " · sink";
    if (node.unknown) count += " · producer?";
    if (node.change === "removed") count += " before";
    const lines = [node.label, mark + count];
    if (node.kind === "fn" && typeof node.failure_rate === "number") lines.push(failureText(node));
    return lines;
  }

  /* A function's failed runs in the window (runs that were going when their job failed); "≥"
     when the window had more failed jobs than the server read for it. */
  function failureText(node) {
    const pct = node.failure_rate * 100;
    const shown = pct === 0 || pct >= 10 ? String(Math.round(pct)) : pct.toFixed(1);
    return (node.sampled ? "≥ " : "") + shown + "% failed" + (node.failed ? " (" + node.failed + " of " + node.count + ")" : "");
  }

  function edgeText(edge) {
    const mark = edge.change === "added" ? "+ new · " : edge.change === "removed" ? "− gone · " : "";
    let text = mark + "×" + edge.count;
    if (edge.moved) text += " · p95 " + humanMs(edge.moved.base_p95_ms) + " → " + humanMs(edge.moved.p95_ms);
    else if (edge.p95_ms !== null && edge.p95_ms !== undefined) text += " · p95 " + humanMs(edge.p95_ms);
    return text;
  }

  /* --- measuring ------------------------------------------------------------------------- */

  function measurer(host) {
    const probe = svg("svg", { class: "arch arch-probe", width: 10, height: 10, "aria-hidden": "true" });
    host.appendChild(probe);
    return {
      width(text, cls) {
        const t = svg("text", { class: cls }, text);
        probe.appendChild(t);
        const w = t.getBBox().width;
        probe.removeChild(t);
        return w;
      },
      done() { probe.remove(); },
    };
  }

  function sizeNode(node, lines, measure) {
    const classes = ["node-label", "node-count", "node-note"];
    const widths = lines.map((line, i) => measure.width(line, i === 2 && node.kind === "fn" ? "node-failure failing" : classes[Math.min(i, 2)]));
    let extra = node.kind === "state_machine" ? 2 * HEX_INSET : 0;
    const driftText = node.drift > 0 ? "⚠ drift: " + plural(node.drift, "field") : "";
    if (driftText) widths.push(measure.width(driftText, "drift-text") + 12);
    node.drift_text = driftText;
    node.lines = lines;
    node.w = Math.ceil(Math.max(...widths) + 2 * PAD_X + extra);
    node.h = 2 * PAD_Y + LINE * (lines.length + (driftText ? 1 : 0));
  }

  /* --- layout ---------------------------------------------------------------------------- */

  function elkGraph(nodes, edges, direction) {
    return {
      id: "root",
      layoutOptions: {
        "elk.algorithm": "layered",
        "elk.direction": direction,
        "elk.edgeRouting": "ORTHOGONAL",
        "elk.layered.spacing.nodeNodeBetweenLayers": "28",
        "elk.spacing.nodeNode": "28",
        "elk.spacing.edgeLabel": "4",
        "elk.spacing.edgeNode": "18",
        "elk.spacing.edgeEdge": "14",
        "elk.layered.spacing.edgeNodeBetweenLayers": "12",
        "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
        "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      },
      children: nodes.map((n) => ({ id: n.id, width: n.w, height: n.h })),
      edges: edges.map((e, i) => ({
        id: "e" + i, sources: [e.source], targets: [e.target],
        labels: [{ id: "l" + i, text: e.text, width: e.lw, height: LABEL_H,
                   layoutOptions: { "elk.edgeLabels.inline": "true" } }],
      })),
    };
  }

  /* Left to right or top to bottom, whichever shows more of the graph at 1:1 in this window; a
     refresh keeps the first choice, so that the picture does not turn under the user's zoom. */
  async function bestLayout(placed, edges) {
    const w = viewport.clientWidth || 1, h = Math.max(window.innerHeight * 0.75, MIN_VIEW_H);
    let best = null;
    for (const direction of direction_ ? [direction_] : ["RIGHT", "DOWN"]) {
      const laid = await elk.layout(elkGraph(placed, edges, direction));
      const shown = Math.min(1, w / laid.width) * Math.min(1, h / laid.height);
      if (!best || shown > best.shown + 0.05) best = { laid, shown, direction };
    }
    direction_ = best.direction;
    viewport.dataset.direction = direction_;
    return best.laid;
  }

  function placeOrphans(orphans, top) {
    let y = top + 30;
    orphans.forEach((n) => { n.x = 0; n.y = y; y += n.h + 12; });
    return y;
  }

  /* --- drawing --------------------------------------------------------------------------- */

  function hexagon(n) {
    const { x, y, w, h } = n, i = HEX_INSET;
    return [[x + i, y], [x + w - i, y], [x + w, y + h / 2], [x + w - i, y + h], [x + i, y + h], [x, y + h / 2]]
      .map((p) => p.join(",")).join(" ");
  }

  function drawNode(node, orphan) {
    const kind = { state_machine: "sm", fn: "fn", event: "event" }[node.kind] || "event";
    const flags = [node.sink ? "sink" : "", node.unknown ? "unknown" : "", node.change].filter(Boolean).join(" ");
    const g = svg("g", { class: "node node-" + kind + (orphan ? " orphan" : "") + (flags ? " " + flags : ""), "data-id": node.id });
    const link = svg("a", { href: nodeHref(node), class: "node-link" });
    const shapeClass = "node-shape " + kind + (flags ? " " + flags : "");
    link.appendChild(kind === "sm"
      ? svg("polygon", { class: shapeClass, points: hexagon(node) })
      : svg("rect", { class: shapeClass, x: node.x, y: node.y, width: node.w, height: node.h, rx: kind === "event" ? 16 : 4 }));
    const classes = ["node-label", "node-count", "node-note"];
    const cx = node.x + node.w / 2;
    node.lines.forEach((line, i) => {
      const failure = i === 2 && node.kind === "fn" && typeof node.failure_rate === "number";
      const cls = failure ? "node-failure" + (node.failed ? " failing" : "") : classes[Math.min(i, 2)];
      link.appendChild(svg("text", { class: cls, x: orphan ? node.x + PAD_X : cx, y: node.y + PAD_Y + LINE * i + LINE / 2, "text-anchor": orphan ? "start" : "middle" }, line));
    });
    link.appendChild(svg("title", {}, node.label + " (" + node.kind + "): " + node.lines.slice(1).join(" ")));
    g.appendChild(link);
    if (node.drift_text) {
      const badge = svg("a", { href: schemaHref(node), class: "drift-badge" });
      const y = node.y + PAD_Y + LINE * node.lines.length;
      const w = node.w - 2 * PAD_X;
      badge.appendChild(svg("rect", { x: node.x + PAD_X, y: y + 1, width: w, height: LINE - 2, rx: 8 }));
      badge.appendChild(svg("text", { class: "drift-text", x: cx, y: y + LINE / 2, "text-anchor": "middle" }, node.drift_text));
      badge.appendChild(svg("title", {}, "The schema of this event type drifted: see its fields"));
      g.appendChild(badge);
    }
    return g;
  }

  function pathOf(section) {
    const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
    return "M" + points.map((p) => p.x.toFixed(1) + "," + p.y.toFixed(1)).join(" L");
  }

  function drawEdge(edge, laid, labels) {
    const cls = "edge" + (edge.change ? " " + edge.change : "") + (edge.moved ? " moved" : "");
    const g = svg("g", { class: cls, "data-source": edge.source, "data-target": edge.target });
    const d = (laid.sections || []).map(pathOf).join(" ");
    const path = svg("path", { d: d, "marker-end": "url(#arrow" + (edge.change ? "-" + edge.change : "") + ")" });
    path.appendChild(svg("title", {}, edge.source_label + " → " + edge.target_label + ": " + edge.text));
    g.appendChild(path);
    const label = laid.labels && laid.labels[0];
    if (label) {
      const lg = svg("g", { class: "edge-label" + (edge.change ? " " + edge.change : "") + (edge.moved ? " moved" : ""), "data-edge": edge.source + " → " + edge.target });
      lg.appendChild(svg("rect", { x: label.x, y: label.y, width: label.width, height: label.height, rx: 10 }));
      lg.appendChild(svg("text", { x: label.x + label.width / 2, y: label.y + label.height / 2 }, edge.text));
      labels.appendChild(lg);
    }
    return g;
  }

  function defs() {
    const d = svg("defs");
    ["", "added", "removed"].forEach((kind) => {
      const marker = svg("marker", { id: "arrow" + (kind ? "-" + kind : ""), viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
      marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" + (kind ? " " + kind : "") }));
      d.appendChild(marker);
    });
    return d;
  }

  async function draw(data) {
    const ticket = ++drawing;
    const { nodes, edges } = merged(data);
    const linked = new Set();
    edges.forEach((e) => { linked.add(e.source); linked.add(e.target); });
    const orphans = nodes.filter((n) => n.kind === "event" && !linked.has(n.id));
    const placed = nodes.filter((n) => !(n.kind === "event" && !linked.has(n.id)));
    const labelOf = new Map(nodes.map((n) => [n.id, n.label]));
    const measure = measurer(viewport);
    placed.forEach((n) => sizeNode(n, nodeLines(n, false), measure));
    orphans.forEach((n) => sizeNode(n, nodeLines(n, true), measure));
    edges.forEach((e) => {
      e.text = edgeText(e);
      e.lw = Math.ceil(measure.width(e.text, "edge-text" + (e.moved ? " moved" : "")) + 2 * LABEL_PAD);
      e.source_label = labelOf.get(e.source) || e.source;
      e.target_label = labelOf.get(e.target) || e.target;
    });
    measure.done();
    const laid = placed.length ? await bestLayout(placed, edges) : { children: [], edges: [], width: 0, height: 0 };
    if (ticket !== drawing) return;  // a newer refresh won
    const at = new Map(laid.children.map((c) => [c.id, c]));
    placed.forEach((n) => { n.x = at.get(n.id).x; n.y = at.get(n.id).y; });
    render(placed, orphans, edges, laid);
  }

  function render(placed, orphans, edges, laid) {
    const graphH = laid.height || 0;
    const top = placed.length ? graphH + ORPHAN_GAP : 0;
    const bottom = orphans.length ? placeOrphans(orphans, top) : graphH;
    const widths = [laid.width || 0, ...orphans.map((n) => n.w)];
    bounds = { x: -MARGIN, y: -MARGIN, w: Math.max(...widths) + 2 * MARGIN, h: bottom + 2 * MARGIN };
    const canvas = svg("svg", { id: "arch-svg", class: "arch", role: "group", "aria-label": "Architecture graph", width: "100%", height: "100%" });
    canvas.appendChild(defs());
    root = svg("g", { class: "arch-root" });
    const edgeGroup = svg("g", { class: "edges" }), labelGroup = svg("g", { class: "edge-labels" });
    edges.forEach((e, i) => edgeGroup.appendChild(drawEdge(e, laid.edges[i], labelGroup)));
    const nodeGroup = svg("g", { class: "nodes" });
    placed.forEach((n) => nodeGroup.appendChild(drawNode(n, false)));
    root.append(edgeGroup, nodeGroup, labelGroup);
    if (orphans.length) {
      const og = svg("g", { class: "orphans", "aria-label": "Orphan event types" });
      og.appendChild(svg("text", { class: "orphans-title", x: 0, y: top + 12 }, "Orphans: event types seen with no producer and no consumer"));
      orphans.forEach((n) => og.appendChild(drawNode(n, true)));
      root.appendChild(og);
    }
    canvas.appendChild(root);
    viewport.replaceChildren(canvas);
    fitHeight();
    if (!view.touched) opening();
    apply();
  }

  /* --- zoom and pan ---------------------------------------------------------------------- */

  function fitHeight() {
    // Tall enough to read (a phone gets at least MIN_VIEW_H px), never taller than the window.
    const wanted = Math.min(bounds.h, Math.max(window.innerHeight * 0.75, MIN_VIEW_H));
    viewport.style.height = Math.max(MIN_VIEW_H, Math.ceil(wanted)) + "px";
  }

  function size() { return { w: viewport.clientWidth || 1, h: viewport.clientHeight || 1 }; }

  /* 1:1, the graph centred where it fits and shown from its start where it does not. */
  function home() {
    const { w, h } = size();
    view.k = 1;
    view.x = bounds.w <= w ? bounds.x - (w - bounds.w) / 2 : bounds.x;
    view.y = bounds.h <= h ? bounds.y - (h - bounds.h) / 2 : bounds.y;
  }

  /* The view a page opens with: 1:1 on a wide screen; on a phone the whole graph, fitted to the
     screen (its text is small then: zoom in, or "1:1", to read it). */
  const PHONE = window.matchMedia("(max-width: 760px)");
  function opening() {
    if (PHONE.matches) fit(); else home();
  }

  function fit() {
    const { w, h } = size();
    view.k = clamp(Math.min(w / bounds.w, h / bounds.h), MIN_K, MAX_K);
    view.x = bounds.x - (w / view.k - bounds.w) / 2;
    view.y = bounds.y - (h / view.k - bounds.h) / 2;
  }

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function apply() {
    const canvas = document.getElementById("arch-svg");
    if (!canvas) return;
    const { w, h } = size();
    canvas.setAttribute("viewBox", [view.x, view.y, w / view.k, h / view.k].map((v) => v.toFixed(2)).join(" "));
    viewport.dataset.zoom = view.k.toFixed(3);
  }

  function zoomAt(factor, px, py) {
    const k = clamp(view.k * factor, MIN_K, MAX_K);
    view.x += px / view.k - px / k;
    view.y += py / view.k - py / k;
    view.k = k;
    view.touched = true;
    apply();
  }

  function zoomCentre(factor) { const { w, h } = size(); zoomAt(factor, w / 2, h / 2); }

  function panBy(dx, dy) {
    view.x -= dx / view.k;
    view.y -= dy / view.k;
    view.touched = true;
    apply();
  }

  function local(ev) {
    const r = viewport.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  viewport.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [px, py] = local(ev);
    zoomAt(Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015)), px, py);
  }, { passive: false });

  const pointers = new Map();
  let dragged = false, pinch = null;
  viewport.addEventListener("pointerdown", (ev) => {
    pointers.set(ev.pointerId, local(ev));
    dragged = false;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { d: Math.hypot(a[0] - b[0], a[1] - b[1]) };
    }
  });
  viewport.addEventListener("pointermove", (ev) => {
    const last = pointers.get(ev.pointerId);
    if (!last) return;
    const now = local(ev);
    pointers.set(ev.pointerId, now);
    if (pointers.size === 2 && pinch) {
      const [a, b] = [...pointers.values()];
      const d = Math.hypot(a[0] - b[0], a[1] - b[1]);
      if (pinch.d > 0) zoomAt(d / pinch.d, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
      pinch.d = d;
      dragged = true;
      return;
    }
    const dx = now[0] - last[0], dy = now[1] - last[1];
    if (!dragged && Math.hypot(dx, dy) < 3) { pointers.set(ev.pointerId, last); return; }
    if (!dragged) viewport.setPointerCapture(ev.pointerId);
    dragged = true;
    viewport.classList.add("panning");
    panBy(dx, dy);
  });
  function release(ev) {
    pointers.delete(ev.pointerId);
    if (pointers.size < 2) pinch = null;
    viewport.classList.remove("panning");
  }
  viewport.addEventListener("pointerup", release);
  viewport.addEventListener("pointercancel", release);
  // A drag that ends on a node is a pan, not a click on it.
  viewport.addEventListener("click", (ev) => { if (dragged) { ev.preventDefault(); dragged = false; } }, true);

  const KEYS = {
    ArrowLeft: () => panBy(60, 0), ArrowRight: () => panBy(-60, 0),
    ArrowUp: () => panBy(0, 60), ArrowDown: () => panBy(0, -60),
    "+": () => zoomCentre(1.25), "=": () => zoomCentre(1.25), "-": () => zoomCentre(0.8),
    "0": () => { home(); view.touched = false; apply(); }, f: () => { fit(); view.touched = true; apply(); },
  };
  viewport.addEventListener("keydown", (ev) => {
    const act = KEYS[ev.key];
    if (!act || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    ev.preventDefault();
    act();
  });
  // A node reached with Tab comes into view.
  viewport.addEventListener("focusin", (ev) => {
    const node = ev.target.closest && ev.target.closest(".node");
    if (!node || !root) return;
    const box = node.getBBox(), { w, h } = size();
    const left = (box.x - view.x) * view.k, topPx = (box.y - view.y) * view.k;
    if (left < 0 || topPx < 0 || left + box.width * view.k > w || topPx + box.height * view.k > h) {
      view.x = box.x + box.width / 2 - w / 2 / view.k;
      view.y = box.y + box.height / 2 - h / 2 / view.k;
      view.touched = true;
      apply();
    }
  });

  document.querySelectorAll("[data-zoom]").forEach((button) => {
    button.addEventListener("click", () => {
      const act = { in: () => zoomCentre(1.25), out: () => zoomCentre(0.8), fit: KEYS.f, reset: KEYS["0"] }[button.dataset.zoom];
      act();
    });
  });

  window.addEventListener("resize", window.edobs.debounce(() => { fitHeight(); if (!view.touched) opening(); apply(); }, 150));

  /* --- refresh in place ------------------------------------------------------------------ */

  async function refresh() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("arch-data"), counts = page.getElementById("arch-counts");
    if (!fresh) return;
    const data = JSON.parse(fresh.textContent);
    if (counts) document.getElementById("arch-counts").textContent = counts.textContent;
    await draw(data);
  }

  const refreshLink = document.getElementById("refresh");
  if (refreshLink) {
    refreshLink.addEventListener("click", (ev) => { ev.preventDefault(); refresh(); });
  }

  const compare = document.getElementById("compare-select");
  if (compare) {
    const toggle = () => document.querySelectorAll(".compare-range").forEach((n) => { n.hidden = compare.value !== "custom"; });
    compare.addEventListener("change", toggle);
    toggle();
  }

  function failed(error) {
    viewport.replaceChildren(window.edobs.el("p", { class: "alert", role: "alert" },
      "The graph could not be laid out (" + error + "); the edges are listed in the table below."));
  }

  window.edobsArchitecture = { view, draw, refresh, ready: draw(readJson("arch-data")).catch(failed) };
})();
