/* The header's controls on every page: local time or UTC (per user, PUT /api/preferences), the
   dark mode toggle (remembered in this browser), the keyboard shortcuts (/ search, ? help, Esc
   closes), and the times the server wrote (<time data-wall>) rewritten in the chosen zone. */
"use strict";
(function () {
  const clock = window.edobsClock;
  const $ = (id) => document.getElementById(id);

  /* <time datetime=… data-wall> (data-wall="ms": with milliseconds; data-wall="bare": no zone
     label, the column header names it; data-wall="minutes": bare, to the minute) */
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[data-wall]").forEach((t) => {
      const iso = t.getAttribute("datetime");
      if (!iso || isNaN(Date.parse(iso))) return;
      const mode = t.dataset.wall;
      const bare = mode === "bare" || mode === "minutes";
      const text = bare ? clock.format(iso, false).slice(0, mode === "minutes" ? 16 : 19) : clock.wall(iso, mode === "ms");
      if (t.textContent !== text) t.textContent = text;
    });
    document.querySelectorAll("[data-zone-label]").forEach((n) => { n.textContent = clock.label(); });
  }
  localizeTimes();
  window.edobsLocalizeTimes = localizeTimes;

  /* The since/until inputs (<input type=datetime-local data-utc>): the URL and the API hold UTC
     ("2026-11-20T09:00:00", or any ISO time). They show it in the chosen zone (their label says
     which: <span data-zone-label>), and a form sends what was typed back as UTC. */
  const utcInputs = (root) => root.querySelectorAll("input[type=datetime-local][data-utc]");
  function shownValue(raw) {
    if (!raw) return "";
    const iso = /(Z|[+-]\d\d:?\d\d)$/i.test(raw) ? raw : raw + "Z";
    const ms = Date.parse(iso);
    return isNaN(ms) ? raw : clock.format(ms, false).replace(" ", "T");
  }
  function utcValue(shown) {
    if (!shown || !clock.local()) return shown;
    const date = new Date(shown);  // no offset: the browser's own zone
    return isNaN(date.getTime()) ? shown : date.toISOString().slice(0, 19);
  }
  utcInputs(document).forEach((input) => {
    const shown = shownValue(input.getAttribute("value"));
    if (shown && input.value !== shown) input.value = shown;
  });
  document.querySelectorAll("form").forEach((form) => {
    if (!utcInputs(form).length) return;
    form.addEventListener("formdata", (e) => {
      utcInputs(form).forEach((input) => {
        if (input.name && input.value) e.formData.set(input.name, utcValue(input.value));
      });
    });
  });

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
