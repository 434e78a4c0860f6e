// Embeddable web chat: <script src="https://your-otklik/static/webchat.js" defer></script>
// Adds a round button in the corner that opens the chat in an iframe served by otklik.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src).origin;
  var start = script.getAttribute("data-start") || "";
  var button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", "Открыть чат");
  button.textContent = "💬";
  button.style.cssText = "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#6b2fd6;color:#fff;font-size:24px;cursor:pointer;z-index:2147483000;box-shadow:0 2px 8px rgba(0,0,0,.3)";
  var frame = null;
  button.addEventListener("click", function () {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.title = "Чат";
      frame.src = base + "/chat" + (start ? "?start=" + encodeURIComponent(start) : "");
      frame.style.cssText = "position:fixed;right:20px;bottom:88px;width:360px;height:520px;max-width:90vw;max-height:75vh;" +
        "border:0;border-radius:12px;box-shadow:0 4px 16px rgba(0,0,0,.3);z-index:2147483000;background:#fff";
      document.body.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
  });
  document.body.appendChild(button);
})();
