/* Latest jobs, live: /ws/events/ tells that something happened; /api/jobs says what is true now. */
"use strict";
(function () {
  const E = window.edobs;
  const body = document.getElementById("jobs-body");
  const filters = E.readJson("jobs-filters") || {};
  const limit = document.getElementById("jobs-table").dataset.limit || "50";
  const latest = new Map();  // job id -> {type, time} of its newest event seen here
  const counts = new Map();  // job id -> event_count last rendered, to flash changed rows
  for (const job of E.readJson("jobs-data") || []) {
    latest.set(job.id, { type: job.latest_type || "", time: job.last_event_at });
    counts.set(job.id, job.event_count);
  }

  const STATUS_CSS = { RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "failed" };

  function duration(job) {
    const start = job.started_at || job.first_event_at;
    const stop = job.stopped_at || job.last_event_at;
    if (!start || !stop) return "—";
    return E.humanMs(Date.parse(stop) - Date.parse(start));
  }

  function row(job) {
    const tr = E.el("tr");
    tr.dataset.jobId = job.id;
    tr.appendChild(E.el("td", { class: "sm" }, job.state_machine));
    const name = E.el("td", { class: "name" });
    const link = E.el("a", {}, job.name);
    link.href = "/jobs/" + encodeURI(job.id) + "/";
    name.appendChild(link);
    tr.appendChild(name);
    const status = E.el("td");
    status.appendChild(E.el("span", { class: "badge badge-" + (STATUS_CSS[job.status] || "unknown") }, job.status || "UNKNOWN"));
    tr.appendChild(status);
    const started = E.el("td", { class: "nowrap" });
    const startIso = job.started_at || job.first_event_at || "";
    started.appendChild(E.el("time", { datetime: startIso }, E.utc(startIso)));
    tr.appendChild(started);
    tr.appendChild(E.el("td", { class: "num" }, duration(job)));
    tr.appendChild(E.el("td", { class: "num" }, job.event_count));
    const last = E.el("td", { class: "last" });
    const seen = latest.get(job.id) || { type: "", time: job.last_event_at };
    last.appendChild(E.el("span", { class: "type" }, seen.type));
    last.appendChild(document.createTextNode(" "));
    last.appendChild(E.el("time", { class: "muted", datetime: seen.time || job.last_event_at || "", "data-rel": "" }, E.relative(seen.time || job.last_event_at)));
    tr.appendChild(last);
    if (counts.has(job.id) ? counts.get(job.id) !== job.event_count : counts.size > 0) tr.classList.add("flash");
    counts.set(job.id, job.event_count);
    return tr;
  }

  async function refetch() {
    const query = new URLSearchParams({ limit: limit });
    if (filters.status) query.set("status", filters.status);
    if (filters.state_machine) query.set("state_machine", filters.state_machine);
    try {
      const data = await E.getJson("/api/jobs?" + query.toString());
      const rows = data.results.map(row);
      body.replaceChildren(...rows);
      document.getElementById("jobs-empty").hidden = rows.length > 0;
    } catch (e) {
      console.warn("edobs: could not refresh jobs", e);
    }
  }
  const refresh = E.debounce(refetch, 300);

  E.liveSocket("/ws/events/", (msg) => {
    if (msg.type === "lagged") { refresh(); return; }
    if (msg.type !== "event" || !msg.event || !msg.event.job) return;
    const ev = msg.event;
    const seen = latest.get(ev.job);
    if (!seen || !seen.time || Date.parse(ev.time) >= Date.parse(seen.time)) {
      latest.set(ev.job, { type: ev.detail_type, time: ev.time });
    }
    refresh();
  }, refresh);
})();
