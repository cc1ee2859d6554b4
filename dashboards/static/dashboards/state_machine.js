/* A state machine's charts, drawn by Chart.js from the numbers the page was rendered with (the
   same ones the tables hold). Labels are UTC, like the rest of the page. */
"use strict";
(function () {
  const E = window.edobs;
  const data = E.readJson("sm-data");
  if (!data || !window.Chart) return;
  const Chart = window.Chart;
  Chart.defaults.color = "#667085";
  Chart.defaults.borderColor = "#e3e7ef";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  const COLORS = { started: "#1f6feb", succeeded: "#15803d", failed: "#c62828", p50: "#0072B2", p95: "#D55E00" };
  const sameDay = data.buckets.length && data.buckets[0].start.slice(0, 10) === data.buckets[data.buckets.length - 1].start.slice(0, 10);
  const labels = data.buckets.map((b) => (sameDay ? b.start.slice(11, 16) : b.start.slice(5, 16).replace("T", " ")));
  const series = (key) => data.buckets.map((b) => b[key]);

  new Chart(document.getElementById("chart-counts"), {
    type: "bar",
    data: {
      labels,
      datasets: [
        { type: "bar", label: "succeeded", data: series("succeeded"), backgroundColor: COLORS.succeeded, stack: "done" },
        { type: "bar", label: "failed", data: series("failed"), backgroundColor: COLORS.failed, stack: "done" },
        { type: "line", label: "started", data: series("started"), borderColor: COLORS.started, backgroundColor: COLORS.started, pointRadius: 2, tension: 0.25 },
      ],
    },
    options: { scales: { x: { stacked: true, title: { display: true, text: "UTC" } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
               interaction: { mode: "index", intersect: false } },
  });

  new Chart(document.getElementById("chart-durations"), {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "p50", data: series("p50_ms"), borderColor: COLORS.p50, backgroundColor: COLORS.p50, spanGaps: true, pointRadius: 2 },
        { label: "p95", data: series("p95_ms"), borderColor: COLORS.p95, backgroundColor: COLORS.p95, spanGaps: true, pointRadius: 2 },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { title: { display: true, text: "UTC" } }, y: { beginAtZero: true, ticks: { callback: (v) => E.humanMs(v) } } },
      plugins: { tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + E.humanMs(c.parsed.y) } } },
    },
  });

  const errors = document.getElementById("chart-errors");
  if (errors) {
    new Chart(errors, {
      type: "bar",
      data: {
        labels: data.total.errors.map((e) => e.error || "(no error code)"),
        datasets: [{ label: "failures", data: data.total.errors.map((e) => e.count), backgroundColor: COLORS.failed }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
})();
