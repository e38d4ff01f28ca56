"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 2000;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + "%"; }
  function num(x) { return x === null || x === undefined ? "–" : x.toLocaleString("en-US"); }
  function bytes(x) {
    if (x === null || x === undefined) return "–";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return (i === 0 ? x : x.toFixed(1)) + " " + units[i];
  }
  function duration(s) {
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  // A horizontal bar drawn in SVG (attributes, not inline styles, so the
  // page's Content-Security-Policy needs no 'unsafe-inline').
  function bar(fraction, kind, worker) {
    var w = 160, h = 12;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "bar");
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("data-worker", worker);
    svg.setAttribute("data-kind", kind);
    var track = document.createElementNS(SVG, "rect");
    track.setAttribute("class", "track");
    track.setAttribute("width", w);
    track.setAttribute("height", h);
    track.setAttribute("rx", 2);
    svg.appendChild(track);
    var fill = document.createElementNS(SVG, "rect");
    fill.setAttribute("class", "fill " + kind);
    var f = fraction === null || fraction === undefined ? 0 : Math.max(0, Math.min(1, fraction));
    fill.setAttribute("width", (w * f).toFixed(1));
    fill.setAttribute("height", h);
    fill.setAttribute("rx", 2);
    svg.appendChild(fill);
    return svg;
  }
  function barCell(fraction, kind, worker) {
    var td = el("td");
    td.appendChild(bar(fraction, kind, worker));
    td.appendChild(document.createTextNode(pct(fraction)));
    return td;
  }
  function renderWorkers(workers) {
    var body = document.querySelector("#workers tbody");
    body.replaceChildren();
    workers.forEach(function (w) {
      var tr = el("tr");
      tr.setAttribute("data-worker", w.name);
      var name = el("td");
      name.appendChild(el("div", w.name));
      name.appendChild(el("small", w.error ? "stats: " + w.error : w.addr, w.error ? "err" : ""));
      tr.appendChild(name);
      tr.appendChild(barCell(w.hash_share, "hash", w.name));
      tr.appendChild(barCell(w.request_share, "req", w.name));
      tr.appendChild(el("td", num(w.requests), "num"));
      tr.appendChild(el("td", num(w.entries), "num"));
      tr.appendChild(el("td", bytes(w.bytes), "num"));
      tr.appendChild(el("td", pct(w.hit_ratio), "num"));
      body.appendChild(tr);
    });
    if (workers.length === 0) {
      var tr = el("tr");
      var td = el("td", "no live worker");
      td.setAttribute("colspan", 7);
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  function renderMembers(members) {
    var body = document.querySelector("#members tbody");
    body.replaceChildren();
    members.forEach(function (m) {
      var tr = el("tr");
      tr.setAttribute("data-member", m.name);
      tr.appendChild(el("td", m.name));
      tr.appendChild(el("td", m.role || "–"));
      tr.appendChild(el("td", m.addr || "–"));
      tr.appendChild(el("td", m.state, "state-" + m.state));
      tr.appendChild(el("td", m.state === "dead" || m.state === "left" ? "–" : duration(m.uptime_seconds), "num"));
      body.appendChild(tr);
    });
  }
  function render(d) {
    document.getElementById("node").textContent = d.role + " " + d.node;
    document.getElementById("rate").textContent =
      d.requests.per_second === null ? "–" : d.requests.per_second.toFixed(1) + " /s";
    document.getElementById("total").textContent = num(d.requests.total);
    document.getElementById("live").textContent = d.workers.length;
    var hits = 0, all = 0;
    d.workers.forEach(function (w) { hits += w.hits || 0; all += w.requests || 0; });
    document.getElementById("hitratio").textContent = all ? pct(hits / all) : "–";
    renderWorkers(d.workers);
    renderMembers(d.members);
    document.getElementById("footer").textContent =
      "Hash space shares from " + d.hash_share_keys + " sample keys; request rate over the last " +
      d.requests.window_seconds + " s; refreshed every " + REFRESH_MS / 1000 + " s.";
  }
  function setStatus(text, error) {
    var s = document.getElementById("status");
    s.textContent = text;
    s.className = error ? "status error" : "status";
  }
  function refresh() {
    fetch("dashboard.json", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("dashboard.json answered " + r.status);
        return r.json();
      })
      .then(function (d) {
        render(d);
        setStatus("updated " + new Date(d.time_ms).toLocaleTimeString(), false);
        document.body.setAttribute("data-loaded", "true");
      })
      .catch(function (e) { setStatus("cannot refresh: " + e.message, true); })
      .finally(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
