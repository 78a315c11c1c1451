// The admin page's inventory form: read a picked file into the text area (a plain form posts text, not files) and
// choose the format by its name. Without JavaScript, pasting works the same.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input || !input.hasAttribute || !input.hasAttribute("data-inventory-file") || !input.files.length) return;
    var file = input.files[0];
    var reader = new FileReader();
    reader.onload = function () {
      document.getElementById("inventory-content").value = String(reader.result);
      document.getElementById("inventory-format").value = /\.csv$/i.test(file.name) ? "csv" : "yaml";
    };
    reader.readAsText(file);
  });
})();
