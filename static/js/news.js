/*
 * Levant Wire: My news. Follow buttons that work without a page reload.
 *
 * Each button is a plain form (POST with its CSRF token) that works without JavaScript: the
 * server redirects back to the page. Here the same form is sent with fetch; the button's
 * aria-pressed, its visible state and the form's next value are updated from the server's
 * answer, the story list is replaced, and a polite live region says what changed. Any problem
 * (offline, a signed-out session, an error) falls back to submitting the form normally.
 */
(function () {
  "use strict";

  if (!window.fetch || !window.FormData) return;

  var status = document.querySelector("[data-follow-status]");
  var articles = document.querySelector("[data-news-articles]");

  function apply(form, data) {
    var button = form.querySelector("button");
    var state = form.querySelector("[data-follow-state]");
    var next = form.querySelector('input[name="follow"]');
    button.setAttribute("aria-pressed", data.following ? "true" : "false");
    if (state) state.textContent = data.following ? "Following" : "Follow";
    if (next) next.value = data.following ? "0" : "1";
    if (articles && typeof data.articles_html === "string") {
      articles.innerHTML = data.articles_html;
    }
    if (status) status.textContent = data.message || "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-follow-form]")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button.getAttribute("aria-busy") === "true") return; // one request at a time
    button.setAttribute("aria-busy", "true");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      redirect: "error" // a redirect here means the session ended: go the normal way
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") === -1) throw new Error("fallback");
        return response.json();
      })
      .then(function (data) {
        button.removeAttribute("aria-busy");
        apply(form, data);
      })
      .catch(function () {
        button.removeAttribute("aria-busy");
        form.submit();
      });
  });
})();
