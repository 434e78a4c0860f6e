// The flow editor: line numbers, live validation with inline errors, the Mermaid diagram (strict security),
// saving/publishing/rollback, and the test console. Every text from the server is inserted as text, never HTML.
(function () {
  "use strict";
  const dataEl = document.getElementById("flows-page");
  if (!dataEl) { return; }
  const page = JSON.parse(dataEl.textContent);
  const T = page.texts || {};
  const $ = (id) => document.getElementById(id);
  const source = $("flow-source");
  const gutter = $("flow-gutter");
  const status = $("flow-status");
  const errorsBox = $("flow-problems");
  const errorsList = $("flow-errors");
  const diagramBox = $("flow-diagram");
  const base = page.key ? "/admin/flows/" + encodeURIComponent(page.key) : null;
  let saved = source.value;
  let checkTimer = null;
  let renderCount = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // --- line numbers -------------------------------------------------------------------------------
  function numberLines() {
    const count = source.value.split("\n").length;
    if (gutter.dataset.count === String(count)) { return; }
    gutter.dataset.count = String(count);
    let text = "";
    for (let i = 1; i <= count; i++) { text += i + "\n"; }
    gutter.textContent = text;
  }
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  source.addEventListener("input", () => {
    numberLines();
    status.textContent = source.value !== saved ? T["flows.unsaved"] : "";
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 700);
  });
  source.addEventListener("keydown", (event) => {  // Tab inserts two spaces (YAML has no tabs)
    if (event.key === "Tab" && !source.readOnly) {
      event.preventDefault();
      const start = source.selectionStart;
      source.setRangeText("  ", start, source.selectionEnd, "end");
      source.dispatchEvent(new Event("input"));
    }
  });
  numberLines();

  function goToLine(line) {
    const lines = source.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
    const end = start + (lines[line - 1] || "").length;
    source.focus();
    source.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 18;
    source.scrollTop = Math.max(0, (line - 4) * lineHeight);
  }

  // --- errors -------------------------------------------------------------------------------------
  function showErrors(errors) {
    errorsList.replaceChildren();
    if (!errors || !errors.length) { errorsBox.hidden = true; return; }
    for (const e of errors) {
      const item = el("li", "flow-error");
      item.dataset.node = e.node || "";
      item.dataset.field = e.field || "";
      const where = el("span", "where");
      const parts = [e.flow];
      if (e.node) { parts.push(T["flows.node"] + " " + e.node); }
      if (e.field) { parts.push(T["flows.field"] + " " + e.field); }
      where.textContent = parts.join(" / ");
      item.append(where, el("span", "message", e.message));
      if (e.line) {
        const jump = el("button", "link line", T["flows.line"] + " " + e.line);
        jump.type = "button";
        jump.addEventListener("click", () => goToLine(e.line));
        item.append(jump);
      }
      errorsList.append(item);
    }
    errorsBox.hidden = false;
  }

  // --- the diagram ----------------------------------------------------------------------------------
  if (window.mermaid) {
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      maxTextSize: 600000,
      flowchart: { useMaxWidth: false },
      theme: "neutral",
    });
  }
  async function drawDiagram(text) {
    if (!text || !window.mermaid) {
      diagramBox.replaceChildren(el("p", "muted", T["flows.diagram_unavailable"]));
      return;
    }
    renderCount += 1;
    const mine = renderCount;
    try {
      const result = await window.mermaid.render("flow-svg-" + mine, text);
      if (mine !== renderCount) { return; }
      // The SVG comes from Mermaid in strict mode (labels escaped by us and sanitised by Mermaid).
      const parsed = new DOMParser().parseFromString(result.svg, "image/svg+xml");
      const svg = parsed.documentElement;
      if (svg.nodeName.toLowerCase() !== "svg") { throw new Error("no svg"); }
      diagramBox.replaceChildren(document.importNode(svg, true));
    } catch (error) {
      diagramBox.replaceChildren(el("p", "muted", T["flows.diagram_unavailable"]));
    }
  }

  // --- requests -----------------------------------------------------------------------------------
  async function call(url, body) {
    let response;
    try {
      response = await window.otklik.post(url, body);
    } catch (error) {
      return { ok: false, failed: T["flows.request_failed"] };
    }
    let data = {};
    try { data = await response.json(); } catch (error) { data = {}; }
    if (!response.ok && !data.errors) {
      return { ok: false, failed: T["flows.request_failed"] + ": " + (data.detail || response.status) };
    }
    return data;
  }

  async function check() {
    const data = await call("/admin/flows/_check", { source: source.value });
    if (data.failed) { status.textContent = data.failed; return; }
    showErrors(data.errors);
    if (data.ok) {
      if (source.value === saved) { status.textContent = T["flows.valid"]; }
      drawDiagram(data.diagram);
    } else {
      drawDiagram(null);
    }
  }

  async function save(publish) {
    status.textContent = T["flows.saving"];
    const body = { source: source.value, publish };
    let url = base + "/save";
    if (!page.key) {
      url = "/admin/flows";
      body.pack = $("flow-pack").value;
    }
    const data = await call(url, body);
    if (data.failed) { status.textContent = data.failed; return; }
    if (!data.ok) {
      status.textContent = "";
      showErrors(data.errors);
      drawDiagram(null);
      errorsBox.scrollIntoView({ block: "nearest" });
      return;
    }
    saved = source.value;
    window.location.assign("/admin/flows/" + encodeURIComponent(data.key) + "?version=" + data.version);
  }

  // "New flow from a template": the chosen template's text replaces the editor's (an editable copy)
  const templateChoice = $("flow-template");
  if (templateChoice) {
    const blank = source.value;
    templateChoice.addEventListener("change", () => {
      const chosen = (page.gallery || []).find((g) => g.key === templateChoice.value);
      $("flow-template-about").textContent = chosen ? chosen.description : "";
      source.value = chosen ? chosen.source : blank;
      source.dispatchEvent(new Event("input"));
    });
  }

  $("flow-check").addEventListener("click", check);
  const draftButton = $("flow-save-draft");
  if (draftButton) { draftButton.addEventListener("click", () => save(false)); }
  const publishButton = $("flow-save-publish");
  if (publishButton) { publishButton.addEventListener("click", () => save(true)); }

  for (const button of document.querySelectorAll(".flow-publish, .flow-rollback")) {
    button.addEventListener("click", async () => {
      const rollback = button.classList.contains("flow-rollback");
      if (!window.confirm(T[rollback ? "flows.confirm_rollback" : "flows.confirm_publish"])) { return; }
      const data = await call(base + (rollback ? "/rollback" : "/publish"), { version: Number(button.dataset.version) });
      if (data.ok) { window.location.assign(data.url); return; }
      if (data.errors) { showErrors(data.errors); }
      status.textContent = data.failed || T["flows.request_failed"];
    });
  }

  window.addEventListener("beforeunload", (event) => {
    if (!source.readOnly && source.value !== saved) { event.preventDefault(); event.returnValue = ""; }
  });

  // --- the test console ---------------------------------------------------------------------------
  const consoleBox = $("console");
  if (consoleBox) {
    const log = $("console-log");
    const controls = $("console-controls");
    const input = $("console-text");
    const language = $("console-language");
    const version = Number(consoleBox.dataset.version);
    let state = null;
    let stepNo = 0;
    let busy = false;

    function add(node) {
      log.append(node);
      while (log.childElementCount > 200) { log.firstElementChild.remove(); }
      log.scrollTop = log.scrollHeight;
    }

    function control(text, action) {
      const button = el("button", "secondary small", text);
      button.type = "button";
      button.addEventListener("click", () => send(action));
      controls.append(button);
    }

    async function send(action, text, payload) {
      if (busy) { return; }
      busy = true;
      stepNo += 1;
      if (action === "text") { add(el("div", "msg buyer", text)); }
      if (action === "button") { add(el("div", "msg buyer pressed", text || payload)); }
      if (action === "start") { log.replaceChildren(); state = null; }
      const data = await call(base + "/console", {
        version, action, text: text || null, payload: payload || null,
        language: language.value, state, step: stepNo,
      });
      busy = false;
      controls.replaceChildren();
      if (!data.ok) {
        add(el("div", "msg note error", data.failed || (data.errors || []).map((e) => e.message).join("; ")));
        return;
      }
      state = data.state;
      document.dispatchEvent(new CustomEvent("flow-console-node", { detail: data.flow === page.key ? data.node : null }));
      const varsBox = $("console-vars");
      if (varsBox) {
        const vars = Object.entries((state && state.vars) || {}).filter(([k]) => !k.startsWith("_"));
        varsBox.textContent = vars.map(([k, v]) => k + " = " + (typeof v === "string" ? v : JSON.stringify(v))).join("\n");
      }
      for (const reply of data.replies) {
        if (reply.kind === "bot") {
          const bubble = el("div", "msg bot");
          bubble.append(el("div", "text", reply.text));
          if (reply.buttons.length) {
            const row = el("div", "buttons");
            for (const b of reply.buttons) {
              const button = el("button", "secondary small", b.title);
              button.type = "button";
              button.addEventListener("click", () => send("button", b.title, b.payload));
              row.append(button);
            }
            bubble.append(row);
          }
          add(bubble);
        } else {
          add(el("div", "msg note", reply.text));
        }
      }
      if (data.waiting === "timer" || (state && state.token && data.waiting === "input")) {
        control(T["flows.console_fire_timer"], "timer");
      }
      if (data.waiting === "action") {
        control(T["flows.console_action_ok"], "action_ok");
        control(T["flows.console_action_error"], "action_error");
      }
      if (data.status === "waiting_operator" || data.status === "operator") {
        controls.append(el("span", "muted small", T["flows.console_waiting_operator"]));
      }
    }

    $("console-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) { return; }
      input.value = "";
      send("text", text);
    });
    $("console-restart").addEventListener("click", () => send("start"));
    send("start");
  }

  // --- first render -------------------------------------------------------------------------------
  showErrors(page.errors);
  drawDiagram(page.diagram);
})();
