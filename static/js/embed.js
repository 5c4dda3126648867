/* newsfund embed.js: the newsroom's boxes on its article pages, with no dependencies.
     <script src="{PUBLIC_URL}/embed.js" async></script>
     <div data-newsfund="campaign:twenty-years"></div>   (also "subscribe", "follow", "prompt")
   Each box gets its height reserved, then an iframe of ours, resized from the messages of that
   iframe only, sent from our origin only. See README, "Embeds". */
(function () {
  "use strict";
  var ORIGIN = "__NEWSFUND_ORIGIN__";
  // What each box takes before its frame says (its first step at a phone's width fits).
  var HEIGHTS = { campaign: 440, subscribe: 420, follow: 320 };
  var READER = "newsfund-reader";
  var frames = [];
  var store = null;
  try { store = window.localStorage; } catch (e) { /* storage blocked: no follow sign-in */ }

  // Back from signing in at the top level (/embed/news/follow/connect): the follow box's
  // reader token, kept in this site's storage and taken out of the address.
  var handed = /newsfund-reader=([\w.\-]+)/.exec(location.hash);
  if (handed) {
    try { store.setItem(READER, handed[1]); } catch (e) { /* no storage */ }
    history.replaceState(history.state, "", location.href.split("#")[0]);
  }

  function query(params) {
    var parts = ["page=" + encodeURIComponent(location.href.split("#")[0])];
    for (var name in params) {
      if (params[name]) parts.push(name + "=" + encodeURIComponent(params[name]));
    }
    return parts.join("&");
  }

  function reserve(box, height) {
    if (box.offsetHeight < height) box.style.minHeight = height + "px";
  }

  function frame(box, path, params, title) {
    var iframe = document.createElement("iframe");
    iframe.src = ORIGIN + path + "?" + query(params);
    iframe.title = title;
    iframe.style.display = "block";
    iframe.style.width = "100%";
    iframe.style.border = "0";
    iframe.style.height = box.offsetHeight + "px";
    frames.push(iframe);
    box.appendChild(iframe);
  }

  function show(box, what, params) {
    params = params || {};
    var kind = what.split(":")[0];
    if (!HEIGHTS[kind]) return;
    reserve(box, HEIGHTS[kind]);
    if (kind === "campaign") {
      frame(box, "/embed/campaigns/" + encodeURIComponent(what.slice(9)), params,
            "Support our journalism");
    } else if (kind === "subscribe") {
      frame(box, "/embed/news/subscribe", params, "The daily news email");
    } else {
      try { params.reader = store.getItem(READER); } catch (e) { /* no storage */ }
      frame(box, "/embed/news/follow", params, "Personalize your news");
    }
  }

  // "prompt": the prompts decide which box, if any (app/prompts). The decision endpoint answers
  // {"embed": "campaign:<slug>" | "subscribe" | "follow" | null, "params": {utm_campaign, ...}}.
  function prompt(box) {
    reserve(box, HEIGHTS.campaign);
    if (!window.fetch) return;
    fetch(ORIGIN + "/embed/prompts/decision?" + query({}), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d && d.embed) show(box, d.embed, d.params);
        else box.style.minHeight = "";
      })
      .catch(function () { box.style.minHeight = ""; });
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== ORIGIN || !data || data.newsfund !== "height") return;
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === event.source) {
        frames[i].style.height = Math.min(Math.max(+data.height || 0, 0), 4000) + "px";
      }
    }
  });

  function start() {
    var boxes = document.querySelectorAll("[data-newsfund]:not([data-newsfund-ready])");
    for (var i = 0; i < boxes.length; i++) {
      var what = boxes[i].getAttribute("data-newsfund");
      boxes[i].setAttribute("data-newsfund-ready", "");
      if (what === "prompt") prompt(boxes[i]);
      else show(boxes[i], what);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
