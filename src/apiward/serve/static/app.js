/* apiward console behaviour. Loaded as a file (the CSP forbids inline scripts). */
(function () {
  "use strict";

  function fmtHour(epoch) {
    var d = new Date(epoch * 1000);
    return d.toISOString().slice(0, 13).replace("T", " ") + ":00";
  }

  function drawCharts(root) {
    var nodes = (root || document).querySelectorAll("[data-series]");
    nodes.forEach(function (el) {
      if (el.dataset.drawn || typeof uPlot === "undefined") { return; }
      var s = JSON.parse(el.dataset.series);
      if (!s.t || s.t.length === 0) { el.textContent = "No traffic yet."; return; }
      el.dataset.drawn = "1";
      var opts = {
        width: Math.max(320, el.clientWidth - 12), height: 240,
        series: [
          {},
          { label: "calls", stroke: "#0b4f9c", width: 2 },
          { label: "errors (4xx/5xx)", stroke: "#b42318", width: 2, dash: [6, 4] },
          { label: "new findings", stroke: "#7a4d00", width: 2, scale: "f", points: { show: true, size: 6 } }
        ],
        axes: [{}, { label: "calls" }, { side: 1, scale: "f", label: "findings", grid: { show: false } }],
        scales: { x: { time: true } }
      };
      new uPlot(opts, [s.t, s.calls, s.errors, s.findings], el);
    });
    (root || document).querySelectorAll("td.ts[data-epoch]").forEach(function (td) {
      td.textContent = fmtHour(Number(td.dataset.epoch));
    });
  }

  function liveFindings() {
    var src = document.body.dataset.stream;
    var box = document.getElementById("live");
    if (!src || !box || typeof EventSource === "undefined") { return; }
    var n = 0;
    var es = new EventSource(src);
    es.addEventListener("finding", function (ev) {
      var f = JSON.parse(ev.data);
      n += 1;
      box.hidden = false;
      box.textContent = "";
      var msg = document.createElement("span");
      msg.textContent = n + " new or updated finding(s); latest: " + f.severity + " " + f.title + " (" + (f.actor_display || f.endpoint) + ") ";
      var a = document.createElement("a");
      a.href = "/findings/" + encodeURIComponent(f.id);
      a.textContent = "open";
      box.appendChild(msg);
      box.appendChild(a);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    liveFindings();
  });
  document.addEventListener("htmx:afterSwap", function (ev) { drawCharts(ev.target); });
})();
