/* The header's controls on every page: local time or UTC (per user, PUT /api/preferences), the
   dark mode toggle (remembered in this browser), the keyboard shortcuts (/ search, ? help, Esc
   closes), and the times the server wrote (<time data-wall>) rewritten in the chosen zone. */
"use strict";
(function () {
  const clock = window.edobsClock;
  const $ = (id) => document.getElementById(id);

  /* <time datetime=… data-wall> (data-wall="ms": with milliseconds; data-wall="bare": no zone
     label, the column header names it) */
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[data-wall]").forEach((t) => {
      const iso = t.getAttribute("datetime");
      if (!iso || isNaN(Date.parse(iso))) return;
      const mode = t.dataset.wall;
      const text = mode === "bare" ? clock.format(iso, false) : clock.wall(iso, mode === "ms");
      if (t.textContent !== text) t.textContent = text;
    });
    document.querySelectorAll("[data-zone-label]").forEach((n) => { n.textContent = clock.label(); });
  }
  localizeTimes();
  window.edobsLocalizeTimes = localizeTimes;

  const tz = $("tz-toggle");
  if (tz) {
    tz.addEventListener("click", async () => {
      const next = clock.local() ? "utc" : "local";
      const token = document.querySelector("input[name=csrfmiddlewaretoken]");
      tz.disabled = true;
      try {
        const answer = await fetch(tz.dataset.url, {
          method: "PUT", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
          body: JSON.stringify({ time_zone: next }),
        });
        if (!answer.ok) throw new Error(String(answer.status));
        location.reload();
      } catch (e) {
        tz.disabled = false;
        tz.title = "Could not save the choice (" + e.message + ")";
      }
    });
  }

  /* Dark mode: the stored choice, else the system's. */
  const themeButton = $("theme-toggle");
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)");
  const isDark = () => (document.documentElement.dataset.theme || (systemDark.matches ? "dark" : "light")) === "dark";
  function showTheme() {
    if (!themeButton) return;
    const dark = isDark();
    themeButton.setAttribute("aria-pressed", dark ? "true" : "false");
    themeButton.textContent = dark ? "Light" : "Dark";
    themeButton.title = dark ? "Switch to light mode" : "Switch to dark mode";
  }
  if (themeButton) {
    themeButton.addEventListener("click", () => {
      const next = isDark() ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try { localStorage.setItem("edobs-theme", next); } catch (e) { /* private mode: this page only */ }
      showTheme();
      document.dispatchEvent(new CustomEvent("edobs:theme"));
    });
    systemDark.addEventListener("change", showTheme);
    showTheme();
  }

  /* Keyboard shortcuts: never while typing. */
  const help = $("shortcuts-help");
  const typing = (node) => node && (node.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(node.tagName));
  function searchBox() {
    return document.querySelector("[data-shortcut-search]") ||
      document.querySelector('main input[type="search"], main input[name="q"], main input[type="text"]');
  }
  function openHelp() {
    if (help && !help.open) help.showModal();
  }
  if ($("help-open")) $("help-open").addEventListener("click", openHelp);
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (e.key === "?") { e.preventDefault(); openHelp(); return; }
    if (e.key === "/" && !(help && help.open)) {
      const box = searchBox();
      if (!box) return;
      e.preventDefault();
      const details = box.closest("details");
      if (details) details.open = true;
      box.focus();
      if (box.select) box.select();
    }
  });

  /* Phone: a page's filters start folded (<details class="filters-fold" open> on wide screens). */
  if (window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details.filters-fold[data-fold-phone]").forEach((d) => {
      if (!d.querySelector(".alert")) d.open = false;
    });
  }
})();
