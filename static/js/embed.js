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
  // tracked (Global Privacy Control, Do Not Track), but the reader's own choices are. The
  // decision is made here, from the live prompts' rules (the same for every reader), unless
  // the server knows more (a follow-box reader token) or the page has no Web Crypto.
  var promptBoxes = [], prompts = {};
  var untracked = navigator.globalPrivacyControl === true || navigator.doNotTrack === "1";

  /* choose: begin (app/prompts/decide.py, in the browser; a test holds the two together) */
  var DONORS = ["never", "lapsed", "ended", "recent", "monthly"];
  function b64(text) { return atob(text.replace(/-/g, "+").replace(/_/g, "/")); }
  // The status token, read (base64url JSON "." base64url seconds "." signature), not checked.
  function statusOf(token, now) {
    try {
      var parts = token.split("."), stamp = b64(parts[1]), at = 0, v = JSON.parse(b64(parts[0]));
      for (var i = 0; i < stamp.length; i++) at = at * 256 + stamp.charCodeAt(i);
      var age = Math.floor(now / 1000) - at;
      if (token.length <= 200 && parts.length === 3 && age >= 0 && age <= 7776000 &&
          v.length === 2 && (v[1] === 0 || v[1] === 1) && (!v[0] || DONORS.indexOf(v[0]) >= 0)) {
        return { donor: v[0] || null, subscriber: v[1] === 1 };
      }
    } catch (e) { /* not a token */ }
    return {};
  }
  function matches(c, f) {
    var s = c.segment, d = f.donor;
    return s === "everyone" ||
      s === "non_donor" && (!d || d === "never" || d === "lapsed") ||
      s === "former_donor" && (d === "lapsed" || d === "ended") ||
      s === "monthly_donor" && d === "monthly" ||
      s === "subscriber" && f.subscriber === true ||
      s === "not_subscriber" && f.subscriber !== true ||
      s === "from_email" && f.email ||
      s === "engaged" && f.views >= (c.min_views || 1) ||
      s === "follower" && c.category_id != null && f.follows.indexOf(c.category_id) >= 0;
  }
  function period(reset, now) {
    var day = new Date(now).toISOString().slice(0, 10);
    if (reset === "daily") return day;
    if (reset === "monthly") return day.slice(0, 7);
    if (reset !== "weekly") return "all";
    var t = new Date(day), week;
    t.setUTCDate(t.getUTCDate() + 4 - (t.getUTCDay() || 7)); // the Thursday of its ISO week
    week = Math.ceil(((t - Date.UTC(t.getUTCFullYear(), 0, 1)) / 864e5 + 1) / 7);
    return t.getUTCFullYear() + "-W" + (week < 10 ? "0" : "") + week;
  }
  function due(c, f, now) {
    var views = f.views, seen = f.seen[c.id];
    if (views < c.start_at_view || (views - c.start_at_view) % c.every_nth_view) return false;
    return c.max_times == null ||
      (seen && seen[0] === period(c.reset, now) ? seen[1] : 0) < c.max_times;
  }
  function rank(a, b) { return a.priority - b.priority || a.id - b.id; }
  // The variants of the prompts that have two, for this reader: from SHA-256("<id>:<rid>").
  function variants(live, rid) {
    return Promise.all(live.map(function (c) {
      if (c.variants.length < 2 || !rid) return c.variants[0];
      return crypto.subtle.digest("SHA-256", new TextEncoder().encode(c.id + ":" + rid))
        .then(function (digest) {
          var bytes = new Uint8Array(digest), n = 0;
          for (var i = 0; i < 8; i++) n = (n * 256 + bytes[i]) % c.variants.length;
          return c.variants[n];
        });
    }));
  }
  // At most one prompt per placement: the reader's own segment's first, then "everyone"'s.
  function choose(live, f, now, picked) {
    if (now < f.gave_until * 1000) return [];
    var own = live.filter(function (c) { return c.segment !== "everyone" && matches(c, f); })
      .sort(rank)[0], chosen = {};
    live.filter(function (c) {
      return (c.segment === "everyone" || own && c.segment === own.segment) &&
        f.dismissed.indexOf(c.id) < 0 && matches(c, f) && due(c, f, now);
    }).sort(function (a, b) {
      return (a.segment === "everyone") - (b.segment === "everyone") || rank(a, b);
    }).forEach(function (c) {
      chosen[c.placement] = chosen[c.placement] || { id: c.id, placement: c.placement,
        variant: picked[live.indexOf(c)], period: period(c.reset, now), height: c.height };
    });
    return ["inline", "overlay", "bottom_bar"].filter(function (p) { return chosen[p]; })
      .map(function (p) { return chosen[p]; });
  }
  /* choose: end */

  function asked(response) { return response.ok ? response.json() : { prompts: [] }; }

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
    var facts = {
      views: untracked ? 1 : views, rid: untracked ? "" : rid, seen: seen,
      dismissed: json("dismissed", []), gave_until: +get("gave_until") || 0,
      email: /[?&]utm_medium=email(&|$)/.test(location.search), follows: []
    }, reader = get("reader"), answer;
    if (!reader && window.crypto && crypto.subtle) {
      var known = statusOf(get("status") || "", Date.now());
      facts.donor = known.donor;
      facts.subscriber = known.subscriber;
      answer = fetch(ORIGIN + "/embed/prompts/live", { credentials: "omit" }).then(asked)
        .then(function (live) {
          return variants(live.prompts, facts.rid).then(function (picked) {
            var track = untracked ? "" : "1";
            return { track: !untracked, prompts: choose(live.prompts, facts, Date.now(), picked)
              .map(function (p) {
                p.url = ORIGIN + "/embed/prompts/" + p.id + "/" + p.variant + "?" +
                  query({ track: track });
                return p;
              }) };
          });
        });
    } else {
      answer = fetch(ORIGIN + "/embed/prompts/decision?" + query({
        views: untracked ? "" : views, rid: facts.rid,
        seen: Object.keys(seen).map(function (id) { return id + "." + seen[id].join("."); }).join(","),
        dismissed: facts.dismissed.join(","), gave_until: get("gave_until"),
        email: facts.email ? "1" : "", reader: reader, status: get("status")
      }), { credentials: "omit" }).then(asked);
    }
    answer.then(function (answer) {
      answer.prompts.forEach(function (p) {
        var box = p.placement === "inline" ? promptBoxes.shift() : fixed(p.placement);
        if (!box) return;
        prompts[p.id] = { box: box, frame: frame(box, p.url, "A message from the newsroom", p.height) };
        var was = seen[p.id];
        seen[p.id] = [p.period, was && was[0] === p.period ? was[1] + 1 : 1];
      });
      if (answer.track) put("seen", JSON.stringify(seen));
      promptBoxes.forEach(collapse);
    }).catch(function () { promptBoxes.forEach(collapse); });
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
