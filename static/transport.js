// nvrmon live transport: keeps the page's one live element (#live) connected. The connection indicator, the SSE
// watchdog, the fallback to long-poll, the session (CSRF header, back to login), and the upkeep every live page needs
// after a swap (event list length, keyboard focus, relative times). The only script an embed loads; the operator
// pages add ui.js (toasts, notification center, dialogs, preferences), which uses window.nvrmon below.
// The hub's timings come from this script's own tag (rendered from Settings), so changing NVRMON_SSE_HEARTBEAT or
// NVRMON_POLL_TIMEOUT can never make the watchdog give up on a healthy stream.
(function () {
  "use strict";

  var tag = document.currentScript;
  function setting(name, fallback) {
    var value = tag && tag.dataset ? parseInt(tag.dataset[name], 10) : NaN;
    return value > 0 ? value : fallback;
  }
  var HEARTBEAT_MS = setting("heartbeatMs", 15000);
  var POLL_TIMEOUT_MS = setting("pollTimeoutMs", 25000);
  var timings = Object.freeze({
    heartbeatMs: HEARTBEAT_MS,
    silenceMs: HEARTBEAT_MS * 2.5, // SSE: nothing at all, not even a heartbeat, for this long means a dead stream
    pollSilenceMs: POLL_TIMEOUT_MS + 15000, // poll: the hub answers every poll within poll_timeout; allow the trip
    readyMs: 8000, // SSE: the hub's "ready" event must arrive this soon, or events don't get through (a proxy)
    sseRetryMs: 5 * 60 * 1000 // after falling back to long-poll, try SSE again this often
  });
  var EVENT_LIMIT = 50;

  var state = {
    lastMessage: Date.now(), // last sign of life from the transport
    lastId: null, // the cursor of the last applied change (SSE id or poll cursor)
    attempt: 0, // consecutive failed connection attempts
    started: Date.now(), // when the current #live element was created
    ready: false, // SSE: the hub's ready event arrived on the current stream
    sseRetryAt: 0, // poll mode after a fallback: when to try SSE again
    pending: null, // a scheduled re-creation of #live
    live: null, // the #live element last seen
    skew: 0 // hub clock minus ours, in ms
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

  // One call per attempt to reconnect, so the indicator counts 1, 2, 3 (a failed attempt is followed by the next
  // attempt at once; counting both the failure and the attempt showed only every other number).
  function failing() {
    if (leaving) return;
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
  // The extension announces every reconnect attempt here, after a broken stream and after each failed retry alike;
  // its htmx:sse:error events are therefore not counted again.
  document.addEventListener("htmx:sse:before:connection", function (e) {
    var attempt = e.detail && e.detail.connection ? e.detail.connection.attempt : 0;
    if (attempt > 0) failing();
  });
  document.addEventListener("htmx:sse:before:message", function (e) {
    state.ready = true;
    var msg = e.detail && e.detail.message;
    if (msg && msg.id) state.lastId = msg.id;
    markLive();
  });
  document.addEventListener("heartbeat", function (e) {
    // The hub's clock, so relative times ("2 min ago") stay right on a machine whose clock is off.
    try { state.skew = JSON.parse(e.detail.data).t * 1000 - Date.now(); } catch (err) { /* ignore */ }
  });

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

  // Notifications reach the page three ways: a named SSE "toast" event (dispatched on #live by the extension), a
  // new #toast-inbox element inside the change they belong to, and a poll response's data-toasts. The last two are
  // re-dispatched as the same "toast" event, so ui.js listens to one thing.
  function deliverToasts(json) {
    if (json) document.dispatchEvent(new CustomEvent("toast", { detail: { data: json } }));
  }
  var inboxSeq = 0;
  function readInbox() {
    var inbox = $("toast-inbox");
    var seq = inbox ? Number(inbox.dataset.seq || 0) : 0;
    if (!inbox || !inbox.dataset.toasts || seq <= inboxSeq) return;
    inboxSeq = seq;
    deliverToasts(inbox.dataset.toasts);
  }

  // A poll response replaces #live with a new poller: that is the poll transport's sign of life.
  var initialLive = $("live");
  state.live = initialLive;
  new MutationObserver(function () {
    readInbox();
    var el = $("live");
    if (!el || el === state.live) return;
    state.live = el;
    if (el.dataset.transport !== "poll") return;
    if (el.dataset.cursor) state.lastId = el.dataset.cursor;
    deliverToasts(el.dataset.toasts);
    if (el !== initialLive) markLive();
    if (state.sseRetryAt && Date.now() > state.sseRetryAt) {
      state.sseRetryAt = 0;
      recreate("sse"); // the network may have changed: try the stream again
    }
  }).observe(document.body, { childList: true });

  // The watchdog.
  setInterval(function () {
    var el = $("live");
    if (!el || document.hidden || state.pending) return;
    var now = Date.now();
    if (el.dataset.transport === "sse") {
      if (!state.ready && !state.attempt && now - state.started > timings.readyMs && el.dataset.fallback !== "no") {
        // No error, yet nothing got through: a buffering proxy or a network that holds streams. (A hub that is down
        // fails fast instead, and is retried on the same transport.)
        state.sseRetryAt = now + timings.sseRetryMs;
        recreate("poll");
        setConnection("reconnecting", "Switching to polling");
      } else if (now - state.lastMessage > timings.silenceMs) {
        recreateSoon();
      }
    } else if (now - state.lastMessage > timings.pollSilenceMs) {
      recreateSoon();
    }
  }, 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) state.lastMessage = Date.now(); // the extension reconnects a paused stream itself
  });

  // Firefox and WebKit end a page's fetches before "pagehide" (Chromium after it), while the page is still on screen:
  // a stream or poll that fails because the page is being left is not a broken connection. (The flag lapses in case
  // the navigation was cancelled, e.g. by a download.) WebKit also keeps a page in its back-forward cache despite
  // Cache-Control: no-store and shows it again on Back with its stream gone: start a fresh one from the cursor at once.
  var leaving = false;
  window.addEventListener("beforeunload", function () {
    leaving = true;
    setTimeout(function () { leaving = false; }, 1000);
  });
  window.addEventListener("pageshow", function (e) {
    leaving = false;
    if (!e.persisted) return;
    if (state.pending) { clearTimeout(state.pending); state.pending = null; }
    state.attempt = 0;
    recreate();
  });

  // -- after every swap: bounded event lists, keyboard focus kept ---------------------------------------------
  function trimEvents() {
    document.querySelectorAll("ul.events").forEach(function (list) {
      while (list.children.length > EVENT_LIMIT) list.lastElementChild.remove();
    });
  }
  document.addEventListener("htmx:after:swap", trimEvents);

  // Live updates replace whole rows; a keyboard user focused on a link in one must not be thrown back to the top of
  // the page. Remember the focused link before a swap and focus its twin in the new row afterwards.
  var focusedHref = null;
  document.addEventListener("htmx:before:swap", function () {
    var active = document.activeElement;
    focusedHref = active && active !== document.body && active.getAttribute ? active.getAttribute("href") : null;
  });
  document.addEventListener("htmx:after:swap", function () {
    var active = document.activeElement;
    if (focusedHref && (!active || active === document.body)) {
      var twin = document.querySelector('a[href="' + CSS.escape(focusedHref) + '"]');
      if (twin) twin.focus({ preventScroll: true });
    }
    focusedHref = null;
  });

  // -- relative times, on the hub's clock -------------------------------------------------------------------------
  function relative(iso) {
    var seconds = Math.max(0, Math.round((Date.now() + state.skew - Date.parse(iso)) / 1000));
    if (seconds < 5) return "just now";
    if (seconds >= 86400) return Math.floor(seconds / 86400) + " d ago";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h ago";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min ago";
    return seconds + " s ago";
  }

  function duration(iso) {
    var s = Math.max(0, Math.floor((Date.now() + state.skew - Date.parse(iso)) / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + " d " + h + " h";
    if (h) return h + " h " + m + " min";
    if (m) return m + " min";
    return s + " s";
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-relative]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso) t.textContent = relative(iso);
    });
    document.querySelectorAll("time[data-duration]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso) t.textContent = duration(iso);
    });
  }
  setInterval(refreshTimes, 10000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refreshTimes(); });

  // What ui.js (and tests) may use; nothing else of this file is reachable from outside.
  window.nvrmon = Object.freeze({ timings: timings, recreate: recreate, relative: relative });
})();
