// Shared admin helpers: every state-changing fetch carries the session's CSRF token.
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  async function send(method, url, body) {
    const headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
    let payload = body;
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    if (response.status === 401) { window.location = "/admin/login?next=" + encodeURIComponent(location.pathname + location.search); }
    return response;
  }
  // <select data-autosubmit> submits its form on change (no inline handlers: the admin's CSP forbids them).
  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });
  window.otklik = {
    csrf,
    post: (url, body) => send("POST", url, body),
    get: (url) => fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" }),
  };
})();
