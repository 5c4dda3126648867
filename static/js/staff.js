/*
 * Staff pages: refresh a live campaign's dashboard figures without reloading the page.
 * The page is complete without this script; it only keeps [data-figure] values current from
 * the JSON endpoint named by data-figures-url, every 30 seconds while the tab is visible.
 */
(function () {
  "use strict";

  var dashboard = document.querySelector("[data-dashboard][data-live]");
  if (!dashboard || !window.fetch) {
    return;
  }
  var url = dashboard.getAttribute("data-figures-url");
  var status = dashboard.querySelector("[data-refresh-status]");
  var PERIOD_MS = (parseInt(dashboard.getAttribute("data-refresh-seconds"), 10) || 30) * 1000;

  function show(data) {
    var fields = dashboard.querySelectorAll("[data-figure]");
    for (var i = 0; i < fields.length; i++) {
      var key = fields[i].getAttribute("data-figure");
      if (Object.prototype.hasOwnProperty.call(data.text, key)) {
        fields[i].textContent = data.text[key];
      }
    }
    if (status) {
      var when = new Date(data.as_of);
      status.textContent = "Figures as of " + when.toLocaleTimeString() +
        "; they refresh while the campaign is live.";
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
        if (status) {
          status.textContent = "The figures could not be refreshed; reload the page to see the latest.";
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
