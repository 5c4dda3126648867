/* Inside a prompt's box (templates/prompts/box.html): count the impression once, and the
   dismissal; tell the article (its origin only, data-parent-origin) when the reader closes the
   box or says they already gave, so that embed.js keeps the choice in the article site's
   storage. Nothing is counted when the box was framed with track=0 (GPC, DNT). */
(function () {
  "use strict";
  var origin = document.documentElement.getAttribute("data-parent-origin");
  var box = document.querySelector("[data-prompt]");
  if (!box) return;
  var id = +box.getAttribute("data-prompt");
  var track = box.getAttribute("data-prompt-track") === "1";

  function count(what) {
    if (!track || !window.fetch) return;
    fetch(box.getAttribute("data-prompt-" + what), { method: "POST", keepalive: true,
                                                     credentials: "omit" });
  }

  function tell(message) {
    if (origin && window.parent !== window) window.parent.postMessage(message, origin);
  }

  count("impressions");
  box.addEventListener("click", function (event) {
    var action = event.target.getAttribute && event.target.getAttribute("data-prompt-action");
    if (action === "dismiss") {
      count("dismissals");
      tell({ newsfund: "prompt-dismiss", id: id });
    } else if (action === "gave") {
      tell({ newsfund: "prompt-gave", id: id,
             days: +box.getAttribute("data-prompt-gave-days") || 0 });
    }
  });
})();
