/* Inside a box framed on an article page (templates/embeds/): tell the article how tall the
   box is, on load and whenever that changes (an error message, the confirmation), so that
   the frame is never cut off. Posted to the article's origin only (data-parent-origin, which
   the server checked against EMBED_ORIGINS), never to "*". */
(function () {
  "use strict";
  var origin = document.documentElement.getAttribute("data-parent-origin");
  var box = document.querySelector("[data-embed-box]");
  if (!origin || !box || window.parent === window) return;
  var last = -1;
  function send() {
    var height = Math.ceil(box.getBoundingClientRect().bottom + window.scrollY);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ newsfund: "height", height: height }, origin);
  }
  send();
  if (window.ResizeObserver) new ResizeObserver(send).observe(box);
  window.addEventListener("load", send);
})();
