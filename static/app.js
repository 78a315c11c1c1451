// nvrmon page glue: connection indicator, transport watchdog and fallback, toasts, relative times. No inline script
// anywhere, so a strict Content-Security-Policy can forbid it. htmx and its SSE extension do the swapping; this file
// watches the one live element (#live) and replaces it when its transport is stuck or can't get through.
(function () {
  "use strict";

  var HEARTBEAT_MS = 15000;
  var SILENCE_MS = HEARTBEAT_MS * 2.5; // SSE: nothing at all, not even a heartbeat, for this long means a dead stream
  var POLL_SILENCE_MS = 40000; // poll: the hub answers every poll within 25 s
  var READY_MS = 8000; // SSE: the hub's "ready" event must arrive this soon, or events don't get through (a proxy)
  var SSE_RETRY_MS = 5 * 60 * 1000; // after falling back to long-poll, try SSE again this often
  var TOAST_LIMIT = 4;
  var TOAST_MS = 6000;
  var EVENT_LIMIT = 50;

  var state = {
    lastMessage: Date.now(), // last sign of life from the transport
    lastId: null, // the cursor of the last applied change (SSE id or poll cursor)
    attempt: 0, // consecutive failures
    started: Date.now(), // when the current #live element was created
    ready: false, // SSE: the hub's ready event arrived on the current stream
    sseRetryAt: 0, // poll mode after a fallback: when to try SSE again
    pending: null, // a scheduled re-creation of #live
    live: null // the #live element last seen
  };

  function $(id) { return document.getElementById(id); }

  function setConnection(mode, text) {
    var el = $("connection");
    if (!el) return;
    el.dataset.state = mode;
    el.querySelector(".conn-text").textContent = text;
    var banner = $("stale-banner");
    if (banner) banner.hidden = !(mode === "reconnecting" || mode === "offline") || state.attempt < 2;
  }

  function markLive() {
    state.lastMessage = Date.now();
    var indicator = $("connection"); // absent on embeds
    if (state.attempt || (indicator && indicator.dataset.state !== "live")) {
      state.attempt = 0;
      var el = $("live");
      setConnection("live", el && el.dataset.transport === "poll" ? "Live (polling)" : "Live");
    }
  }

  function failing() {
    state.attempt += 1;
    if (state.attempt >= 4) setConnection("offline", "Offline, retrying");
    else setConnection("reconnecting", "Reconnecting (" + state.attempt + ")");
  }

  // -- session: CSRF token on state-changing requests; back to the login page when the session has ended -------
  document.addEventListener("htmx:config:request", function (e) {
    var request = e.detail && e.detail.ctx && e.detail.ctx.request;
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (request && meta && !/^(GET|HEAD|OPTIONS)$/i.test(request.method || "GET")) {
      request.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });

  function sessionEnded(status) {
    if (document.body.hasAttribute("data-embed")) {
      // An embed has no login: its token expired or was revoked (404), or this portal isn't allowed (403).
      var notice = $("embed-unavailable");
      if (notice && (status === 403 || status === 404)) notice.hidden = false;
      return;
    }
    if (status === 401) window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
  document.addEventListener("htmx:response:error", function (e) {
    var ctx = e.detail && e.detail.ctx;
    if (ctx && ctx.response) sessionEnded(ctx.response.status);
  });
  document.addEventListener("htmx:sse:error", function (e) {
    if (e.detail) sessionEnded(e.detail.status);
  });

  // -- SSE lifecycle (htmx 4's hx-sse extension dispatches these on #live; they bubble to document) --------------
  document.addEventListener("htmx:sse:before:connection", function (e) {
    var attempt = e.detail && e.detail.connection ? e.detail.connection.attempt : 0;
    if (attempt > 0) failing();
  });
  document.addEventListener("htmx:sse:error", failing);
  document.addEventListener("htmx:sse:before:message", function (e) {
    state.ready = true;
    var msg = e.detail && e.detail.message;
    if (msg && msg.id) state.lastId = msg.id;
    markLive();
  });
  document.addEventListener("htmx:after:swap", trimEvents);

  // htmx 4 retries an SSE stream that broke, but not a first request that failed (hub down when the page loaded),
  // and a wedged fetch never ends by itself; a poll that failed isn't retried either. All are covered by re-creating
  // #live after a backoff with jitter.
  document.addEventListener("htmx:error", function (e) {
    if (e.target && e.target.id === "live") recreateSoon();
  });

  function recreateSoon() {
    if (state.pending) return;
    failing();
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempt - 1)) * (0.7 + Math.random() * 0.6);
    state.pending = setTimeout(function () { state.pending = null; recreate(); }, delay);
  }

  function cursorUrl(url) {
    return state.lastId ? url.replace(/([?&])since=[^&]*/, "$1since=" + encodeURIComponent(state.lastId)) : url;
  }

  // Replace #live with a fresh element of the given transport, stopping the old one properly first (a removed SSE
  // element would otherwise keep its fetch open, holding one of the browser's few connections per host).
  function recreate(transport) {
    var old = $("live");
    if (!old) return;
    transport = transport || old.dataset.transport;
    var fresh = document.createElement("div");
    fresh.id = "live";
    ["eventsUrl", "pollUrl", "fallback"].forEach(function (k) { if (old.dataset[k]) fresh.dataset[k] = old.dataset[k]; });
    fresh.dataset.transport = transport;
    if (transport === "poll") {
      fresh.setAttribute("hx-get", cursorUrl(old.dataset.pollUrl) + "&wait=0"); // answer at once: proves the path
      fresh.setAttribute("hx-trigger", "load");
      fresh.setAttribute("hx-swap", "outerHTML");
    } else {
      fresh.setAttribute("hx-sse:connect", cursorUrl(old.dataset.eventsUrl));
      fresh.setAttribute("hx-swap", "none");
    }
    old.removeAttribute("hx-sse:connect");
    old.removeAttribute("hx-get");
    htmx.process(old, true); // runs htmx's cleanup, which aborts the old stream
    old.replaceWith(fresh);
    state.started = Date.now();
    state.ready = false;
    state.lastMessage = Date.now();
    htmx.process(fresh);
  }

  // A poll response replaces #live with a new poller: that is the poll transport's sign of life.
  new MutationObserver(function () {
    var el = $("live");
    if (!el || el === state.live) return;
    state.live = el;
    if (el.dataset.transport !== "poll") return;
    if (el.dataset.cursor) state.lastId = el.dataset.cursor;
    if (el.dataset.toasts) {
      try { JSON.parse(el.dataset.toasts).forEach(showToast); } catch (err) { /* malformed: ignore */ }
    }
    if (el !== initialLive) markLive();
    if (state.sseRetryAt && Date.now() > state.sseRetryAt) {
      state.sseRetryAt = 0;
      recreate("sse"); // the network may have changed: try the stream again
    }
  }).observe(document.body, { childList: true });
  var initialLive = $("live");
  state.live = initialLive;

  setInterval(function () {
    var el = $("live");
    if (!el || document.hidden || state.pending) return;
    var now = Date.now();
    if (el.dataset.transport === "sse") {
      if (!state.ready && !state.attempt && now - state.started > READY_MS && el.dataset.fallback !== "no") {
        // No error, yet nothing got through: a buffering proxy or a network that holds streams. (A hub that is down
        // fails fast instead, and is retried on the same transport.)
        state.sseRetryAt = now + SSE_RETRY_MS;
        recreate("poll");
        setConnection("reconnecting", "Switching to polling");
      } else if (now - state.lastMessage > SILENCE_MS) {
        recreateSoon();
      }
    } else if (now - state.lastMessage > POLL_SILENCE_MS) {
      recreateSoon();
    }
  }, 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) state.lastMessage = Date.now(); // the extension reconnects a paused stream itself
  });

  // -- named events --------------------------------------------------------------------------------------------
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

  // -- housekeeping --------------------------------------------------------------------------------------------
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
