// nvrmon's service worker: shows the hub's Web Push alerts (payload JSON: title, body, url) and opens nvrmon on a click.
"use strict";

self.addEventListener("push", (event) => {
  let alert = { title: "nvrmon", body: "", url: "/" };
  if (event.data) {
    try {
      alert = Object.assign(alert, event.data.json());
    } catch (error) {
      alert.body = event.data.text();
    }
  }
  event.waitUntil(self.registration.showNotification(alert.title, { body: alert.body, data: { url: alert.url } }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url || "/"));
});
