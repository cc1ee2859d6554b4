/* The events page: a row's whole event is read from the API when asked for, shown as text. */
"use strict";
(function () {
  const E = window.edobs;
  document.getElementById("event-body").addEventListener("click", async (e) => {
    const button = e.target.closest("button.show-json");
    if (!button) return;
    const row = button.closest("tr");
    const next = row.nextElementSibling;
    if (next && next.classList.contains("json-row")) {
      next.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const holder = E.el("tr", { class: "json-row" });
    const cell = E.el("td", { colspan: String(row.children.length) });
    const pre = E.el("pre", { class: "json", tabindex: "0" }, "loading…");
    cell.appendChild(pre);
    holder.appendChild(cell);
    row.after(holder);
    button.setAttribute("aria-expanded", "true");
    try {
      pre.textContent = JSON.stringify(await E.getJson(button.dataset.url), null, 2);
    } catch (err) {
      pre.textContent = "Could not load the event: " + err.message;
    }
  });
})();
