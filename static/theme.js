// Applies the stored theme before first paint (loaded blocking in <head>, so no flash of the wrong colours).
(function () {
  "use strict";
  try {
    var prefs = JSON.parse(localStorage.getItem("nvrmon.prefs") || "{}") || {};
    if (prefs.theme === "light" || prefs.theme === "dark") document.documentElement.dataset.theme = prefs.theme;
  } catch (err) { /* storage unavailable: follow the system */ }
})();
