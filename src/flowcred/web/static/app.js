/* flowcred web UI: small progressive enhancements. Every page works without this file except
   Test Connection, which needs a request without leaving the form. No secret is ever stored by
   this script: it keeps nothing in localStorage, sessionStorage or cookies. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // After the OAuth callback: continue to the auth config (a same-site navigation, so the
  // session cookie is sent again).
  var cont = document.querySelector("[data-continue]");
  if (cont && cont.getAttribute("data-continue")) {
    window.setTimeout(function () {
      window.location.replace(cont.getAttribute("data-continue"));
    }, 600);
  }

  // Searchable lists: <input data-filter="#list"> hides items whose text does not match.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var list = document.querySelector(input.getAttribute("data-filter"));
    if (!list) { return; }
    var count = document.querySelector(input.getAttribute("data-filter-count") || "#none");
    function apply() {
      var words = input.value.toLowerCase().trim().split(/\s+/).filter(Boolean);
      var shown = 0;
      list.querySelectorAll("[data-search]").forEach(function (item) {
        var text = item.getAttribute("data-search").toLowerCase();
        var ok = words.every(function (w) { return text.indexOf(w) !== -1; });
        item.hidden = !ok;
        if (ok) { shown += 1; }
      });
      if (count) { count.textContent = shown + (shown === 1 ? " type" : " types"); }
    }
    input.addEventListener("input", apply);
    apply();
  });

  // Dangerous actions ask first: <form data-confirm="...">.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // Copy a value shown once (a new API key) without selecting it by hand.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
  });

  // Test Connection: send the form's current values (unsaved) or nothing (a stored config) to
  // data-test-url and show the outcome; the answer holds no secret.
  document.querySelectorAll("button[data-test-url]").forEach(function (button) {
    var out = document.querySelector(button.getAttribute("data-test-result"));
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var form = button.form;
      var body = form && button.hasAttribute("data-test-form") ? new FormData(form) : new FormData();
      body.set("csrf_token", csrfToken());
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      if (out) { out.className = "test-result pending"; out.textContent = "Testing…"; }
      fetch(button.getAttribute("data-test-url"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() }
      }).then(function (response) {
        return response.json().then(function (data) { return { status: response.status, data: data }; });
      }).then(function (answer) {
        var data = answer.data || {};
        if (!out) { return; }
        if (answer.status === 401) {
          out.className = "test-result fail";
          out.textContent = "Your session has ended. Sign in again.";
        } else if (data.ok === true) {
          out.className = "test-result ok";
          out.textContent = "Connection works: " + data.message + " (" + data.latencyMs + " ms)";
        } else if (data.ok === false) {
          out.className = "test-result fail";
          out.textContent = "Connection failed: " + data.message;
        } else {
          out.className = "test-result fail";
          out.textContent = data.detail || "The test could not run.";
        }
        if (form) {
          form.querySelectorAll("p.error[id^='err-']").forEach(function (slot) { slot.textContent = ""; });
        }
        if (data.errors) {
          Object.keys(data.errors).forEach(function (name) {
            var slot = document.getElementById("err-" + name);
            if (slot) { slot.textContent = data.errors[name]; }
          });
        }
      }).catch(function () {
        if (out) { out.className = "test-result fail"; out.textContent = "The test could not reach flowcred."; }
      }).finally(function () {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
    });
  });
}());
