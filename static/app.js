// nvrmon page glue: connection indicator, stream watchdog, toasts, relative times. No inline script anywhere, so a
// strict Content-Security-Policy can forbid it. htmx and its SSE extension do the swapping; this file only watches.
(function () {
  "use strict";

  var HEARTBEAT_MS = 15000;
  var SILENCE_MS = HEARTBEAT_MS * 2.5; // no message, not even a heartbeat, for this long: the stream is dead
  var TOAST_LIMIT = 4;
  var TOAST_MS = 6000;
  var EVENT_LIMIT = 50;

  var state = { lastMessage: Date.now(), lastId: null, attempt: 0, since: null };

  function $(id) { return document.getElementById(id); }

  function setConnection(mode, text) {
    var el = $("connection");
    if (!el) return;
    el.dataset.state = mode;
    el.querySelector(".conn-text").textContent = text;
    var banner = $("stale-banner");
    if (banner) banner.hidden = !(mode === "reconnecting" || mode === "offline") || state.attempt < 2;
  }

  // -- stream lifecycle (events from htmx 4's hx-sse extension, dispatched on the #live element) ---------------
  document.addEventListener("htmx:sse:after:connection", function () {
    state.attempt = 0;
    state.lastMessage = Date.now();
    setConnection("live", "Live");
  });
  document.addEventListener("htmx:sse:before:connection", function (e) {
    var attempt = e.detail && e.detail.connection ? e.detail.connection.attempt : 0;
    if (attempt > 0) {
      state.attempt = attempt;
      setConnection(attempt >= 4 ? "offline" : "reconnecting", attempt >= 4 ? "Offline, retrying" : "Reconnecting (" + attempt + ")");
    }
  });
  document.addEventListener("htmx:sse:error", function () {
    state.attempt += 1;
    setConnection(state.attempt >= 4 ? "offline" : "reconnecting", state.attempt >= 4 ? "Offline, retrying" : "Reconnecting (" + state.attempt + ")");
  });
  document.addEventListener("htmx:sse:before:message", function (e) {
    state.lastMessage = Date.now();
    var msg = e.detail && e.detail.message;
    if (msg && msg.id) state.lastId = msg.id;
    var conn = $("connection");
    if (conn && conn.dataset.state !== "live") { state.attempt = 0; setConnection("live", "Live"); }
  });
  document.addEventListener("htmx:after:swap", trimEvents);

  // htmx 4 retries a stream that broke, but not a first request that failed (server down when the page loaded),
  // and a wedged fetch never ends by itself. Both are covered by re-creating the connect element.
  document.addEventListener("htmx:error", function (e) {
    if (e.target && e.target.id === "live") reconnectSoon();
  });
  var pending = null;
  function reconnectSoon() {
    if (pending) return;
    state.attempt += 1;
    setConnection(state.attempt >= 4 ? "offline" : "reconnecting", state.attempt >= 4 ? "Offline, retrying" : "Reconnecting (" + state.attempt + ")");
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempt - 1)) * (0.7 + Math.random() * 0.6);
    pending = setTimeout(function () { pending = null; recreate(); }, delay);
  }
  function recreate() {
    var old = $("live");
    if (!old) return;
    var fresh = old.cloneNode(false);
    var url = old.dataset.eventsUrl;
    if (state.lastId) url = url.replace(/([?&])since=[^&]*/, "$1since=" + encodeURIComponent(state.lastId));
    fresh.setAttribute("hx-sse:connect", url);
    state.lastMessage = Date.now();
    old.replaceWith(fresh);
    htmx.process(fresh);
  }
  setInterval(function () {
    if (!$("live") || document.hidden) return;
    if (Date.now() - state.lastMessage > SILENCE_MS) reconnectSoon();
  }, 5000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) state.lastMessage = Date.now(); // the extension reconnects a paused stream itself
  });

  // -- named events ------------------------------------------------------------------------------------------
  document.addEventListener("toast", function (e) {
    var items;
    try { items = JSON.parse(e.detail.data); } catch (err) { return; }
    items.forEach(showToast);
  });

  function showToast(t) {
    var box = $("toasts");
    if (!box) return;
    while (box.children.length >= TOAST_LIMIT) box.firstElementChild.remove();
    var el = document.createElement("div");
    el.className = "toast toast-" + (t.level || "info");
    el.setAttribute("role", t.level === "error" ? "alert" : "status");
    var icon = document.createElement("span");
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = { success: "✓", error: "✕", warning: "!", info: "i" }[t.level] || "i";
    var text = document.createElement("div");
    var title = document.createElement("div");
    title.className = "toast-title";
    title.textContent = t.title || "";
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = t.body || "";
    text.append(title, body);
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { el.remove(); });
    el.append(icon, text, close);
    box.append(el);
    setTimeout(function () { el.remove(); }, TOAST_MS);
  }

  // -- housekeeping ----------------------------------------------------------------------------------------
  function trimEvents() {
    var list = $("event-list");
    while (list && list.children.length > EVENT_LIMIT) list.lastElementChild.remove();
  }

  function relative(iso) {
    var seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 5) return "just now";
    if (seconds >= 86400) return Math.floor(seconds / 86400) + " d ago";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h ago";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min ago";
    return seconds + " s ago";
  }
  setInterval(function () {
    document.querySelectorAll("time[data-relative]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso) t.textContent = relative(iso);
    });
  }, 10000);
})();
