/* Job page: the timeline's tools (find, critical path, zoom), the span panel, the span <-> event
   links, #span= deep links, the events table and the live updates. Drawing is in timeline.js.
   The events table holds one page of the job's events (the server's ?page= or ?event=<id>); the
   timeline holds every span, so a span's events may be on another page: its panel buttons go
   there, the live updates add only the events that belong on this page. */
"use strict";
(function () {
  const E = window.edobs;
  const T = E.timeline;
  const job = E.readJson("job-data");
  let timeline = E.readJson("timeline-data");
  const seen = new Set(Array.from(document.querySelectorAll("#event-body tr")).map((tr) => tr.dataset.eventId));
  const STATUS_CSS = { RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "failed" };
  const $ = (id) => document.getElementById(id);
  let fromRow = false;
  const paged = { previous: $("event-body").dataset.hasPrevious === "1", next: $("event-body").dataset.hasNext === "1" };

  const chart = T.mount({
    box: $("timeline-box"), minimap: $("timeline-minimap"), tip: $("span-tip"),
    timeline, job, tokens: E.readJson("event-tokens") || {},
    onSelect: (b) => { showPanel(b); linkRows(b); setHash(b.key); },
    onDraw: showRange,
  });

  /* --- the visible range, the legend and the table of spans ------------------------------ */
  function showRange(g) {
    const clock = window.edobsClock;
    const text = clock.format(g.v0, true) + " – " + clock.format(g.v1, true).slice(11) + " · " + E.humanMs(g.v1 - g.v0);
    $("timeline-range").textContent = text;
    $("zoom-reset").disabled = !$("timeline-svg") || Number($("timeline-svg").dataset.view0) <= Number($("timeline-minimap").dataset.t0) &&
      Number($("timeline-svg").dataset.view1) >= Number($("timeline-minimap").dataset.t1);
  }

  function drawLegend() {
    const legend = $("timeline-legend");
    const fixed = Array.from(legend.querySelectorAll("li.fixed"));
    const items = Array.from(chart.colours().entries()).map(([label, c]) => {
      const li = E.el("li");
      li.appendChild(E.el("span", { class: "swatch c" + c }));
      li.appendChild(document.createTextNode(label));
      return li;
    });
    legend.replaceChildren(...items, ...fixed);
  }

  function drawSpanTable() {
    const body = $("span-table-body");
    const rows = chart.bars().map((b) => {
      const s = b.s;
      const tr = E.el("tr", { "data-key": b.key, class: "status-" + s.status });
      [s.state || "—", T.laneName(s), T.wall(b.start), s.status === "pending" ? "no answer" : T.shortDuration(s, b.duration), s.status,
        T.incomingType(s), s.outgoing ? s.outgoing.detailType : "—"].forEach((v) => tr.appendChild(E.el("td", {}, v)));
      return tr;
    });
    body.replaceChildren(...rows);
    $("span-table-count").textContent = String(rows.length);
  }

  /* --- selection: the panel, the two events in the table, the link ----------------------- */
  function showPanel(b) {
    const panel = $("span-detail");
    const head = E.el("p", { class: "panel-head" });
    head.appendChild(E.el("strong", {}, T.laneName(b.s)));
    const dl = E.el("dl");
    chart.fields(b).forEach(([k, v]) => {
      dl.appendChild(E.el("dt", {}, k));
      dl.appendChild(E.el("dd", { class: k === "Task token" ? "mono token" : "" }, v));
    });
    const links = E.el("p", { class: "panel-links" });
    if (b.s.child) {  // an execution this job started: its span opens it
      const label = b.s.map_run ? "Open the Map Run's newest child" : "Open the started execution";
      links.appendChild(E.el("a", { class: "btn btn-small", id: "open-child", href: "/jobs/" + encodeURIComponent(b.s.child) + "/" }, label));
    }
    const logs = (E.readJson("logs-links") || {})[b.s.fn];
    if (b.s.fn && typeof logs === "string" && logs.startsWith("https://")) {  // built by the server from a real ARN
      links.appendChild(E.el("a", { class: "btn btn-small", id: "span-logs", href: logs, target: "_blank", rel: "noopener noreferrer",
        title: "CloudWatch Logs Insights: /aws/lambda/" + b.s.fn + ", lines stamped with this execution's trace token" }, "Logs Insights"));
    }
    [["Trigger event", b.s.start_event], ["Answer event", b.s.kind === "execution" ? null : b.s.end_event]].forEach(([label, id]) => {
      if (!id) return;
      const here = rowOf(id);
      const button = E.el("button", { type: "button", class: "btn btn-small", "data-event": id }, here ? label : label + " (another page)");
      button.addEventListener("click", () => {
        const tr = rowOf(id);
        if (tr) { tr.scrollIntoView({ block: "center" }); tr.focus({ preventScroll: true }); return; }
        location.assign(location.pathname + "?event=" + encodeURIComponent(id) + location.hash);
      });
      links.appendChild(button);
    });
    panel.replaceChildren(head, dl, links);
    panel.hidden = false;
    $("span-hint").hidden = true;
  }

  const rowOf = (id) => (id ? document.querySelector('#event-body tr[data-event-id="' + CSS.escape(id) + '"]') : null);

  function linkRows(b) {
    document.querySelectorAll("#event-body tr.linked").forEach((tr) => tr.classList.remove("linked"));
    [b.s.start_event, b.s.end_event].forEach((id) => { const tr = rowOf(id); if (tr) tr.classList.add("linked"); });
    if (!fromRow) chart.setLinked(new Set());
  }

  function setHash(key) {
    const hash = "#span=" + encodeURIComponent(key);
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
  }

  function fromHash() {
    const match = /^#span=(.+)$/.exec(location.hash);
    if (!match) return;
    let key;
    try { key = decodeURIComponent(match[1]); } catch (e) { return; }
    chart.select(key, { scroll: true, tip: true });
  }
  window.addEventListener("hashchange", fromHash);

  /* ?event=<id> (a span's event on another page): that row, in view and focused. */
  function fromQuery() {
    const tr = rowOf(new URLSearchParams(location.search).get("event"));
    if (!tr) return;
    tr.classList.add("linked");
    tr.scrollIntoView({ block: "center" });
    tr.focus({ preventScroll: true });
  }

  /* The error box's link selects the span the execution failed on, even when the address
     already names it (no hashchange then). */
  const errorLink = $("error-span-link");
  if (errorLink) {
    errorLink.addEventListener("click", (ev) => {
      const match = /^#span=(.+)$/.exec(errorLink.getAttribute("href") || "");
      if (!match) return;
      ev.preventDefault();
      const key = decodeURIComponent(match[1]);
      if (chart.select(key, { scroll: true, tip: true, focus: true })) setHash(key);
    });
  }

  /* A click on an event's row (not on its JSON), or Enter / Space on the row itself (each row is
     a tab stop), highlights the spans that start or end there. */
  function linkRow(tr) {
    const id = tr.dataset.eventId;
    const touching = chart.bars().filter((b) => b.s.start_event === id || b.s.end_event === id);
    chart.setLinked(new Set(touching.map((b) => b.i)));
    if (touching.length) {
      fromRow = true;
      try { chart.select(touching[0].key, {}); } finally { fromRow = false; }
    }
    // after the selection, which marks its span's two rows: only this row stays marked
    document.querySelectorAll("#event-body tr.linked").forEach((row) => row.classList.remove("linked"));
    tr.classList.add("linked");
    if (touching.length) $("timeline-box").scrollIntoView({ block: "nearest" });
  }
  $("event-body").addEventListener("click", (ev) => {
    if (ev.target.closest("details, a, button")) return;
    const tr = ev.target.closest("tr.event-row");
    if (tr) linkRow(tr);
  });
  $("event-body").addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" && ev.key !== " ") return;
    if (!ev.target.matches("tr.event-row")) return; // keys inside the JSON keep their meaning
    ev.preventDefault();
    linkRow(ev.target);
  });

  /* --- tools --------------------------------------------------------------------------------- */
  $("critical-toggle").addEventListener("click", () => {
    const button = $("critical-toggle");
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    showCritical(chart.setCritical(on), on);
  });
  function showCritical(total, on) {
    $("critical-total").textContent = on
      ? (total.count ? total.count + " span" + (total.count === 1 ? "" : "s") + " · " + E.humanMs(total.ms) : "no path")
      : "";
  }

  function findMatches() {
    const q = $("timeline-find").value.trim().toLowerCase();
    const rows = Array.from(document.querySelectorAll("#event-body tr.event-row"));
    if (!q) {
      rows.forEach((tr) => tr.classList.remove("match"));
      chart.setMatches(null);
      $("find-count").textContent = "";
      return;
    }
    const ids = new Set();
    rows.forEach((tr) => {
      const hit = (tr.dataset.eventId + " " + tr.textContent).toLowerCase().includes(q);
      tr.classList.toggle("match", hit);
      if (hit) ids.add(tr.dataset.eventId);
    });
    const spans = new Set();
    chart.bars().forEach((b) => {
      const s = b.s;
      const hay = [s.fn, s.lane, s.state, T.incomingType(s), s.outgoing && s.outgoing.detailType, s.start_event, s.end_event, s.step]
        .filter((v) => v !== null && v !== undefined).join(" ").toLowerCase();
      if (hay.includes(q) || ids.has(s.start_event) || ids.has(s.end_event)) spans.add(b.i);
    });
    chart.setMatches(spans);
    $("find-count").textContent = spans.size + " span" + (spans.size === 1 ? "" : "s") + ", " + ids.size + " event" + (ids.size === 1 ? "" : "s") +
      (paged.previous || paged.next ? " on this page" : "");
  }
  $("timeline-find").addEventListener("input", E.debounce(findMatches, 120));
  $("timeline-find").addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.target.value = ""; findMatches(); } });

  $("zoom-in").addEventListener("click", () => chart.zoom(0.5));
  $("zoom-out").addEventListener("click", () => chart.zoom(2));
  $("zoom-reset").addEventListener("click", () => chart.reset());

  /* A running job's clocks move every second without asking the server. */
  function tick() {
    if (!chart.tick()) return;
    const start = Date.parse(job.started_at || job.first_event_at);
    if (!isNaN(start)) $("job-duration").textContent = E.humanMs(Date.now() - start);
    const selected = chart.selected();
    if (selected && selected.s.status === "pending" && !$("span-detail").hidden) showPanel(selected);
  }
  setInterval(tick, 1000);

  function afterData() {
    drawLegend();
    drawSpanTable();
    const pressed = $("critical-toggle").getAttribute("aria-pressed") === "true";
    if (pressed) showCritical(chart.setCritical(true), true);
    if ($("timeline-find").value.trim()) findMatches();
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = E.el("textarea", { readonly: "", class: "copy-area" });
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
    const tr = E.el("tr", { class: "event-row flash", tabindex: "0" });
    tr.dataset.eventId = ev.id;
    const time = E.el("td", { class: "mono nowrap" });
    time.appendChild(E.el("time", { datetime: ev.time, "data-wall": "bare" }, window.edobsClock.format(ev.time)));
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

  /* Whether an event falls in this page's time range (the snapshot sends every event of the
     job; the first and last pages are open-ended). */
  function onThisPage(ev) {
    const times = Array.from(document.querySelectorAll("#event-body tr.event-row time")).map((t) => Date.parse(t.getAttribute("datetime")));
    const at = Date.parse(ev.time);
    if (!times.length || isNaN(at)) return !paged.previous && !paged.next;
    // an unseen event of a boundary second belongs to the neighbour page, which holds that second too
    return !(paged.previous && at <= Math.min(...times)) && !(paged.next && at >= Math.max(...times));
  }

  function addEvent(ev) {
    if (!ev || !ev.id || seen.has(ev.id)) return false;
    seen.add(ev.id);
    if (ev.detail && typeof ev.detail.TaskToken === "string") chart.addToken(ev.id, ev.detail.TaskToken.slice(0, 300));
    if (!onThisPage(ev)) return false;
    const body = document.getElementById("event-body");
    const row = eventRow(ev);
    // Keep the table in time order: insert before the first later event, but never before the
    // event's trigger (an answer's clock may read earlier than its trigger's: causal order).
    const rows = Array.from(body.children);
    const meta = ev.detail && ev.detail.meta;
    const trigger = meta && meta.incoming && typeof meta.incoming.id === "string" ? meta.incoming.id : null;
    const after = trigger ? rows.findIndex((tr) => tr.dataset.eventId === trigger) : -1;
    const later = rows.slice(after + 1).find((tr) => {
      const when = tr.querySelector("time");
      return when && Date.parse(when.getAttribute("datetime")) > Date.parse(ev.time);
    });
    body.insertBefore(row, later || null);
    return true;
  }

  async function refetch() {
    try {
      const data = await E.getJson("/api/jobs/" + encodeURIComponent(job.id) + "/timeline");
      timeline = data;
      const j = data.job || {};
      Object.assign(job, j);
      chart.setData(data, job);
      afterData();
      if (j.status) {
        const badge = $("job-status");
        badge.textContent = j.status;
        badge.className = "badge badge-" + (STATUS_CSS[j.status] || "unknown");
      }
      if (j.event_count !== undefined) {
        $("job-count").textContent = String(j.event_count);
        $("event-total").textContent = String(j.event_count);
      }
      if (j.stopped_at) $("job-stopped").textContent = window.edobsClock.wall(j.stopped_at);
      const start = j.started_at || j.first_event_at, stop = j.stopped_at || j.last_event_at;
      if (start && stop && !chart.running()) $("job-duration").textContent = E.humanMs(Date.parse(stop) - Date.parse(start));
    } catch (e) {
      console.warn("edobs: could not refresh the timeline", e);
    }
  }
  const refresh = E.debounce(refetch, 300);

  afterData();
  fromHash();
  fromQuery();
  tick();

  // A snapshot may come in chunks under the frame budget: "more": true until the last one.
  let snapshotAdded = false;
  E.liveSocket("/ws/jobs/" + encodeURIComponent(job.id) + "/", (msg) => {
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
