/* The job page's replay form: a dry run first, then the replay; answers shown as text only. */
"use strict";
(function () {
  const form = document.getElementById("replay-form");
  if (!form) return;
  const out = document.getElementById("replay-result");
  const send = document.getElementById("replay-send");
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  async function replay(dryRun) {
    out.textContent = dryRun ? "Checking…" : "Replaying…";
    const response = await fetch(form.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({bus: form.elements.bus.value, dry_run: dryRun}),
    });
    const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    out.replaceChildren();
    if (!response.ok) { out.textContent = body.error || `HTTP ${response.status}`; return; }
    if (dryRun) {
      out.textContent = `Would put ${body.count} events on ${body.bus} (${body.skipped} skipped) as a new job.`;
      send.disabled = false;
      return;
    }
    out.textContent = `Sent ${body.sent}, failed ${body.failed}${body.error ? ": " + body.error : ""}. `;
    if (body.new_job) {
      const link = document.createElement("a");
      link.setAttribute("href", `/jobs/${encodeURIComponent(body.new_job)}/`);
      link.textContent = "Open the replay's job";
      out.appendChild(link);
    }
    send.disabled = true;
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); replay(true); });
  form.elements.bus.addEventListener("input", () => { send.disabled = true; });
  send.addEventListener("click", () => replay(false));
})();
