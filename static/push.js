// /notifications: subscribe this browser to the hub's Web Push alerts (service worker, VAPID key, POST to the hub).
(function () {
  "use strict";
  const button = document.getElementById("push-subscribe");
  const status = document.getElementById("push-status");
  if (!button || !status) return;
  const say = (text) => { status.textContent = text; };
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("This browser cannot receive push notifications.");
    return;
  }
  button.hidden = false;

  // The VAPID public key comes base64url-encoded; pushManager.subscribe wants its bytes.
  function bytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  function label() {
    const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "";
    return platform.slice(0, 24);
  }

  // The worker's scope is /static/ (it only shows pushes), so serviceWorker.ready, which waits for a worker that
  // controls this page, never resolves: wait for this registration's own worker instead.
  function activated(registration) {
    const worker = registration.installing || registration.waiting;
    if (registration.active || !worker) return Promise.resolve(registration);
    return new Promise((resolve) => {
      worker.addEventListener("statechange", () => { if (worker.state === "activated") resolve(registration); });
    });
  }

  // A browser whose push service cannot be reached never settles subscribe(): say so instead of waiting forever.
  function within(ms, promise, what) {
    return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms))]);
  }

  async function subscribe() {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") throw new Error("notifications are blocked for this site in the browser's settings");
    const registration = await activated(await navigator.serviceWorker.register(button.dataset.worker));
    say("Subscribing with your browser's push service…");
    const subscription = (await registration.pushManager.getSubscription()) || (await within(
      20000,
      registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(button.dataset.key) }),
      "the browser's push service did not answer within 20 s",
    ));
    const csrf = document.querySelector('meta[name="csrf-token"]');
    const response = await fetch("/notifications/push", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf ? csrf.content : "" },
      body: new URLSearchParams({ subscription: JSON.stringify(subscription), label: label() }),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.error || `the hub answered ${response.status}`);
    }
  }

  button.addEventListener("click", () => {
    button.disabled = true;
    say("Asking this browser for permission…");
    subscribe().then(
      () => { say("This browser now gets alerts, even with the tab closed."); window.location.reload(); },
      (error) => { say(`Could not subscribe: ${error.message}`); button.disabled = false; },
    );
  });
})();
