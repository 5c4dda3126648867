/*
 * Year-end statements: while a run is under way, each request sends one time-boxed share and
 * comes back here; this submits the "Continue sending" form again after a short pause. The page
 * works without it (the button does the same).
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-auto-continue]");
  if (!form) {
    return;
  }
  window.setTimeout(function () {
    if (!document.hidden) {
      form.submit();
    }
  }, 1500);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      window.setTimeout(function () { form.submit(); }, 1500);
    }
  });
})();
