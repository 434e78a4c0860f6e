// Review insights: while a "sync now" runs, poll its state and show the result when it ends (no reload
// needed). Texts come from the server-rendered page; values are set with textContent only.
(function () {
  "use strict";
  const box = document.getElementById("care-sync");
  if (!box || !window.otklik) { return; }
  function running() { return box.querySelector('[data-running="1"]') !== null; }
  async function poll() {
    let body;
    try {
      const response = await window.otklik.get("/admin/care/reviews/sync-status");
      if (!response.ok) { return; }
      body = await response.json();
    } catch (_error) { return; }
    for (const account of body.accounts || []) {
      const row = box.querySelector('[data-account="' + String(Number(account.id)) + '"]');
      if (!row) { continue; }
      const wasRunning = row.dataset.running === "1";
      row.dataset.running = account.running ? "1" : "0";
      for (const key of ["last_run_at", "last_ok_at"]) {
        const cell = row.querySelector('[data-field="' + key + '"]');
        if (cell) { cell.textContent = account[key + "_local"] || "—"; }
      }
      const error = row.querySelector('[data-field="last_error"]');
      if (error) { error.textContent = account.last_error || ""; error.hidden = !account.last_error; }
      const button = row.querySelector("button[data-testid=sync-now]");
      if (button) { button.disabled = Boolean(account.running); }
      if (wasRunning && !account.running) {
        const state = row.querySelector('[data-field="state"]');
        if (state) { state.textContent = ""; }
        row.dataset.finished = "1";
      }
    }
    if (running()) { window.setTimeout(poll, 2000); }
  }
  if (running()) { window.setTimeout(poll, 1000); }
})();
