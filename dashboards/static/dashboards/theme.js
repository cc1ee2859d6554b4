/* Loaded in <head> on every page, before the first paint: the colour theme the user chose
   (localStorage "edobs-theme": "dark" or "light"; none: follow prefers-color-scheme), and the
   clock every script writes times with: UTC, or the browser's own zone when the user chose
   local time (<body data-tz>, stored per user on the server). */
"use strict";
(function () {
  let theme = null;
  try { theme = localStorage.getItem("edobs-theme"); } catch (e) { theme = null; }
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;

  const pad = (n, w) => String(n).padStart(w || 2, "0");
  const local = () => !!document.body && document.body.dataset.tz === "local";

  /* "GMT+5:30", "CET", "UTC": the zone's short name at that moment (it changes with DST). */
  function label(date) {
    if (!local()) return "UTC";
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
      .formatToParts(date || new Date()).find((p) => p.type === "timeZoneName");
    return part ? part.value : "local";
  }

  /* "2026-11-20 09:01:54" (with ".123" when ms), in the chosen zone, without its label. */
  function format(value, ms) {
    const date = value instanceof Date ? value : new Date(typeof value === "number" ? value : Date.parse(value));
    if (isNaN(date.getTime())) return "";
    const u = !local();
    const y = u ? date.getUTCFullYear() : date.getFullYear(), mo = u ? date.getUTCMonth() : date.getMonth();
    const d = u ? date.getUTCDate() : date.getDate(), h = u ? date.getUTCHours() : date.getHours();
    const mi = u ? date.getUTCMinutes() : date.getMinutes(), s = u ? date.getUTCSeconds() : date.getSeconds();
    const text = y + "-" + pad(mo + 1) + "-" + pad(d) + " " + pad(h) + ":" + pad(mi) + ":" + pad(s);
    return ms ? text + "." + pad(date.getUTCMilliseconds(), 3) : text;
  }

  window.edobsClock = { local, label, format, wall: (value, ms) => {
    const text = format(value, ms);
    return text ? text + " " + label(new Date(typeof value === "number" ? value : Date.parse(value))) : "";
  } };
})();
