/* A state machine's charts, drawn by Chart.js from the numbers the page was rendered with (the
   same ones the tables hold), then kept up to date: an event of one of its jobs (/ws/events/)
   or every REFRESH_MS, the numbers are read again from /api/state-machines/<name>/metrics and
   the charts, totals and tables redrawn in place; the live indicator says whether that works.
   A bar opens its bucket's jobs on the home page (a failure bar: the failed ones). Labels and
   the table's times are in the zone the user chose (theme.js's clock), like the rest of the page. */
"use strict";
(function () {
  const E = window.edobs;
  const data = E.readJson("sm-data");
  if (!data || !window.Chart) return;
  const Chart = window.Chart;
  const REFRESH_MS = 30000;
  Chart.defaults.color = "#667085";
  Chart.defaults.borderColor = "#e3e7ef";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  const COLORS = { started: "#1f6feb", succeeded: "#15803d", failed: "#c62828", rate: "#c62828", p50: "#0072B2", p95: "#D55E00", p99: "#7a1f6d" };
  const clock = window.edobsClock;
  const ZONE = clock.label();
  let buckets = data.buckets;

  function labels() {
    const walls = buckets.map((b) => clock.format(b.start, false));
    const sameDay = walls.length && walls[0].slice(0, 10) === walls[walls.length - 1].slice(0, 10);
    return walls.map((w) => (sameDay ? w.slice(11, 16) : w.slice(5, 16)));
  }
  const series = (key) => buckets.map((b) => b[key]);
  const rates = () => buckets.map((b) => (b.failure_rate === null ? null : Math.round(b.failure_rate * 1000) / 10));

  function percent(rate) {
    if (rate === null || rate === undefined) return "—";
    const pct = rate * 100;
    return (pct === 0 || pct >= 10 ? pct.toFixed(0) : pct.toFixed(1)) + " %";
  }

  /* The home page's list of the jobs active in a bucket: what `since` and `until` filter on. */
  function jobsLink(bucket, failed) {
    const q = new URLSearchParams();
    q.set(data.list_key, data.state_machine);
    q.set("since", bucket.start.slice(0, 19));
    q.set("until", bucket.end.slice(0, 19));
    if (failed) for (const s of data.failed_statuses) q.append("status", s);
    return "/?" + q.toString();
  }

  const counts = new Chart(document.getElementById("chart-counts"), {
    type: "bar",
    data: {
      labels: labels(),
      datasets: [
        { type: "bar", label: "succeeded", data: series("succeeded"), backgroundColor: COLORS.succeeded, stack: "done" },
        { type: "bar", label: "failed", data: series("failed"), backgroundColor: COLORS.failed, stack: "done" },
        { type: "line", label: "started", data: series("started"), borderColor: COLORS.started, backgroundColor: COLORS.started, pointRadius: 2, tension: 0.25 },
      ],
    },
    options: {
      scales: { x: { stacked: true, title: { display: true, text: ZONE } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      interaction: { mode: "index", intersect: false },
      onHover: (event, active) => { event.native.target.style.cursor = active.length ? "pointer" : "default"; },
      onClick: (event, active, chart) => {
        const hit = chart.getElementsAtEventForMode(event, "nearest", { intersect: true }, false)[0];
        const index = hit ? hit.index : active.length ? active[0].index : null;
        if (index === null || !buckets[index]) return;
        const failed = !!hit && chart.data.datasets[hit.datasetIndex].label === "failed";
        location.assign(jobsLink(buckets[index], failed));
      },
    },
  });

  const failureRate = new Chart(document.getElementById("chart-failure-rate"), {
    type: "line",
    data: { labels: labels(), datasets: [{ label: "failure rate", data: rates(), borderColor: COLORS.rate, backgroundColor: COLORS.rate, spanGaps: true, pointRadius: 2 }] },
    options: {
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => "failed: " + c.parsed.y + " % of the finished jobs" } } },
      scales: { x: { title: { display: true, text: ZONE } }, y: { beginAtZero: true, suggestedMax: 10, ticks: { callback: (v) => v + " %" } } },
    },
  });

  const durations = new Chart(document.getElementById("chart-durations"), {
    type: "line",
    data: {
      labels: labels(),
      datasets: [
        { label: "p50", data: series("p50_ms"), borderColor: COLORS.p50, backgroundColor: COLORS.p50, spanGaps: true, pointRadius: 2 },
        { label: "p95", data: series("p95_ms"), borderColor: COLORS.p95, backgroundColor: COLORS.p95, spanGaps: true, pointRadius: 2 },
        { label: "p99", data: series("p99_ms"), borderColor: COLORS.p99, backgroundColor: COLORS.p99, spanGaps: true, pointRadius: 2, borderDash: [5, 3] },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { title: { display: true, text: ZONE } }, y: { beginAtZero: true, ticks: { callback: (v) => E.humanMs(v) } } },
      plugins: { tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + E.humanMs(c.parsed.y) } } },
    },
  });

  const errorLabels = (total) => total.errors.map((e) => e.error || "(no error code)");
  const errors = new Chart(document.getElementById("chart-errors"), {
    type: "bar",
    data: { labels: errorLabels(data.total), datasets: [{ label: "failures", data: data.total.errors.map((e) => e.count), backgroundColor: COLORS.failed }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  /* --- refresh ---------------------------------------------------------------------------- */

  function setTotals(total) {
    const texts = {
      started: total.started, succeeded: total.succeeded, failed: total.failed, failure_pct: percent(total.failure_rate),
      p50_ms: E.humanMs(total.p50_ms), p95_ms: E.humanMs(total.p95_ms), p99_ms: E.humanMs(total.p99_ms),
    };
    for (const [key, text] of Object.entries(texts)) {
      const node = document.querySelector('#sm-totals [data-total="' + key + '"]');
      if (node && node.textContent !== String(text)) node.textContent = String(text);
    }
  }

  const num = (value) => E.el("td", { class: "num" }, value === null || value === undefined ? "—" : value);

  function bucketRow(b) {
    const tr = E.el("tr");
    const head = E.el("th", { scope: "row", class: "nowrap" });
    const link = E.el("a", { href: jobsLink(b, false) });
    link.appendChild(E.el("time", { datetime: b.start, "data-wall": "minutes" }, clock.format(b.start, false).slice(0, 16)));
    head.appendChild(link);
    const failed = E.el("td", { class: "num" });
    failed.appendChild(b.failed ? E.el("a", { href: jobsLink(b, true) }, b.failed) : document.createTextNode("0"));
    tr.append(head, num(b.started), num(b.succeeded), failed, num(b.p50_ms), num(b.p95_ms), num(b.p99_ms), num(percent(b.failure_rate)));
    return tr;
  }

  function setTables(total) {
    document.getElementById("buckets-body").replaceChildren(...buckets.map(bucketRow));
    const rows = total.errors.map((e) => {
      const tr = E.el("tr");
      tr.append(E.el("td", {}, e.error || "(no error code)"), num(e.count));
      return tr;
    });
    if (!rows.length) {
      const none = E.el("tr");
      none.appendChild(E.el("td", { colspan: "2" }, "None"));
      rows.push(none);
    }
    document.getElementById("errors-body").replaceChildren(...rows);
  }

  function redraw(answer) {
    buckets = answer.buckets;
    const names = labels();
    for (const chart of [counts, failureRate, durations]) chart.data.labels = names;
    ["succeeded", "failed", "started"].forEach((key, i) => { counts.data.datasets[i].data = series(key); });
    failureRate.data.datasets[0].data = rates();
    ["p50_ms", "p95_ms", "p99_ms"].forEach((key, i) => { durations.data.datasets[i].data = series(key); });
    errors.data.labels = errorLabels(answer.total);
    errors.data.datasets[0].data = answer.total.errors.map((e) => e.count);
    const canvas = document.getElementById("chart-errors");
    canvas.parentElement.hidden = !answer.total.errors.length;
    document.getElementById("no-failures").hidden = !!answer.total.errors.length;
    for (const chart of [counts, failureRate, durations, errors]) chart.update();
    setTotals(answer.total);
    setTables(answer.total);
    document.body.dataset.refreshed = answer.until;
  }

  function metricsUrl() {
    const q = new URLSearchParams({ bucket: data.bucket });
    if (data.live_ms) {
      const now = Date.now();
      q.set("since", new Date(now - data.live_ms).toISOString());
      q.set("until", new Date(now).toISOString());
    } else {
      q.set("since", data.buckets[0].start);
      q.set("until", data.buckets[data.buckets.length - 1].end);
    }
    return "/api/state-machines/" + encodeURIComponent(data.state_machine) + "/metrics?" + q.toString();
  }

  async function refetch() {
    let answer;
    try {
      answer = await E.getJson(metricsUrl());
    } catch (e) {
      E.markApi("the numbers could not be read (" + e.message.split(": ").pop() + ")");
      return;
    }
    E.markApi(null);
    redraw(answer);
  }
  const refresh = E.debounce(refetch, 500);

  function ours(msg) {
    const job = msg.event && msg.event.job;
    return typeof job === "string" && job.split(":").slice(2, -1).join(":") === data.state_machine;
  }

  setInterval(refetch, REFRESH_MS);
  E.liveSocket("/ws/events/", (msg) => {
    if (msg.type === "lagged" || (msg.type === "event" && ours(msg))) refresh();
  }, refresh);
})();
