// The admin page's inventory form: read a picked file into the text area (a plain form posts text, not files) and
// choose the format by its name. Without JavaScript, pasting works the same.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input || !input.hasAttribute || !input.hasAttribute("data-inventory-file") || !input.files.length) return;
    var file = input.files[0];
    var tooLarge = document.getElementById("inventory-too-large");
    // The form posts at most 16 KB (the hub's form limit); a larger file would be refused as a whole.
    tooLarge.hidden = file.size <= 16000;
    if (!tooLarge.hidden) return;
    var reader = new FileReader();
    reader.onload = function () {
      document.getElementById("inventory-content").value = String(reader.result);
      document.getElementById("inventory-format").value = /\.csv$/i.test(file.name) ? "csv" : "yaml";
    };
    reader.readAsText(file);
  });
})();
