// The web chat page: creates a session, sends text/buttons/files, long-polls for replies.
// Everything from the server is inserted as text (never as HTML).
(function () {
  "use strict";
  const root = document.querySelector(".chat");
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const fileInput = document.getElementById("file");
  const errorBox = document.getElementById("error");
  const counter = document.getElementById("counter");
  const maxChars = parseInt(root.dataset.maxChars, 10) || 4096;
  const storeKey = "otklik.webchat.session";
  let session = sessionStorage.getItem(storeKey);
  let cursor = 0;
  let offline = false;  // the error box shows the poll's own "no connection" notice

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function add(direction, text, buttons, attachments) {
    const li = document.createElement("li");
    li.className = "msg msg--" + direction;
    li.textContent = text || "";
    (attachments || []).forEach(function (a) {
      if (a.kind === "photo" && a.media_id && session) {
        const img = document.createElement("img");
        img.alt = "фото";
        img.src = "/api/webchat/sessions/" + encodeURIComponent(session) + "/media/" + encodeURIComponent(a.media_id);
        li.appendChild(img);
      }
    });
    if (buttons && buttons.length) {
      const box = document.createElement("div");
      box.className = "buttons";
      buttons.forEach(function (b) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", function () { sendButton(b); });
        box.appendChild(btn);
      });
      li.appendChild(box);
    }
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function notSent(li) {
    li.classList.add("msg--failed");
    li.title = "Не отправлено";
  }

  async function api(path, options) {
    const response = await fetch("/api/webchat" + path, options);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
      const err = new Error(detail);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  async function start() {
    if (!session) {
      const body = {start: root.dataset.start || null, language: (navigator.language || "ru").slice(0, 2)};
      let created;
      try {
        created = await createSession(body);
      } catch (e) {
        // A malformed deep link (?start=...) or locale must not leave the buyer without a chat.
        if (e.status !== 422) { throw e; }
        created = await createSession({});
      }
      session = created.session_id;
      sessionStorage.setItem(storeKey, session);
    }
    poll();
  }

  function createSession(body) {
    return api("/sessions", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  }

  async function poll() {
    for (;;) {
      try {
        // the first request after a reload also brings back the buyer's own messages
        const mine = cursor === 0 ? "&mine=true" : "";
        const data = await api("/sessions/" + encodeURIComponent(session) + "/messages?wait=25&after=" + cursor + mine);
        data.messages.forEach(function (m) {
          add(m.author === "buyer" ? "in" : "out", m.text, m.author === "buyer" ? [] : m.buttons, m.attachments);
        });
        cursor = data.cursor;
        if (offline) { offline = false; showError(""); }  // never wipe an error about a rejected message
      } catch (e) {
        if (e.status === 404) { sessionStorage.removeItem(storeKey); session = null; return start(); }
        offline = true;
        showError("Нет связи, пробую снова…");
        await new Promise(function (r) { setTimeout(r, 2000); });
      }
    }
  }

  function clientId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(12)), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function post(body) {
    try {
      await api("/sessions/" + encodeURIComponent(session) + "/messages", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)
      });
      showError("");
      return true;
    } catch (e) {
      showError(e.message);
      return false;
    }
  }

  async function sendButton(button) {
    const li = add("in", button.title);
    if (!await post({button: button.payload, client_id: clientId()})) { notSent(li); }
  }

  // Characters as the server counts them (code points: an emoji is one, not two UTF-16 units).
  function length(text) { return Array.from(text).length; }

  function tooLong(text) {
    return "Сообщение слишком длинное: " + length(text) + " симв., можно не больше " + maxChars +
      ". Сократите его или отправьте частями.";
  }

  // No maxlength: the browser would cut a pasted text silently; the counter shows the limit instead.
  function updateCounter() {
    const used = length(input.value.trim());
    counter.hidden = used < maxChars * 0.8;
    counter.textContent = used + " / " + maxChars;
    counter.classList.toggle("chat__counter--over", used > maxChars);
  }

  input.addEventListener("input", updateCounter);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {  // Shift+Enter: a new line
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) { return; }
    if (length(text) > maxChars) { showError(tooLong(text)); return; }  // kept in the box to shorten
    const li = add("in", text);
    if (await post({text: text, client_id: clientId()})) { input.value = ""; updateCounter(); } else { notSent(li); }
  });

  fileInput.addEventListener("change", async function () {
    const file = fileInput.files[0];
    if (!file) { return; }
    const data = new FormData();
    data.append("file", file);
    data.append("client_id", clientId());
    const li = add("in", "📎 " + file.name);
    try {
      await api("/sessions/" + encodeURIComponent(session) + "/messages", {method: "POST", body: data});
      showError("");
    } catch (e) {
      showError(e.message);
      notSent(li);
    }
    fileInput.value = "";
  });

  start().catch(function (e) { showError(e.message); });
})();
