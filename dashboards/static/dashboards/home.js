/* Jobs, live, in a stable order. /ws/events/ says that something happened; /api/jobs says what
   is true now. Rows on the page are updated in place (never re-sorted, removed or re-created, so
   the reader's place and keyboard focus stay put); jobs that started after the page was loaded
   are announced ("3 new jobs · show") instead of being inserted. A failed read or a closed
   socket turns the indicator to "stale" or "disconnected" (common.js). */
"use strict";
(function () {
  const E = window.edobs;
  const live = E.readJson("jobs-live") || { jobs: [] };
  const body = document.getElementById("jobs-body");
  const loadedAt = Date.parse(live.now);  // envelope times have whole seconds: 1 s of slack below
  const shown = new Set(live.jobs.map((job) => job.id));
  const fresh = new Set();  // ids of jobs that started after the page was loaded
  let paused = false, missed = 0, lagged = false;  // the live tail's pause (below)
  const POLL_MS = 10000;
  const STATUS_CSS = { RUNNING: "running", SUCCEEDED: "succeeded", FAILED: "failed", TIMED_OUT: "failed", ABORTED: "failed" };

  function duration(job) {
    if (job.duration_ms !== null && job.duration_ms !== undefined) return E.humanMs(job.duration_ms);
    const start = job.started_at || job.first_event_at, stop = job.stopped_at || job.last_event_at;
    return start && stop ? E.humanMs(Date.parse(stop) - Date.parse(start)) : "—";
  }

  function setText(node, text) {
    if (node && node.textContent !== String(text)) node.textContent = String(text);
  }

  function statusCell(cell, job) {
    const badge = cell.querySelector(".badge");
    setText(badge, job.status || "UNKNOWN");
    badge.className = "badge badge-" + (STATUS_CSS[job.status] || "unknown");
    let stuck = cell.querySelector(".badge-stuck"), reason = cell.querySelector(".stuck-reason");
    if (job.stuck && !stuck) {
      stuck = E.el("span", { class: "badge badge-stuck" }, "stuck");
      reason = E.el("span", { class: "stuck-reason" });
      cell.append(" ", stuck, " ", reason);
    }
    if (!job.stuck && stuck) { stuck.remove(); reason.remove(); }
    if (reason) setText(reason, job.stuck_reason || "");
  }

  /* Only text and classes change: the row, its link and whatever has focus stay the same nodes. */
  function update(tr, job) {
    const before = tr.querySelector("td.events").textContent;
    statusCell(tr.querySelector("td.status"), job);
    tr.classList.toggle("stuck", !!job.stuck);
    setText(tr.querySelector("td.duration"), duration(job));
    setText(tr.querySelector("td.events"), job.event_count);
    const counts = tr.querySelector(".map-run-counts");  // a Map Run's row: its children's counts
    if (counts && job.map_run) {
      for (const key of ["running", "succeeded", "failed"]) setText(counts.querySelector("." + key), job.map_run[key] + " " + key);
      counts.querySelector(".failed").classList.toggle("text-failed", job.map_run.failed > 0);
    }
    const time = tr.querySelector("td.last time");
    if (job.last_event_at && time.getAttribute("datetime") !== job.last_event_at) {
      time.setAttribute("datetime", job.last_event_at);
      setText(time, E.relative(job.last_event_at));
    }
    if (before !== String(job.event_count)) {
      tr.classList.remove("flash");
      void tr.offsetWidth;  // restart the animation
      tr.classList.add("flash");
    }
  }

  function matches(job) {
    if (live.invalid) return false;  // a filter could not be read: the page lists nothing
    const wanted = (live.state_machine || "").toLowerCase();
    return !wanted || (job.state_machine || "").toLowerCase().includes(wanted);
  }

  function announce() {
    const text = document.getElementById("new-jobs-text");
    const show = document.getElementById("new-jobs-show");
    const n = fresh.size;
    setText(text, n ? n + (n === 1 ? " new job" : " new jobs") : "");
    show.hidden = n === 0;
  }

  function query() {
    const q = new URLSearchParams({ limit: "200" });
    for (const s of live.statuses || []) q.append("status", s);
    if (live.stuck) q.set("stuck", "1");
    if (live.map_run) q.set("state_machine", live.map_run);  // exact: one Map Run's children
    if (live.min_duration_ms !== null) q.set("min_duration_ms", live.min_duration_ms);
    if (live.max_duration_ms !== null) q.set("max_duration_ms", live.max_duration_ms);
    return "/api/jobs?" + q.toString();
  }

  async function refetch() {
    if (paused) return;
    let data;
    try {
      data = await E.getJson(query());
    } catch (e) {
      E.markApi("the jobs could not be read (" + e.message.split(": ").pop() + ")");
      return;
    }
    E.markApi(null);
    if (paused) return;  // paused while the read was on its way
    for (const job of data.results) {
      // A Map Run's row stands for the run, whichever child is its newest now.
      const run = job.map_run ? [job.account, job.region, job.state_machine].join(":") : null;
      const tr = body.querySelector('tr[data-job-id="' + CSS.escape(job.id) + '"]') ||
        (run && body.querySelector('tr[data-map-run="' + CSS.escape(run) + '"]'));
      if (tr) update(tr, job);
      else if (!shown.has(job.id) && matches(job) && Date.parse(job.first_event_at) >= loadedAt - 1000) fresh.add(job.id);
    }
    announce();
  }
  const refresh = E.debounce(refetch, 300);

  /* Pause: the rows hold still (no reads, no updates) while the events that arrive meanwhile
     are counted; Resume reads what is true now and applies it at once. */
  const pauseButton = document.getElementById("tail-pause");
  const pausedNote = document.getElementById("paused-note");
  function showPause() {
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    pausedNote.hidden = !paused;
    const n = missed + (lagged ? "+" : "");
    setText(pausedNote, "Paused · " + n + (missed === 1 && !lagged ? " event" : " events") + " arrived since");
  }
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    if (!paused) { missed = 0; lagged = false; refetch(); }
    showPause();
  });

  document.getElementById("new-jobs-show").addEventListener("click", (e) => {
    e.preventDefault();  // the newest activity first, page 1, same filters
    const params = new URLSearchParams(location.search);
    params.delete("page"); params.delete("sort");
    location.assign(location.pathname + (params.toString() ? "?" + params.toString() : ""));
  });

  setInterval(() => { if (!paused) refetch(); }, POLL_MS);
  E.liveSocket("/ws/events/", (msg) => {
    if (paused) {
      if (msg.type === "event") { missed += 1; showPause(); }
      if (msg.type === "lagged") { lagged = true; showPause(); }
      return;
    }
    if (msg.type === "lagged" || (msg.type === "event" && msg.event && msg.event.job)) refresh();
  }, () => { if (!paused) refresh(); });

  /* One small Chart.js line chart per state machine: started and failed per hour, 24 h. */
  const sparks = E.readJson("sparks-data") || [];
  document.querySelectorAll(".sm-card").forEach((card, i) => {
    const spark = sparks[i];
    if (!spark || !window.Chart) return;
    new window.Chart(card.querySelector("canvas"), {
      type: "line",
      data: {
        labels: spark.started.map((_, n) => n),
        datasets: [
          { label: "started", data: spark.started, borderColor: "#1f6feb", borderWidth: 1.5, pointRadius: 0, tension: 0.3, fill: false },
          { label: "failed", data: spark.failed, borderColor: "#c62828", borderWidth: 1.5, pointRadius: 0, tension: 0.3, fill: false },
        ],
      },
      options: {
        responsive: false, animation: false, events: [],
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: { x: { display: false }, y: { display: false, beginAtZero: true } },
      },
    });
  });
})();
