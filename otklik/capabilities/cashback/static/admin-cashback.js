// Cashback admin: "select all" checkboxes of the moderation queue and the payouts table.
(function () {
  "use strict";
  document.querySelectorAll("[data-select-all]").forEach(function (master) {
    master.addEventListener("change", function () {
      const form = master.closest("form");
      form.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = master.checked; });
    });
  });
})();
