// The operator inbox: live list (polls a small "pulse" and reloads the rows only when something changed),
// live conversation (polls new messages after the last shown id), reply / note without a page reload,
// canned responses, the "return to bot" node picker. Every HTML fragment comes escaped from the server;
// this script never builds markup from message text.
(function () {
  "use strict";
  const root = document.getElementById("inbox");
  if (!root || !window.otklik) { return; }
  const PULSE_MS = 3000;
  const MESSAGES_MS = 2500;
  let version = root.dataset.version || "";
  let extraPages = false; // rows appended by "more": a refresh would drop them, so do not auto-refresh
  let busy = false;

  function setBadge(id, value) {
    const el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  async function refreshList() {
    const url = root.dataset.list + "&selected=" + encodeURIComponent(root.dataset.selected || "0");
    const response = await window.otklik.get(url.replace("?&", "?"));
    if (!response.ok) { return; }
    const html = await response.text();
    document.getElementById("conv-list").innerHTML = html;
    const more = document.getElementById("list-more");
    const next = response.headers.get("X-Next-Cursor") || "";
    if (more) {
      more.hidden = !next;
      if (next) {
        const query = new URLSearchParams(root.dataset.list.split("?")[1] || "");
        query.set("cursor", next);
        more.dataset.query = query.toString();
      }
    }
  }

  async function pulse() {
    if (document.hidden) { return; }
    try {
      const response = await window.otklik.get(root.dataset.pulse);
      if (!response.ok) { return; }
      const data = await response.json();
      setBadge("count-waiting", data.waiting);
      setBadge("count-mine", data.mine_unread);
      if (data.version !== version) {
        version = data.version;
        if (!extraPages) { await refreshList(); }
      }
    } catch (_err) { /* offline for a moment: the next tick retries */ }
  }

  const more = document.getElementById("list-more");
  if (more) {
    more.addEventListener("click", async () => {
      const response = await window.otklik.get("/admin/inbox/list?" + more.dataset.query);
      if (!response.ok) { return; }
      document.getElementById("conv-list").insertAdjacentHTML("beforeend", await response.text());
      extraPages = true;
      const next = response.headers.get("X-Next-Cursor") || "";
      more.hidden = !next;
      const query = new URLSearchParams(more.dataset.query);
      query.set("cursor", next);
      more.dataset.query = query.toString();
    });
  }
  setInterval(pulse, PULSE_MS);

  // --- the open conversation --------------------------------------------------------------------
  const conv = document.getElementById("conv");
  if (!conv) { return; }
  const messages = document.getElementById("messages");
  const history = document.getElementById("history");

  // Message times come from the server already in the business's time zone (like every admin page),
  // so they are not rewritten to the browser's zone here.
  function toBottom() { history.scrollTop = history.scrollHeight; }
  toBottom();

  async function poll() {
    if (busy) { return; }
    busy = true;
    try {
      const response = await window.otklik.get(`/admin/inbox/c/${conv.dataset.id}/messages?after=${conv.dataset.last}`);
      if (!response.ok) { return; }
      const data = await response.json();
      if (data.count) {
        const near = history.scrollHeight - history.scrollTop - history.clientHeight < 80;
        messages.insertAdjacentHTML("beforeend", data.html);
        conv.dataset.last = String(data.last);
        if (near) { toBottom(); }
      }
      const label = document.getElementById("conv-status");
      if (label && data.status && label.dataset.status !== data.status) {
        label.dataset.status = data.status;
        label.textContent = JSON.parse(label.dataset.labels || "{}")[data.status] || data.status;
      }
      for (const [id, status] of Object.entries(data.marks || {})) {
        const el = messages.querySelector(`[data-id="${CSS.escape(id)}"]`);
        if (el && el.dataset.status !== status) { el.dataset.status = status; }
      }
    } catch (_err) { /* retried on the next tick */ } finally { busy = false; }
  }
  setInterval(() => { if (!document.hidden) { poll(); } }, MESSAGES_MS);

  const older = document.getElementById("older");
  if (older) {
    older.addEventListener("click", async () => {
      const first = messages.querySelector("[data-id]");
      const before = first ? first.dataset.id : conv.dataset.first;
      const response = await window.otklik.get(`/admin/inbox/c/${conv.dataset.id}/history?before=${before}`);
      if (!response.ok) { return; }
      const data = await response.json();
      const height = history.scrollHeight;
      messages.insertAdjacentHTML("afterbegin", data.html);
      history.scrollTop += history.scrollHeight - height;
      older.hidden = !data.has_older;
    });
  }

  // --- the composer: reply or internal note ------------------------------------------------------
  const composer = document.getElementById("composer");
  if (composer) {
    const text = document.getElementById("reply-text");
    const error = document.getElementById("reply-error");
    const clientId = document.getElementById("client-id");
    // the marketplace guard's refusal: the text with what broke the rules marked, and a rewording
    const guardBox = document.getElementById("guard");
    const guardText = document.getElementById("guard-text");
    const guardSuggestion = document.getElementById("guard-suggestion");
    const showGuard = (sent, guard) => {
      if (!guardBox) { return; }
      guardText.replaceChildren();
      const chars = Array.from(sent); // the server counts code points, not UTF-16 units
      const cut = (a, b) => chars.slice(a, b).join("");
      let cursor = 0;
      const spans = (guard.spans || []).slice().sort((a, b) => a.start - b.start);
      for (const span of spans) {
        if (span.start < cursor) { continue; }
        guardText.append(document.createTextNode(cut(cursor, span.start)));
        const mark = document.createElement("mark");
        mark.dataset.reason = span.reason;
        mark.textContent = cut(span.start, span.end); // text, never markup
        guardText.append(mark);
        cursor = span.end;
      }
      guardText.append(document.createTextNode(cut(cursor)));
      guardSuggestion.textContent = guard.suggestion || "";
      guardBox.hidden = false;
    };
    const guardUse = document.getElementById("guard-use");
    if (guardUse) {
      guardUse.addEventListener("click", () => { text.value = guardSuggestion.textContent; guardBox.hidden = true; text.focus(); });
    }
    const newId = () => { clientId.value = "r" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join(""); };
    newId();
    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = event.submitter || composer.querySelector("button[type=submit]");
      const url = button.getAttribute("formaction") || composer.action;
      error.hidden = true;
      if (guardBox) { guardBox.hidden = true; }
      if (!text.value.trim()) { text.focus(); return; }
      composer.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      try {
        const response = await window.otklik.post(url, new FormData(composer));
        if (response.ok) {
          text.value = "";
          newId();
          await poll();
          toBottom();
          const assignee = document.querySelector("[data-testid=assign-select]");
          if (!url.endsWith("/note") && assignee && assignee.querySelector(`option[value="${root.dataset.me}"]`)) {
            assignee.value = root.dataset.me; // a reply assigns the conversation to the replier
          }
          pulse(); // the list and counters follow at once (e.g. the conversation leaves "waiting")
        } else {
          let detail = root.dataset.errGeneric;
          const sent = text.value.trim();
          try {
            const body = await response.json();
            detail = body.detail || detail;
            if (body.guard) { showGuard(sent, body.guard); }
          } catch (_e) { /* not JSON */ }
          error.textContent = detail; // text, never markup
          error.hidden = false;
        }
      } catch (_err) {
        error.textContent = root.dataset.errGeneric;
        error.hidden = false;
      } finally {
        composer.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      }
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        composer.requestSubmit(composer.querySelector("[data-testid=send]"));
      }
    });
    const canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", () => {
        const option = canned.selectedOptions[0];
        if (!option || !option.dataset.text) { return; }
        const start = text.selectionStart ?? text.value.length;
        const end = text.selectionEnd ?? text.value.length;
        text.value = text.value.slice(0, start) + option.dataset.text + text.value.slice(end);
        canned.value = "";
        text.focus();
      });
    }
  }

  // --- return to bot: offer only the chosen flow's nodes ------------------------------------------
  const flow = document.getElementById("to-bot-flow");
  const node = document.getElementById("to-bot-node");
  if (flow && node) {
    const sync = () => {
      node.querySelectorAll("option[data-flow]").forEach((option) => {
        option.hidden = option.disabled = option.dataset.flow !== flow.value;
      });
      if (node.selectedOptions[0] && node.selectedOptions[0].disabled) { node.value = ""; }
      node.disabled = !flow.value;
    };
    flow.addEventListener("change", sync);
    sync();
  }
})();
