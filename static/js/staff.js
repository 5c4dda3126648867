/*
 * Staff pages: refresh a live campaign's dashboard figures without reloading the page.
 * The page is complete without this script; it only keeps [data-figure] values current from
 * the JSON endpoint named by data-figures-url, every 30 seconds while the tab is visible.
 * Every text comes written by the server (money in the campaign's currency, "as of" in the
 * organisation's zone with its date) and is inserted as is: the browser's own zone and locale
 * never show through.
 */
(function () {
  "use strict";

  var dashboard = document.querySelector("[data-dashboard][data-live]");
  if (!dashboard || !window.fetch) {
    return;
  }
  var url = dashboard.getAttribute("data-figures-url");
  var problem = dashboard.querySelector("[data-refresh-problem]");
  var asOf = dashboard.querySelector('time[data-figure="as_of"]');
  var PERIOD_MS = (parseInt(dashboard.getAttribute("data-refresh-seconds"), 10) || 30) * 1000;

  function show(data) {
    var fields = dashboard.querySelectorAll("[data-figure]");
    for (var i = 0; i < fields.length; i++) {
      var key = fields[i].getAttribute("data-figure");
      if (Object.prototype.hasOwnProperty.call(data.text, key)) {
        fields[i].textContent = data.text[key];
      }
    }
    if (asOf) {
      asOf.setAttribute("datetime", data.as_of);
    }
    if (problem) {
      problem.hidden = true;
    }
  }

  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(show)
      .catch(function () {
        if (problem) {
          problem.hidden = false;
        }
      });
  }

  dashboard.setAttribute("data-refreshing", "");
  window.setInterval(refresh, PERIOD_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
})();
