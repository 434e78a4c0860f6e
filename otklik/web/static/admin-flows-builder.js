// The visual flow builder: the same document as the YAML editor, drawn as cards and arrows (own SVG code,
// no library: see docs/admin.md). Every canvas edit sends the edited document to the server, which writes
// it into the YAML text changing only what changed; the textarea stays the one source of truth.
// Texts from the flow are always inserted as text (textContent / SVG text nodes), never as HTML.
(function () {
  "use strict";
  const dataEl = document.getElementById("flows-page");
  const root = document.getElementById("builder");
  if (!dataEl || !root) { return; }
  const page = JSON.parse(dataEl.textContent);
  const T = page.texts || {};
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const source = $("flow-source");
  const svg = $("builder-svg");
  const viewport = $("builder-viewport");
  const panel = $("builder-panel");
  const preview = $("builder-preview");
  const notice = $("builder-notice");
  const counter = $("builder-count");
  const canEdit = !!page.can_edit;
  const W = 200, H = 66;
  const NEXT_FIELD = { message: "next", question: "next", set: "next", action: "next", wait: "next", condition: "else", intent_router: "fallback" };
  const TEMPLATES = {
    message: { type: "message", text: "…" },
    question: { type: "question", kind: "text", text: "…" },
    condition: { type: "condition", branches: [{ when: { var: "x", op: "exists" }, next: "" }] },
    set: { type: "set", vars: { x: "" } },
    handoff: { type: "handoff" },
    wait: { type: "wait", duration: "1h", next: "" },
    goto: { type: "goto", flow: "" },
    end: { type: "end" },
  };

  let model = null;          // the server's canvas model of the current text
  let positions = Object.assign({}, page.layout || {});
  let selected = null;       // node id
  let selectedEdge = null;   // {from, field}
  let running = null;        // node the test console is at
  let view = { x: 0, y: 0, k: 1 };
  let undo = [], redo = [];
  let busy = false, pending = null, yamlTimer = null, panelTimer = null;
  let lang = "ru";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function s(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) { node.setAttribute(k, String(v)); }
    if (text !== undefined) { node.textContent = String(text); }
    return node;
  }
  const clone = (v) => JSON.parse(JSON.stringify(v));
  function textOf(value) {
    if (typeof value === "string") { return value; }
    if (value && typeof value === "object") { return value[lang] || Object.values(value).find((v) => typeof v === "string") || ""; }
    return "";
  }

  // --- the document ---------------------------------------------------------------------------------
  function documentOf(m) {
    const head = m.head, nodes = {};
    for (const n of m.nodes) { nodes[n.id] = n.data; }
    const order = (m.order || []).filter((k) => k === "nodes" || k in head);
    for (const k of Object.keys(head)) { if (!order.includes(k)) { order.push(k); } }
    if (!order.includes("nodes") && m.nodes.length) { order.push("nodes"); }
    const doc = {};
    for (const k of order) { doc[k] = k === "nodes" ? nodes : head[k]; }
    return doc;
  }
  function nodeData(id) { const n = model && model.nodes.find((x) => x.id === id); return n ? n.data : null; }

  async function request(body) {
    let response;
    try { response = await window.otklik.post("/admin/flows/_canvas", body); } catch (e) { return { ok: false, failed: T["flows.request_failed"] }; }
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!data.source && !data.failed) { data.failed = T["flows.request_failed"] + ": " + (data.detail || response.status); }
    return data;
  }

  // Apply an edit: `change(doc)` mutates a copy of the document; the server writes it into the text.
  let queue = Promise.resolve();
  function edit(change, opts) {  // edits run one after another, each on the text the previous one left
    queue = queue.then(() => applyEdit(change, opts)).catch(() => say(T["flows.request_failed"]));
    return queue;
  }
  async function applyEdit(change, opts) {
    if (!canEdit || !model) { return; }
    const doc = documentOf(model);
    change(doc);
    const before = { source: source.value, positions: clone(positions) };
    const data = await request({ source: source.value, document: doc });
    if (!data.ok) { say(data.failed || T["flows.builder_yaml_invalid"]); return; }
    if (!(opts && opts.noUndo)) { undo.push(before); redo = []; }
    setSource(data.source);
    take(data);
  }
  function setSource(text) {
    if (source.value === text) { return; }
    source.value = text;
    source.dispatchEvent(new CustomEvent("input", { detail: { fromBuilder: true } }));
  }
  function say(text) { notice.textContent = text || ""; notice.hidden = !text; }

  function take(data) {
    if (!data.ok) { say(data.failed ? T["flows.builder_yaml_invalid"] + " " + data.failed : T["flows.builder_yaml_invalid"]); return; }
    say("");
    model = data.model;
    model.checks = data.checks || [];
    model.errors = data.errors || [];
    const missing = model.nodes.filter((n) => !positions[n.id]);
    if (missing.length) { autoLayout(missing.map((n) => n.id), data.auto); }
    if (selected && !nodeData(selected)) { selected = null; }
    draw();
    if (panelFor === selected && selected && panel.contains(document.activeElement)) {
      drawChecks();  // the seller is typing in the panel: keep the fields (and the caret), refresh the marks
      drawPreview(nodeData(selected));
    } else {
      drawPanel();
    }
  }

  async function fromText() {
    const data = await request({ source: source.value });
    take(data);
  }
  source.addEventListener("input", (event) => {
    if (event.detail && event.detail.fromBuilder) { return; }
    clearTimeout(yamlTimer);
    yamlTimer = setTimeout(fromText, 500);
  });

  // --- layout ---------------------------------------------------------------------------------------
  function autoLayout(ids, auto) {  // the server's automatic layout (canvas.layout) for cards without a place
    for (const id of ids) { positions[id] = (auto && auto[id]) || [40, 40]; }
  }

  let layoutTimer = null;
  function storeLayout() {
    if (!canEdit || !page.key) { return; }
    clearTimeout(layoutTimer);
    layoutTimer = setTimeout(() => { window.otklik.post("/admin/flows/" + encodeURIComponent(page.key) + "/layout", { positions }); }, 400);
  }

  // --- drawing --------------------------------------------------------------------------------------
  function checksOf(id) {
    const out = (model.checks || []).filter((c) => c.node === id);
    for (const e of model.errors || []) { if (e.node === id) { out.push({ level: "error", message: e.message, field: e.field }); } }
    return out;
  }
  function applyView() { viewport.setAttribute("transform", `translate(${view.x} ${view.y}) scale(${view.k})`); }

  function draw() {
    viewport.replaceChildren();
    applyView();
    if (!model) { return; }
    const edgesG = s("g", { class: "edges" });
    const nodesG = s("g", { class: "nodes" });
    let errors = 0;
    for (const e of model.edges) {
      const a = positions[e.from], b = positions[e.to];
      if (!a) { continue; }
      const x1 = a[0] + W, y1 = a[1] + H / 2;
      const dangling = !b;
      const x2 = dangling ? x1 + 80 : b[0], y2 = dangling ? y1 : b[1] + H / 2;
      const dx = Math.max(40, Math.abs(x2 - x1) / 2);
      const g = s("g", { class: "edge" + (dangling ? " dangling" : "") + (selectedEdge && selectedEdge.from === e.from && selectedEdge.field === e.field ? " selected" : ""), "data-from": e.from, "data-field": e.field, "data-to": e.to });
      g.append(s("path", { d: `M${x1} ${y1} C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`, "marker-end": "url(#builder-arrow)" }));
      g.append(s("path", { class: "hit", d: `M${x1} ${y1} C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}` }));
      const label = s("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, String(e.label).slice(0, 28));
      g.append(label);
      g.addEventListener("mousedown", (ev) => { ev.stopPropagation(); selectedEdge = { from: e.from, field: e.field }; selected = null; draw(); drawPanel(); });
      edgesG.append(g);
    }
    for (const n of model.nodes) {
      const p = positions[n.id] || [0, 0];
      const checks = checksOf(n.id);
      const bad = checks.some((c) => c.level === "error");
      if (bad) { errors += 1; }
      const cls = ["card", "t-" + n.type, n.id === selected ? "selected" : "", n.id === running ? "running" : "", bad ? "error" : (checks.length ? "warning" : ""), n.id === model.head.start ? "start" : ""].join(" ");
      const g = s("g", { class: cls, transform: `translate(${p[0]} ${p[1]})`, tabindex: 0, role: "button", "data-node": n.id, "aria-label": n.type + " " + n.id + (bad ? " — " + checks[0].message : "") });
      g.append(s("rect", { width: W, height: H, rx: 8 }));
      g.append(s("text", { x: 10, y: 18, class: "kind" }, n.type + (n.id === model.head.start ? " ▶" : "")));
      g.append(s("text", { x: 10, y: 36, class: "id" }, n.id.slice(0, 26)));
      const d = n.data || {};
      const snippet = textOf(d.text) || (d.flow ? "→ " + d.flow : "") || (d.action || "");
      g.append(s("text", { x: 10, y: 54, class: "snippet" }, String(snippet).replace(/\s+/g, " ").slice(0, 30)));
      if (checks.length) { g.append(s("title", {}, checks.map((c) => c.message).join("\n"))); }
      if (canEdit && NEXT_FIELD[n.type]) {
        const port = s("circle", { class: "port", cx: W, cy: H / 2, r: 7, "data-port": n.id });
        port.addEventListener("mousedown", (ev) => startConnect(ev, n.id));
        g.append(port);
      }
      g.addEventListener("mousedown", (ev) => startMove(ev, n.id));
      g.addEventListener("focus", () => { if (selected !== n.id) { select(n.id, false); } });
      g.addEventListener("keydown", (ev) => nodeKey(ev, n.id));
      nodesG.append(g);
    }
    viewport.append(edgesG, nodesG);
    counter.textContent = errors ? String(T["flows.builder_error_count"] || "").replace("{count}", errors) : "";
    counter.dataset.errors = String(errors);
  }

  function select(id, redraw) {
    selected = id; selectedEdge = null;
    if (redraw !== false) { draw(); const g = viewport.querySelector(`[data-node="${CSS.escape(id)}"]`); if (g) { g.focus(); } }
    else { for (const g of viewport.querySelectorAll(".card")) { g.classList.toggle("selected", g.dataset.node === id); } }
    drawPanel();
  }

  // --- mouse: move, connect, pan, zoom ------------------------------------------------------------------
  function point(ev) {
    const r = svg.getBoundingClientRect();
    return [(ev.clientX - r.left - view.x) / view.k, (ev.clientY - r.top - view.y) / view.k];
  }
  function startMove(ev, id) {
    if (ev.button !== 0) { return; }
    ev.stopPropagation();
    const start = point(ev), from = clone(positions[id] || [0, 0]);
    const before = { source: source.value, positions: clone(positions) };
    let moved = false;
    select(id, false);
    const g = ev.currentTarget;
    const move = (e) => {
      if (!canEdit) { return; }
      const p = point(e);
      const nx = Math.round(from[0] + p[0] - start[0]), ny = Math.round(from[1] + p[1] - start[1]);
      if (Math.abs(nx - from[0]) + Math.abs(ny - from[1]) < 3 && !moved) { return; }
      moved = true;
      positions[id] = [nx, ny];
      g.setAttribute("transform", `translate(${nx} ${ny})`);
    };
    const up = () => {
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
      if (moved) { undo.push(before); redo = []; storeLayout(); }
      draw();
    };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  }
  function startConnect(ev, id) {
    ev.stopPropagation(); ev.preventDefault();
    const p0 = positions[id];
    const line = s("line", { class: "connecting", x1: p0[0] + W, y1: p0[1] + H / 2, x2: p0[0] + W, y2: p0[1] + H / 2 });
    viewport.append(line);
    const move = (e) => { const p = point(e); line.setAttribute("x2", p[0]); line.setAttribute("y2", p[1]); };
    const up = (e) => {
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
      line.remove();
      const p = point(e);
      const target = model.nodes.slice().reverse().find((n) => { const q = positions[n.id]; return q && p[0] >= q[0] && p[0] <= q[0] + W && p[1] >= q[1] && p[1] <= q[1] + H; });
      if (target && target.id !== id) { connect(id, target.id); }
    };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  }
  function connect(from, to) {
    const type = (nodeData(from) || {}).type;
    const field = NEXT_FIELD[type];
    if (!field) { return; }
    edit((doc) => { doc.nodes[from][field] = to; });
  }
  svg.addEventListener("mousedown", (ev) => {
    if (ev.button !== 0) { return; }
    selected = null; selectedEdge = null; draw(); drawPanel();
    const sx = ev.clientX, sy = ev.clientY, ox = view.x, oy = view.y;
    const move = (e) => { view.x = ox + e.clientX - sx; view.y = oy + e.clientY - sy; applyView(); };
    const up = () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  });
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const k = Math.min(2.5, Math.max(0.2, view.k * (ev.deltaY < 0 ? 1.1 : 1 / 1.1)));
    view.x = mx - (mx - view.x) * (k / view.k); view.y = my - (my - view.y) * (k / view.k); view.k = k;
    applyView();
  }, { passive: false });
  function fit() {
    root.scrollIntoView({ block: "start" });  // "show everything": the whole canvas on the screen too
    if (!model || !model.nodes.length) { return; }
    const xs = model.nodes.map((n) => (positions[n.id] || [0, 0])[0]), ys = model.nodes.map((n) => (positions[n.id] || [0, 0])[1]);
    const minX = Math.min(...xs) - 20, minY = Math.min(...ys) - 20, maxX = Math.max(...xs) + W + 40, maxY = Math.max(...ys) + H + 20;
    const r = svg.getBoundingClientRect();
    view.k = Math.max(0.2, Math.min(1, r.width / (maxX - minX), r.height / (maxY - minY)));
    view.x = -minX * view.k; view.y = -minY * view.k;
    applyView();
  }

  // --- keyboard -------------------------------------------------------------------------------------
  function nodeKey(ev, id) {
    const step = ev.shiftKey ? 50 : 10;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key] && canEdit) {
      ev.preventDefault();
      undo.push({ source: source.value, positions: clone(positions) }); redo = [];
      const p = positions[id]; positions[id] = [p[0] + moves[ev.key][0], p[1] + moves[ev.key][1]];
      storeLayout(); draw();
      const g = viewport.querySelector(`[data-node="${CSS.escape(id)}"]`); if (g) { g.focus(); }
    } else if (ev.key === "Enter") {
      ev.preventDefault(); const first = panel.querySelector("textarea, input, select"); if (first) { first.focus(); }
    }
  }
  root.addEventListener("keydown", (ev) => {
    const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement || ev.target instanceof HTMLSelectElement;
    if (typing) { return; }
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z") { ev.preventDefault(); (ev.shiftKey ? doRedo : doUndo)(); }
    else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "y") { ev.preventDefault(); doRedo(); }
    else if (ev.key === "Delete" || ev.key === "Backspace") { ev.preventDefault(); removeSelected(); }
    else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "c" && selected) { copied = clone(nodeData(selected)); copiedFrom = selected; }
    else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "v" && copied) { ev.preventDefault(); paste(); }
  });

  // copy / paste a card: the copy keeps the node's texts, buttons and arrows, under a free id
  let copied = null, copiedFrom = null;
  function paste() {
    if (!canEdit || !copied) { return; }
    let n = 1, id = copiedFrom + "_copy";
    while (nodeData(id) !== null) { n += 1; id = copiedFrom + "_copy" + n; }
    const placed = Object.values(positions);
    positions[id] = placed.length ? [Math.min(...placed.map((p) => p[0])), Math.max(...placed.map((p) => p[1])) + 150] : [40, 40];
    const data = clone(copied);
    edit((doc) => { doc.nodes[id] = data; }).then(() => { storeLayout(); select(id); });
  }

  // --- commands -------------------------------------------------------------------------------------
  async function restore(from, to) {
    if (!from.length) { return; }
    const state = from.pop();
    to.push({ source: source.value, positions: clone(positions) });
    positions = state.positions;
    setSource(state.source);
    storeLayout();
    await fromText();
  }
  const doUndo = () => restore(undo, redo);
  const doRedo = () => restore(redo, undo);

  function removeSelected() {
    if (!canEdit) { return; }
    if (selectedEdge) {
      const { from, field } = selectedEdge;
      selectedEdge = null;
      edit((doc) => {
        const node = doc.nodes[from];
        const parts = field.split(".");
        if (parts.length === 1) { delete node[field]; }
        else if (parts[0] === "routes") { delete node.routes[parts.slice(1).join(".")]; }
        else if (parts[0] === "branches") { node.branches.splice(Number(parts[1]), 1); }
        else if (parts[0] === "options") { delete node.options[Number(parts[1])].next; }
      });
    } else if (selected) {
      const id = selected;
      selected = null;
      edit((doc) => { delete doc.nodes[id]; });
      delete positions[id];
      storeLayout();
    }
  }

  function addNode() {
    const type = $("builder-type").value;
    let n = 1;
    while (nodeData(type + "_" + n) !== null) { n += 1; }
    const id = type + "_" + n;
    // a free place: under every card, at the left edge of the drawing
    const placed = Object.values(positions);
    positions[id] = placed.length ? [Math.min(...placed.map((p) => p[0])), Math.max(...placed.map((p) => p[1])) + 150] : [40, 40];
    const data = clone(TEMPLATES[type] || { type });
    for (const key of ["next"]) { if (data[key] === "") { data[key] = selected || model.head.start; } }
    if (data.branches) { data.branches[0].next = selected || model.head.start; }
    edit((doc) => { doc.nodes = doc.nodes || {}; doc.nodes[id] = data; if (selected && NEXT_FIELD[doc.nodes[selected].type] && !doc.nodes[selected][NEXT_FIELD[doc.nodes[selected].type]]) { doc.nodes[selected][NEXT_FIELD[doc.nodes[selected].type]] = id; } }).then(() => { storeLayout(); fit(); select(id); });
  }

  // --- the side panel -------------------------------------------------------------------------------
  function field(label, input) {
    const wrap = el("label", "field");
    wrap.append(el("span", "field-label", label), input);
    return wrap;
  }
  let pendingChange = null;
  function later(change) {  // validation as you type: the edit goes to the server shortly after typing stops
    if (pendingChange && pendingChange.id !== selected) { flush(); }  // another node's typing is never dropped
    clearTimeout(panelTimer);
    pendingChange = { id: selected, change };
    panelTimer = setTimeout(flush, 350);
  }
  function flush() {
    clearTimeout(panelTimer);
    const pending = pendingChange;
    pendingChange = null;
    if (pending) { edit(pending.change); }
  }
  function textEditor(id, key, value, label) {
    const box = el("fieldset", "texts");
    box.append(el("legend", null, label));
    const langs = typeof value === "object" && value ? Array.from(new Set([...page.languages, ...Object.keys(value)])) : [null];
    for (const l of langs) {
      const area = el("textarea");
      area.rows = 2;
      area.maxLength = 4096;
      area.value = l ? (value[l] || "") : (value || "");
      area.dataset.lang = l || "";
      area.readOnly = !canEdit;
      area.addEventListener("input", () => later((doc) => {
        const node = doc.nodes[id];
        if (l) { node[key] = Object.assign({}, node[key] || {}); node[key][l] = area.value; } else { node[key] = area.value; }
      }));
      box.append(field(l ? l.toUpperCase() : T["flows.builder_text"], area));
    }
    if (langs[0] === null && canEdit) {  // one text for every language -> a text per language (the current one kept)
      const split = el("button", "link small", T["flows.builder_per_language"]);
      split.type = "button";
      split.addEventListener("click", () => edit((doc) => {
        const texts = {};
        for (const l of page.languages) { texts[l] = l === lang ? (value || "") : ""; }
        doc.nodes[id][key] = texts;
      }));
      box.append(split);
    }
    return box;
  }
  function nodeSelect(id, key, value) {
    const sel = el("select");
    sel.append(new Option("—", ""));
    for (const n of model.nodes) { if (n.id !== id) { sel.append(new Option(n.id, n.id)); } }
    sel.value = value || "";
    sel.disabled = !canEdit;
    sel.addEventListener("change", () => edit((doc) => { if (sel.value) { doc.nodes[id][key] = sel.value; } else { delete doc.nodes[id][key]; } }));
    return sel;
  }
  let panelFor = null;
  function drawChecks() {
    let list = panel.querySelector(".node-checks");
    if (!list) { list = el("ul", "node-checks"); list.dataset.testid = "node-checks"; panel.firstChild.after(list); }
    list.replaceChildren();
    for (const c of checksOf(selected)) { list.append(el("li", c.level, (c.field ? c.field + ": " : "") + c.message)); }
  }
  function drawPanel() {
    if (pendingChange && pendingChange.id !== selected) { flush(); }  // the typed text is written before leaving
    panel.replaceChildren();
    panelFor = selected;
    if (!model || !selected || nodeData(selected) === null) {
      panel.append(el("p", "muted small", T["flows.builder_no_selection"]));
      drawPreview(null);
      return;
    }
    const id = selected, d = nodeData(id) || {};
    panel.append(el("h3", null, d.type + " · " + id));
    drawChecks();
    if ("text" in d || ["message", "question", "end", "handoff", "intent_router", "wait"].includes(d.type)) {
      panel.append(textEditor(id, "text", d.text === undefined ? "" : d.text, T["flows.builder_text"]));
    }
    const listKey = d.type === "question" ? "options" : (["message", "intent_router"].includes(d.type) ? "buttons" : null);
    if (listKey) {
      const box = el("fieldset", "buttons-edit");
      box.append(el("legend", null, T["flows.builder_buttons"]));
      const items = Array.isArray(d[listKey]) ? d[listKey] : [];
      items.forEach((item, i) => {
        const row = el("div", "button-row");
        const title = el("input"); title.value = textOf(item.title); title.setAttribute("aria-label", T["flows.builder_button_title"]); title.maxLength = 200; title.readOnly = !canEdit;
        title.addEventListener("input", () => later((doc) => {
          const it = doc.nodes[id][listKey][i];
          if (it.title && typeof it.title === "object") { it.title[lang in it.title ? lang : Object.keys(it.title)[0]] = title.value; } else { it.title = title.value; }
        }));
        const valueKey = listKey === "options" ? "value" : "payload";
        const val = el("input"); val.value = item[valueKey] || ""; val.setAttribute("aria-label", T["flows.builder_button_payload"]); val.maxLength = 256; val.readOnly = !canEdit;
        val.addEventListener("input", () => later((doc) => { doc.nodes[id][listKey][i][valueKey] = val.value; }));
        const rm = el("button", "link", T["flows.builder_remove"]); rm.type = "button"; rm.disabled = !canEdit;
        rm.addEventListener("click", () => edit((doc) => { doc.nodes[id][listKey].splice(i, 1); if (!doc.nodes[id][listKey].length) { delete doc.nodes[id][listKey]; } }));
        row.append(title, val, rm);
        box.append(row);
      });
      const add = el("button", "secondary small", T["flows.builder_add_button"]); add.type = "button"; add.disabled = !canEdit;
      add.dataset.testid = "add-button";
      add.addEventListener("click", () => edit((doc) => {
        const node = doc.nodes[id]; node[listKey] = node[listKey] || [];
        const n = node[listKey].length + 1;
        node[listKey].push(listKey === "options" ? { title: "Option " + n, value: "option_" + n } : { title: "Button " + n, payload: "button_" + n });
      }));
      box.append(add);
      panel.append(box);
    }
    if (d.type === "question") {
      const kind = el("select");
      for (const k of ["text", "choice", "photo", "file", "phone", "number", "date", "email"]) { kind.append(new Option(k, k)); }
      kind.value = d.kind || "text"; kind.disabled = !canEdit;
      kind.addEventListener("change", () => edit((doc) => { doc.nodes[id].kind = kind.value; }));
      panel.append(field(T["flows.builder_expected"], kind));
      const saveAs = el("input"); saveAs.value = d.save_as || ""; saveAs.maxLength = 64; saveAs.readOnly = !canEdit;
      saveAs.addEventListener("input", () => later((doc) => { if (saveAs.value) { doc.nodes[id].save_as = saveAs.value; } else { delete doc.nodes[id].save_as; } }));
      panel.append(field(T["flows.builder_save_as"], saveAs));
    }
    if (d.type === "question" || d.type === "wait") {
      const box = el("fieldset", "repair");
      box.append(el("legend", null, T["flows.builder_repair"]));
      const inter = el("input"); inter.type = "checkbox"; inter.checked = d.interruptible !== false; inter.disabled = !canEdit;
      inter.addEventListener("change", () => edit((doc) => { doc.nodes[id].interruptible = inter.checked; }));
      box.append(field(T["flows.builder_interruptible"], inter));
      box.append(field(T["flows.builder_on_skip"], nodeSelect(id, "on_skip", d.on_skip)));
      box.append(field(T["flows.builder_on_cancel"], nodeSelect(id, "on_cancel", d.on_cancel)));
      panel.append(box);
    }
    if (d.type === "set") {
      const area = el("textarea"); area.rows = 3; area.readOnly = !canEdit;
      area.value = Object.entries(d.vars || {}).map(([k, v]) => k + " = " + v).join("\n");
      area.addEventListener("input", () => later((doc) => {
        const vars = {};
        for (const line of area.value.split("\n")) { const at = line.indexOf("="); if (at > 0) { vars[line.slice(0, at).trim()] = line.slice(at + 1).trim(); } }
        doc.nodes[id].vars = vars;
      }));
      panel.append(field(T["flows.builder_vars"], area));
    }
    if (NEXT_FIELD[d.type]) { panel.append(field(T["flows.builder_next"] + " (" + NEXT_FIELD[d.type] + ")", nodeSelect(id, NEXT_FIELD[d.type], d[NEXT_FIELD[d.type]]))); }
    if (canEdit) {
      const del = el("button", "secondary small danger", T["flows.builder_delete"]); del.type = "button";
      del.addEventListener("click", removeSelected);
      panel.append(del);
    }
    drawPreview(d);
  }

  // --- channel previews -----------------------------------------------------------------------------
  function pathTo(id) {  // the shortest path from the start to the node: what the buyer has seen on the way
    const start = model.head.start;
    if (!start || nodeData(start) === null) { return [id]; }
    const parent = { [start]: null }, queue = [start];
    while (queue.length && !(id in parent)) {
      const cur = queue.shift();
      for (const e of model.edges) {
        if (e.from === cur && !(e.to in parent) && nodeData(e.to) !== null) { parent[e.to] = cur; queue.push(e.to); }
      }
    }
    if (!(id in parent)) { return [id]; }
    const path = [];
    for (let at = id; at !== null; at = parent[at]) { path.unshift(at); }
    return path;
  }
  function bubbleFor(code, d, card, last) {
    const text = textOf(d.text);
    const items = (Array.isArray(d.buttons) ? d.buttons : []).concat(Array.isArray(d.options) ? d.options : []).map((b) => textOf(b.title));
    if (!text && !items.length) { return null; }
    const bubble = el("div", "bubble");
    let shown = text, mode = "buttons";
    const numbered = () => [text, ...items.map((t, i) => (i + 1) + ". " + t)].filter(Boolean).join("\n");
    if (code === "wb" && items.length) { shown = numbered(); mode = "none"; }
    if (code === "whatsapp" && items.length) {
      const unique = new Set(items).size === items.length;
      if (items.length <= 3 && unique && items.every((t) => t.length <= 20)) { mode = "buttons"; }
      else if (items.length <= 10) { mode = "list"; }
      else { mode = "text"; shown = numbered(); }
      const note = el("div", "muted small wa-mode", T["flows.builder_wa_" + mode]);
      bubble.append(note);
      if (last) { card.dataset.mode = mode; }
    }
    bubble.append(el("div", "text", shown));
    if (items.length && mode !== "none" && mode !== "text") {
      const row = el("div", "p-buttons" + (mode === "list" ? " list" : ""));
      for (const t of items) { row.append(el("span", "p-button", code === "whatsapp" && mode === "list" ? t.slice(0, 24) : t)); }
      bubble.append(row);
    }
    return bubble;
  }
  function drawPreview(d) {
    preview.replaceChildren();
    if (!d || !selected) { return; }
    const path = pathTo(selected).slice(-6);  // the last steps of the path, the selected node last
    const channels = [
      ["web", T["flows.builder_preview_web"]],
      ["telegram", T["flows.builder_preview_telegram"]],
      ["whatsapp", T["flows.builder_preview_whatsapp"]],
      ["wb", T["flows.builder_preview_wb"]],
    ];
    for (const [code, name] of channels) {
      const card = el("div", "preview p-" + code);
      card.dataset.channel = code;
      card.append(el("div", "preview-name", name));
      path.forEach((id, i) => {
        const bubble = bubbleFor(code, nodeData(id) || {}, card, i === path.length - 1);
        if (bubble) {
          if (i === path.length - 1) { bubble.classList.add("current"); }
          card.append(bubble);
        }
      });
      preview.append(card);
    }
  }

  // --- the test console highlights the node being executed ---------------------------------------------
  document.addEventListener("flow-console-node", (ev) => { running = ev.detail || null; draw(); });

  // --- toolbar, view switch -------------------------------------------------------------------------
  $("builder-add").addEventListener("click", addNode);
  $("builder-undo").addEventListener("click", doUndo);
  $("builder-redo").addEventListener("click", doRedo);
  $("builder-fit").addEventListener("click", fit);
  $("builder-delete").addEventListener("click", removeSelected);
  $("builder-lang").addEventListener("change", (ev) => { lang = ev.target.value; draw(); drawPanel(); });
  const layoutBox = document.querySelector(".flow-editor-views");
  function showView(name) {
    layoutBox.dataset.view = name;
    for (const b of document.querySelectorAll("[data-view-tab]")) { b.setAttribute("aria-selected", String(b.dataset.viewTab === name)); }
    try { window.localStorage.setItem("otklik.flows.view", name); } catch (e) { /* private mode */ }
    if (name === "canvas") { fromText().then(fit); }
  }
  for (const b of document.querySelectorAll("[data-view-tab]")) { b.addEventListener("click", () => showView(b.dataset.viewTab)); }
  let first = "yaml";
  try { first = window.localStorage.getItem("otklik.flows.view") || "yaml"; } catch (e) { first = "yaml"; }
  if (first === "canvas") { showView("canvas"); } else { fromText(); }
})();
