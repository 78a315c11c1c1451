// nvrmon interface extras for the operator pages: preferences, notification center, sound, toasts, and dialogs (a
// device's detail over a list page). No inline script anywhere, so a strict Content-Security-Policy can forbid it.
// transport.js keeps the page live and hands this file notifications as "toast" events; window.nvrmon is its API.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  // -- preferences (per browser) -------------------------------------------------------------------------------
  var PREFS_KEY = "nvrmon.prefs";
  var DEFAULT_PREFS = {
    theme: "auto", toasts: true, duration: 6000, sound: false,
    levels: { error: true, warning: true, success: true, info: true }
  };

  function loadPrefs() {
    var p = {};
    try { p = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {}; } catch (err) { p = {}; }
    var out = Object.assign({}, DEFAULT_PREFS, p);
    out.levels = Object.assign({}, DEFAULT_PREFS.levels, p.levels || {});
    return out;
  }
  var prefs = loadPrefs();

  function savePrefs() {
    try { localStorage.setItem(PREFS_KEY, JSON.stringify(prefs)); } catch (err) { /* private mode: session only */ }
    applyTheme();
  }

  function applyTheme() {
    var root = document.documentElement;
    if (prefs.theme === "light" || prefs.theme === "dark") root.dataset.theme = prefs.theme;
    else delete root.dataset.theme;
  }

  function bindPrefsForm() {
    var form = $("prefs-form");
    if (!form) return;
    function fill() {
      form.elements.theme.value = prefs.theme;
      form.elements.toasts.checked = prefs.toasts;
      form.elements.sound.checked = prefs.sound;
      form.elements.duration.value = String(prefs.duration);
      ["error", "warning", "success", "info"].forEach(function (l) { form.elements["level-" + l].checked = !!prefs.levels[l]; });
    }
    fill();
    form.addEventListener("change", function () {
      prefs.theme = form.elements.theme.value || "auto";
      prefs.toasts = form.elements.toasts.checked;
      prefs.duration = parseInt(form.elements.duration.value, 10) || 0;
      ["error", "warning", "success", "info"].forEach(function (l) { prefs.levels[l] = form.elements["level-" + l].checked; });
      var wantSound = form.elements.sound.checked;
      if (wantSound && !prefs.sound) unlockAudio(); // a click: the one moment browsers let a page start audio
      prefs.sound = wantSound;
      savePrefs();
    });
    $("sound-test").addEventListener("click", function () { unlockAudio(); beep(); });
    window.addEventListener("storage", function (e) { // another tab changed them
      if (e.key === PREFS_KEY) { prefs = loadPrefs(); applyTheme(); fill(); }
    });
  }

  // -- notification center (recent notifications, kept in this browser for the signed-in operator) -------------
  // Keyed by the user the page was rendered for, and removed at logout: what one operator was told is never shown
  // on the login page or to the next person who signs in on this browser.
  var NOTES_PREFIX = "nvrmon.notifications";
  var NOTES_MAX = 100;
  var user = document.body.dataset.user || "";
  var NOTES_KEY = user ? NOTES_PREFIX + "." + user : "";

  function loadNotes() {
    if (!NOTES_KEY) return [];
    try { return JSON.parse(localStorage.getItem(NOTES_KEY) || "[]") || []; } catch (err) { return []; }
  }
  function saveNotes(notes) {
    if (!NOTES_KEY) return;
    try { localStorage.setItem(NOTES_KEY, JSON.stringify(notes.slice(0, NOTES_MAX))); } catch (err) { /* ignore */ }
    renderNotes();
  }

  function forgetNotes() {
    try {
      localStorage.removeItem(NOTES_PREFIX); // the browser-wide list kept before notifications were per user
      if (NOTES_KEY) localStorage.removeItem(NOTES_KEY);
    } catch (err) { /* storage unavailable: nothing was kept */ }
  }

  function record(t) {
    if (!NOTES_KEY) return; // no one signed in: nobody to tell
    var notes = loadNotes();
    var now = Date.now();
    // Every open tab of this browser receives the same notification: keep one.
    for (var i = 0; i < notes.length && now - notes[i].at < 5000; i++) {
      var n = notes[i];
      if (n.title === (t.title || "") && n.body === (t.body || "") && n.level === (t.level || "info")) return;
    }
    notes.unshift({ id: now.toString(36) + Math.random().toString(36).slice(2, 6), level: t.level || "info",
      title: t.title || "", body: t.body || "", at: now, read: false });
    saveNotes(notes);
  }

  function renderNotes() {
    var notes = loadNotes();
    var unread = notes.filter(function (n) { return !n.read; }).length;
    var badge = $("unread");
    if (badge) {
      badge.textContent = unread > 99 ? "99+" : String(unread);
      badge.dataset.count = String(unread);
      badge.hidden = unread === 0;
      var bell = $("bell");
      if (bell) bell.setAttribute("aria-label", "Notifications, " + unread + " unread");
    }
    var list = $("notif-list");
    if (!list) return;
    list.textContent = "";
    notes.forEach(function (n) {
      var li = document.createElement("li");
      li.className = "notif notif-" + n.level + (n.read ? "" : " unread");
      li.dataset.id = n.id;
      li.dataset.level = n.level;
      var icon = document.createElement("span");
      icon.className = "notif-icon";
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = ICONS[n.level] || "i";
      var text = document.createElement("div");
      text.className = "notif-text";
      var title = document.createElement("div");
      title.className = "notif-title";
      title.textContent = n.title;
      var body = document.createElement("div");
      body.className = "notif-body";
      body.textContent = n.body;
      var when = document.createElement("time");
      when.dateTime = new Date(n.at).toISOString();
      when.setAttribute("data-relative", "");
      when.textContent = window.nvrmon.relative(when.dateTime);
      text.append(title, body, when);
      var mark = document.createElement("button");
      mark.type = "button";
      mark.className = "btn btn-small btn-quiet notif-mark";
      mark.textContent = n.read ? "Mark unread" : "Mark read";
      mark.setAttribute("aria-label", (n.read ? "Mark unread: " : "Mark read: ") + n.title);
      mark.addEventListener("click", function () { setRead(n.id, !n.read); });
      li.append(icon, text, mark);
      list.append(li);
    });
    var center = $("notif-center");
    if (center) center.classList.toggle("has-notes", notes.length > 0);
  }

  function setRead(id, read) {
    var notes = loadNotes();
    notes.forEach(function (n) { if (id === null || n.id === id) n.read = read; });
    saveNotes(notes);
  }

  // -- sound: a short WebAudio beep, played by one tab of this browser only -------------------------------------
  var audio = null;
  var soundLeader = false;
  var tabId = Math.random().toString(36).slice(2);

  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
  }
  // Browsers only start audio after a user gesture; a wall display gets one the first time anyone touches it.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { if (prefs.sound) unlockAudio(); }, { once: true, capture: true });
  });

  function beep() {
    if (!audio) return;
    var t = audio.currentTime;
    [0, 0.22].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, t + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.2);
    });
    document.documentElement.dataset.beeps = String((parseInt(document.documentElement.dataset.beeps || "0", 10) || 0) + 1);
  }

  function setLeader(yes) {
    soundLeader = yes;
    document.documentElement.dataset.soundLeader = yes ? "yes" : "no";
  }

  var leaderRequests = 0;
  function electSoundLeader() {
    setLeader(false);
    if (navigator.locks && navigator.locks.request) {
      // Held until this tab closes; the next tab waiting for it takes over.
      // WebKit drops the lock, rejecting the request, when the page enters its back-forward cache; on Back the page
      // asks again (pageshow below). Only the newest request may change this tab's role.
      var request = ++leaderRequests;
      navigator.locks.request("nvrmon-sound", function () {
        if (request === leaderRequests) setLeader(true);
        return new Promise(function () {});
      }).catch(function () {
        if (request === leaderRequests) setLeader(false);
      });
      return;
    }
    // No Web Locks (plain-http LAN address): a lease in localStorage, renewed by the holder every 2 s.
    var LEASE = "nvrmon.soundLeader";
    function claim() {
      var now = Date.now();
      var lease = null;
      try { lease = JSON.parse(localStorage.getItem(LEASE) || "null"); } catch (err) { lease = null; }
      if (!lease || lease.tab === tabId || now - lease.at > 5000) {
        try { localStorage.setItem(LEASE, JSON.stringify({ tab: tabId, at: now })); } catch (err) { /* ignore */ }
      }
      try { lease = JSON.parse(localStorage.getItem(LEASE) || "null"); } catch (err) { lease = null; }
      setLeader(!!lease && lease.tab === tabId);
    }
    claim();
    setInterval(claim, 2000);
    window.addEventListener("pagehide", function () {
      if (soundLeader) try { localStorage.removeItem(LEASE); } catch (err) { /* ignore */ }
    });
  }

  function isAlarm(t) {
    return t.level === "error"; // offline, and error/critical alerts (the hub maps both to "error")
  }

  // -- toasts: buffered, folded, at most a few on screen ---------------------------------------------------------
  var ICONS = { success: "✓", error: "✕", warning: "!", info: "i" };
  var MAX_VISIBLE = 3;
  var QUIET_MS = 350; // toasts arriving closer together than this are one burst
  var MAX_WAIT_MS = 1200; // a long burst still shows within this
  var FOLD_AT = 3; // a burst of this many or more becomes one summarising toast
  var NAMED = 2; // devices named per group in a summary (as the hub's own summaries do)
  var pending = [];
  var burstStarted = 0;
  var flushTimer = null;

  document.addEventListener("toast", function (e) {
    var items;
    try { items = JSON.parse(e.detail.data); } catch (err) { return; }
    items.forEach(notify);
  });

  function notify(t) {
    record(t);
    if (prefs.sound && soundLeader && isAlarm(t)) beep();
    if (!prefs.toasts || !prefs.levels[t.level || "info"]) return;
    pending.push(t);
    var now = Date.now();
    if (!burstStarted) burstStarted = now;
    clearTimeout(flushTimer);
    flushTimer = setTimeout(flushToasts, now - burstStarted >= MAX_WAIT_MS ? 0 : QUIET_MS);
  }

  function weigh(t) {
    // The hub already folds a large commit into "N changes" with "x went offline, y came online, z alerts".
    var counts = { down: 0, up: 0, deg: 0, rec: 0, other: 0 };
    var m = /^(\d+) changes$/.exec(t.title || "");
    if (m) {
      var body = t.body || "";
      counts.down = +((/(\d+) went offline/.exec(body) || [0, 0])[1]);
      counts.up = +((/(\d+) came online/.exec(body) || [0, 0])[1]);
      counts.deg = +((/(\d+) degraded/.exec(body) || [0, 0])[1]);
      counts.rec = +((/(\d+) no longer degraded/.exec(body) || [0, 0])[1]);
      counts.other = +((/(\d+) alerts/.exec(body) || [0, 0])[1]);
      if (!counts.down && !counts.up && !counts.deg && !counts.rec && !counts.other) counts.other = +m[1];
    } else if (t.change === "degraded") counts.deg = 1; // a device's health (not a flip): named apart
    else if (t.change === "recovered") counts.rec = 1;
    else if (t.level === "error") counts.down = 1;
    else if (t.level === "success") counts.up = 1;
    else counts.other = 1;
    return counts;
  }

  function flushToasts() {
    var items = pending;
    pending = [];
    burstStarted = 0;
    var sum = { down: 0, up: 0, deg: 0, rec: 0, other: 0 };
    items.forEach(function (t) { var w = weigh(t); for (var k in sum) sum[k] += w[k]; });
    var total = sum.down + sum.up + sum.deg + sum.rec + sum.other;
    // One toast, or a couple of small ones, show as they are; anything more (counting the changes inside the hub's
    // own summaries) becomes one summary.
    if (items.length === 1 || total < FOLD_AT) { items.forEach(showToast); return; }
    // Name the first few devices of each group (the hub's own summaries are counted, their names are inside them).
    var names = { down: [], up: [], deg: [], rec: [] };
    items.forEach(function (t) {
      if (!t.device || /^(\d+) changes$/.test(t.title || "")) return;
      if (t.change === "degraded") names.deg.push(t.device);
      else if (t.change === "recovered") names.rec.push(t.device);
      else if (t.level === "error") names.down.push(t.device);
      else if (t.level === "success") names.up.push(t.device);
    });
    function group(count, named, verb) {
      if (!named.length) return count + " " + verb;
      var shown = named.slice(0, NAMED);
      var rest = count - shown.length;
      return count + " " + verb + ": " + shown.join(", ") + (rest > 0 ? " and " + rest + " more" : "");
    }
    var parts = [];
    if (sum.down) parts.push(group(sum.down, names.down, "went offline"));
    if (sum.up) parts.push(group(sum.up, names.up, "came online"));
    if (sum.deg) parts.push(group(sum.deg, names.deg, "degraded"));
    if (sum.rec) parts.push(group(sum.rec, names.rec, "no longer degraded"));
    if (sum.other) parts.push(sum.other + " alerts");
    var cameras = items.some(function (t) { return t.kind === "camera"; });
    showToast({
      level: sum.down ? "error" : sum.other || sum.deg ? "warning" : "success",
      title: total + " changes",
      body: parts.join("; "),
      link: sum.down ? (cameras ? "/cameras?status=offline" : "/nvrs?status=offline") : "",
      summary: true
    });
  }

  function showToast(t) {
    var box = $("toasts");
    if (!box) return;
    while (box.children.length >= MAX_VISIBLE) box.firstElementChild.remove();
    var el = document.createElement("div");
    el.className = "toast toast-" + (t.level || "info") + (t.summary ? " toast-summary" : "");
    el.dataset.level = t.level || "info";
    el.setAttribute("role", t.level === "error" ? "alert" : "status");
    var icon = document.createElement("span");
    icon.className = "toast-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[t.level] || "i";
    var text = document.createElement("div");
    var title = document.createElement("div");
    title.className = "toast-title";
    title.textContent = t.title || "";
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = t.body || "";
    text.append(title, body);
    if (t.link && t.link.charAt(0) === "/") { // a burst summary links the filtered list naming the rest
      var link = document.createElement("a");
      link.className = "toast-link";
      link.href = t.link;
      link.textContent = "Show them all";
      text.append(link);
    }
    if (t.summary) {
      var more = document.createElement("button");
      more.type = "button";
      more.className = "toast-more";
      more.textContent = "Show all in notifications";
      more.addEventListener("click", function () { el.remove(); openDialog($("notif-center"), $("bell")); });
      text.append(more);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss notification: " + (t.title || ""));
    close.textContent = "×";
    close.addEventListener("click", function () { el.remove(); });
    el.append(icon, text, close);
    box.append(el);
    if (prefs.duration > 0) {
      var hide = function () {
        // Never pull a toast away from under the pointer or keyboard focus.
        if (el.matches(":hover") || el.contains(document.activeElement)) setTimeout(hide, 1500);
        else el.remove();
      };
      setTimeout(hide, prefs.duration);
    }
  }

  // -- dialogs: detail of a device over a list page, notification center, preferences ---------------------------
  var opener = null;

  function openDialog(dialog, from) {
    if (!dialog) return;
    opener = from || document.activeElement;
    if (!dialog.open) dialog.showModal(); // modal: the page behind is inert (focus stays inside), Esc closes
    var first = dialog.querySelector("[data-close]");
    if (first) first.focus();
  }

  document.addEventListener("click", function (e) {
    var closer = e.target.closest && e.target.closest("dialog [data-close]");
    if (closer) { closer.closest("dialog").close(); return; }
    if (e.target instanceof HTMLDialogElement && e.target.open) {
      // A click on the backdrop (outside the dialog box) closes it.
      var r = e.target.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) e.target.close();
      return;
    }
    var link = e.target.closest && e.target.closest("a[data-modal]");
    if (link && !e.defaultPrevented && e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && !e.altKey) {
      if (openDetail(link)) e.preventDefault();
    }
  });

  function listKind() {
    var live = $("live");
    var m = live && /[?&]view=(\w+)/.exec(live.dataset.eventsUrl || "");
    return m ? m[1] : "";
  }

  // The list page's view with `detail=<id>` added or removed, in the stream's `id` parameter.
  function withDetail(url, id) {
    var u = new URL(url, location.href);
    var scope = new URLSearchParams(u.searchParams.get("id") || "");
    if (id) scope.set("detail", id); else scope.delete("detail");
    var s = scope.toString();
    if (s) u.searchParams.set("id", s); else u.searchParams.delete("id");
    return u.pathname + "?" + u.searchParams.toString();
  }

  function switchDetail(id) {
    var live = $("live");
    if (!live) return;
    live.dataset.eventsUrl = withDetail(live.dataset.eventsUrl, id);
    live.dataset.pollUrl = withDetail(live.dataset.pollUrl, id);
    // Resumes from the last applied cursor: whatever changed while the detail loaded is replayed, not lost.
    window.nvrmon.recreate();
  }

  function openDetail(link) {
    var kind = link.dataset.modal;
    var onList = (kind === "nvr" && listKind() === "nvrs") || (kind === "camera" && listKind() === "cameras");
    var dialog = $("detail");
    if (!onList || !dialog || typeof dialog.showModal !== "function") return false;
    var id = (/\/(\d+)$/.exec(link.pathname) || [])[1];
    if (!id) return false;
    var from = link;
    fetch(link.pathname + "?fragment=detail", { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var body = $("detail-body");
        body.innerHTML = html; // our own server-rendered fragment, escaped by Jinja
        var root = body.firstElementChild;
        $("detail-title").textContent = (root && root.dataset.title) || "Details";
        dialog.querySelector("[data-detail-page]").href = (root && root.dataset.page) || link.href;
        dialog.dataset.detail = id;
        openDialog(dialog, from);
        switchDetail(id);
      })
      .catch(function () { location.href = link.href; }); // the page has the same content
    return true;
  }

  function bindDialogs() {
    var detail = $("detail");
    if (detail) {
      detail.addEventListener("close", function () {
        if (detail.dataset.detail) {
          delete detail.dataset.detail;
          $("detail-body").textContent = "";
          switchDetail(0);
        }
      });
    }
    document.querySelectorAll("dialog").forEach(function (d) {
      d.addEventListener("close", function () {
        // Focus returns to what opened the dialog; a live update may have replaced that row meanwhile, so find its twin.
        var target = opener;
        if (target && !document.contains(target) && target.getAttribute && target.getAttribute("href")) {
          target = document.querySelector('a[href="' + CSS.escape(target.getAttribute("href")) + '"]');
        }
        if (target && document.contains(target)) target.focus();
        opener = null;
      });
    });
    var bell = $("bell");
    var prefsButton = $("prefs-open");
    if (bell && NOTES_KEY) {
      bell.hidden = false;
      bell.addEventListener("click", function () { openDialog($("notif-center"), bell); });
    }
    if (prefsButton) {
      prefsButton.hidden = false;
      prefsButton.addEventListener("click", function () { openDialog($("prefs"), prefsButton); });
    }
    var readAll = $("notif-read-all");
    if (readAll) readAll.addEventListener("click", function () { setRead(null, true); });
    var clear = $("notif-clear");
    if (clear) clear.addEventListener("click", function () { saveNotes([]); });
    window.addEventListener("storage", function (e) { if (NOTES_KEY && e.key === NOTES_KEY) renderNotes(); });
    var logout = document.querySelector("form.account");
    if (logout) logout.addEventListener("submit", forgetNotes);
  }

  function init() {
    applyTheme();
    bindPrefsForm();
    bindDialogs();
    renderNotes();
    electSoundLeader();
    window.addEventListener("pageshow", function (e) {
      if (e.persisted && navigator.locks && navigator.locks.request) electSoundLeader();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
