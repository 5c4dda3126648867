/* newsfund embed.js: the newsroom's boxes on its article pages, with no dependencies.
     <script src="{PUBLIC_URL}/embed.js" async></script>
     <div data-newsfund="campaign:twenty-years"></div>   (also "subscribe", "follow", "prompt")
   Each box gets its height reserved, then an iframe of ours, resized from the messages of that
   iframe only, sent from our origin only. See README, "Embeds". */
(function () {
  "use strict";
  var ORIGIN = "__NEWSFUND_ORIGIN__";
  // What each box takes before its frame says (its first step at a phone's width fits).
  var HEIGHTS = { campaign: 440, subscribe: 520, follow: 320 };
  var PROMPT_HEIGHT = 260; // an inline prompt's (app/prompts/views.py HEIGHTS)
  var frames = [];
  var store = null;
  try { store = window.localStorage; } catch (e) { /* storage blocked */ }
  function get(key) {
    try { return store.getItem("newsfund-" + key); } catch (e) { return null; }
  }
  function put(key, value) {
    try { store.setItem("newsfund-" + key, value); } catch (e) { /* storage blocked */ }
  }
  function json(key, empty) {
    try { return JSON.parse(get(key)) || empty; } catch (e) { return empty; }
  }

  // Tokens handed back in the address's fragment by a top-level visit to our site: the follow
  // box's reader token (/embed/news/follow/connect), the prompts' status token (thank-you and
  // confirmation pages). Kept in this site's storage, taken out of the address.
  var hash = location.hash, handed = false;
  ["reader", "status"].forEach(function (key) {
    var found = new RegExp("newsfund-" + key + "=([\\w.\\-]+)").exec(hash);
    if (found) { put(key, found[1]); handed = true; }
  });
  if (handed) history.replaceState(history.state, "", location.href.split("#")[0]);

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

  function frame(box, url, title, height) {
    var iframe = document.createElement("iframe");
    iframe.src = url;
    iframe.title = title;
    iframe.style.display = "block";
    iframe.style.width = "100%";
    iframe.style.border = "0";
    iframe.style.height = (height || box.offsetHeight) + "px";
    frames.push(iframe);
    box.appendChild(iframe);
    return iframe;
  }

  function show(box, what) {
    var kind = what.split(":")[0], params = {};
    if (!HEIGHTS[kind]) return;
    reserve(box, HEIGHTS[kind]);
    if (kind === "campaign") {
      frame(box, ORIGIN + "/embed/campaigns/" + encodeURIComponent(what.slice(9)) + "?" +
            query(params), "Support our journalism");
    } else if (kind === "subscribe") {
      frame(box, ORIGIN + "/embed/news/subscribe?" + query(params), "The daily news email");
    } else {
      params.reader = get("reader");
      frame(box, ORIGIN + "/embed/news/follow?" + query(params), "Personalize your news");
    }
  }

  // "prompt": the prompts decide (app/prompts/views.py has the contract). What they need to
  // know stays in this site's storage: article views, prompts seen and dismissed, "I already
  // gave", a random id for the A/B split; none of it is kept when the browser asks not to be
  // tracked (Global Privacy Control, Do Not Track), but the reader's own choices are.
  var promptBoxes = [], prompts = {};
  var untracked = navigator.globalPrivacyControl === true || navigator.doNotTrack === "1";

  function decide() {
    var views = (+get("views") || 0) + 1, rid = get("rid"), seen = json("seen", {});
    if (!untracked) {
      put("views", views);
      if (!rid) {
        var bytes = new Uint8Array(16);
        crypto.getRandomValues(bytes);
        rid = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
        put("rid", rid);
      }
    }
    var params = {
      views: untracked ? "" : views, rid: untracked ? "" : rid,
      seen: Object.keys(seen).map(function (id) { return id + "." + seen[id].join("."); }).join(","),
      dismissed: json("dismissed", []).join(","), gave_until: get("gave_until"),
      email: /[?&]utm_medium=email(&|$)/.test(location.search) ? "1" : "",
      reader: get("reader"), status: get("status")
    };
    fetch(ORIGIN + "/embed/prompts/decision?" + query(params), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { prompts: [] }; })
      .then(function (answer) {
        answer.prompts.forEach(function (p) {
          var box = p.placement === "inline" ? promptBoxes.shift() : fixed(p.placement);
          if (!box) return;
          prompts[p.id] = { box: box, frame: frame(box, p.url, "A message from the newsroom", p.height) };
          var was = seen[p.id];
          seen[p.id] = [p.period, was && was[0] === p.period ? was[1] + 1 : 1];
        });
        if (answer.track) put("seen", JSON.stringify(seen));
        promptBoxes.forEach(collapse);
      })
      .catch(function () { promptBoxes.forEach(collapse); });
  }

  function fixed(placement) {
    var box = document.createElement("div");
    box.setAttribute("data-newsfund-" + placement, "");
    box.style.cssText = "position:fixed;z-index:2147483000;left:0;right:0;margin:auto;" +
      (placement === "overlay" ? "top:10vh;max-width:32rem;width:92%" : "bottom:0;width:100%");
    document.body.appendChild(box);
    return box;
  }

  // No prompt for this box: nothing reserved, whatever the newsroom's stylesheet says.
  function collapse(box) { box.style.minHeight = "0"; }

  function close(id) {
    var p = prompts[id];
    if (!p) return;
    p.frame.remove();
    if (p.box.parentNode === document.body) p.box.remove();
    delete prompts[id];
  }

  window.addEventListener("message", function (event) {
    var data = event.data, mine = false;
    if (event.origin !== ORIGIN || !data) return;
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow !== event.source) continue;
      mine = true;
      if (data.newsfund === "height") {
        frames[i].style.height = Math.min(Math.max(+data.height || 0, 0), 4000) + "px";
      }
    }
    if (!mine) return;
    if (data.newsfund === "prompt-dismiss") {
      var dismissed = json("dismissed", []);
      if (dismissed.indexOf(+data.id) < 0) dismissed.push(+data.id);
      put("dismissed", JSON.stringify(dismissed.slice(-50)));
      close(data.id);
    } else if (data.newsfund === "prompt-gave") {
      put("gave_until", Math.floor(Date.now() / 1000 + 86400 * (+data.days || 0)));
      Object.keys(prompts).forEach(close);
    }
  });

  function start() {
    var boxes = document.querySelectorAll("[data-newsfund]:not([data-newsfund-ready])");
    for (var i = 0; i < boxes.length; i++) {
      var what = boxes[i].getAttribute("data-newsfund");
      boxes[i].setAttribute("data-newsfund-ready", "");
      if (what !== "prompt") show(boxes[i], what);
      else if (window.fetch) {
        reserve(boxes[i], PROMPT_HEIGHT);
        promptBoxes.push(boxes[i]);
      }
    }
    if (promptBoxes.length) decide();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
