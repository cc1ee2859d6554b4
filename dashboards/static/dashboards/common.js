/* Shared helpers of the edobs pages. Text goes into the page through textContent only. */
"use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function humanMs(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "—";
    ms = Math.max(0, Math.round(ms));
    if (ms < 1000) return ms + " ms";
    if (ms < 10000) return (ms / 1000).toFixed(1) + " s";
    let s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    let m = Math.floor(s / 60); s = s % 60;
    if (m < 60) return s ? m + " min " + s + " s" : m + " min";
    const h = Math.floor(m / 60); m = m % 60;
    return m ? h + " h " + m + " min" : h + " h";
  }

  function relative(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 5) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function refreshRelativeTimes() {
    document.querySelectorAll("time[data-rel]").forEach((t) => {
      const iso = t.getAttribute("datetime");
      if (iso) t.textContent = relative(iso);
    });
  }

  function utc(iso) {
    if (!iso) return "";
    return iso.replace("T", " ").replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, "");
  }

  /* The indicator says what the socket is doing and, once open, what the workers are doing
     (GET /api/health every HEALTH_MS): "live", "worker down" or "backlog growing". */
  const HEALTH_MS = 10000;
  const HEALTH_LABELS = { ok: "live", down: "worker down", degraded: "backlog growing" };
  let socketState = "connecting", health = "ok", healthTimer = null, apiTrouble = null;
  let signedOut = false;
  const CLOSE_UNAUTHENTICATED = 4401;  // events.live.consumers: the session is gone

  /* Signed out (the socket closed with 4401, or an API read answered 401, or 403 "credentials
     not provided"): nothing will get better by retrying, so say so, with a link to sign in
     that comes back here. The socket stops reconnecting. */
  function showSignedOut(box) {
    box.dataset.state = "signed-out";
    box.querySelector(".live-text").textContent = "signed out:";
    box.title = "signed out: sign in again";
    if (box.querySelector(".live-signin")) return;
    const next = location.pathname + location.search + location.hash;
    const login = (box.dataset.login || "/accounts/login/") + "?next=" + encodeURIComponent(next);
    box.append(" ", el("a", { class: "live-signin", href: login }, "sign in again"));
  }

  function markSignedOut() {
    signedOut = true;
    showIndicator();
  }

  /* Never green while the page may be out of date: a closed socket says "disconnected", a
     failed API read (markApi) says "stale" until a read succeeds again. */
  function showIndicator() {
    const box = document.getElementById("live-indicator");
    if (!box) return;
    if (signedOut) { showSignedOut(box); return; }
    const open = socketState === "live";
    let state = open && health !== "ok" ? health : socketState;
    let text = open ? HEALTH_LABELS[health] || "live" : socketState;
    if (socketState === "disconnected") text = "disconnected · reconnecting";
    if (apiTrouble && socketState !== "disconnected") { state = "stale"; text = "stale · " + apiTrouble; }
    box.dataset.state = state;
    box.querySelector(".live-text").textContent = text;
    box.title = text;
  }

  function markApi(trouble) {
    apiTrouble = trouble || null;
    showIndicator();
  }

  function setIndicator(state) {
    socketState = state;
    showIndicator();
  }

  async function checkHealth() {
    try {
      const answer = await getJson("/api/health");
      health = HEALTH_LABELS[answer.status] ? answer.status : "ok";
    } catch (e) {
      health = "ok";  // unknown: the socket's own state is all there is to say
    }
    showIndicator();
  }

  function watchHealth() {
    if (healthTimer || !document.getElementById("live-indicator")) return;
    checkHealth();
    healthTimer = setInterval(checkHealth, HEALTH_MS);
  }

  /* A WebSocket that reconnects with exponential backoff (1 s doubling to 30 s, with jitter). */
  function liveSocket(path, onMessage, onOpen) {
    let delay = 1000, socket = null, closed = false;
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    watchHealth();
    function connect() {
      setIndicator(socket ? "disconnected" : "connecting");
      socket = new WebSocket(url);
      socket.onopen = () => { delay = 1000; setIndicator("live"); if (onOpen) onOpen(); };
      socket.onmessage = (msg) => {
        let data;
        try { data = JSON.parse(msg.data); } catch (e) { return; }
        onMessage(data);
      };
      socket.onclose = (event) => {
        if (closed) return;
        if (event.code === CLOSE_UNAUTHENTICATED) { closed = true; markSignedOut(); return; }
        setIndicator("disconnected");
        const wait = delay * (0.8 + Math.random() * 0.4);
        delay = Math.min(delay * 2, 30000);
        setTimeout(connect, wait);
      };
    }
    connect();
    window.addEventListener("beforeunload", () => { closed = true; if (socket) socket.close(); });
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  /* DRF answers a request without a session 403 "Authentication credentials were not
     provided." (401 with a token scheme); any other 403 is a refusal, not a sign-out. */
  async function isSignedOut(response) {
    if (response.status === 401) return true;
    if (response.status !== 403) return false;
    try {
      const body = await response.clone().json();
      return /credentials were not provided/i.test(String(body.error || body.detail || ""));
    } catch (e) {
      return false;
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      if (await isSignedOut(response)) markSignedOut();
      throw new Error(url + ": " + response.status);
    }
    return response.json();
  }

  window.edobs = { el, svg, readJson, humanMs, relative, refreshRelativeTimes, utc, liveSocket, debounce, getJson, markApi, markSignedOut, isSignedOut };
  refreshRelativeTimes();
  setInterval(refreshRelativeTimes, 5000);
  const windowSelect = document.getElementById("window-select");
  if (windowSelect) {
    const toggle = () => document.querySelectorAll(".custom-range").forEach((n) => { n.hidden = windowSelect.value !== "custom"; });
    windowSelect.addEventListener("change", toggle);
    toggle();
  }
})();
