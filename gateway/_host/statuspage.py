"""The status page: ``GET /ui`` on the admin endpoint, one self-contained HTML page (plain SVG, no build step).

The page itself holds no data, so it is served without the token; it reads the token from the URL fragment
(``/ui#token=...``: a fragment never reaches the server or its logs) or asks for it, keeps it for the tab in
``sessionStorage``, and fetches ``/api/stats?config=1`` with ``Authorization: Bearer`` every second. It shows
the component graph (layered left to right, drawn as SVG), live counters, health, the alerts (from
``/api/alerts`` when an ``alerts`` processor runs), recent errors and the effective configuration with secrets
redacted. Each component's row shows its error rate (items refused and
failed per second, and their share of what reached it); a component with errors is outlined red in the graph.
"""

from __future__ import annotations

from aiohttp import web

from gateway._host.admin import AdminServer

__all__ = ["PAGE", "add_status_page"]

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>otelgw status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#0f1419;color:#d8dee9}
header{padding:10px 16px;background:#1b2330;display:flex;gap:24px;flex-wrap:wrap;align-items:baseline}
h1{font-size:18px;margin:0} h2{font-size:15px;margin:18px 16px 6px}
.ok{color:#8fbc5a}.bad{color:#ef6b73}.warn{color:#ebcb8b}
section{padding:0 16px} table{border-collapse:collapse;width:100%} td,th{padding:3px 8px;text-align:right;
border-bottom:1px solid #263040} th{color:#93a1b5;font-weight:500} td:first-child,th:first-child,
td:nth-child(2),th:nth-child(2){text-align:left}
svg text{fill:#d8dee9;font-size:11px} .edge{stroke:#51607a;fill:none;stroke-width:1.4}
rect.receiver{fill:#23405c}rect.processor{fill:#2e3b4f}rect.exporter{fill:#3b3150}rect.connector{fill:#4a4128}
rect.failing{stroke:#ef6b73;stroke-width:2}rect.dropping{stroke:#ebcb8b;stroke-width:2}
pre{background:#1b2330;padding:10px;overflow:auto;max-height:420px} #token-form{padding:16px}
</style></head><body>
<header><h1>otelgw</h1><span id="health">loading...</span><span id="uptime"></span><span id="memory"></span>
<span id="lag"></span><span id="generation"></span></header>
<div id="token-form" hidden><form onsubmit="return saveToken()">Admin token: <input id="token-input"
type="password" size="48"> <button>Show</button></form></div>
<h2>Pipelines</h2><section><svg id="graph" width="100%" height="120"></svg></section>
<h2>Components</h2><section><table id="components"><thead><tr><th>component</th><th>kind</th><th>in/s</th>
<th>out/s</th><th>in</th><th>out</th><th>refused</th><th>dropped</th><th>queue</th><th>latency</th><th>errors</th>
<th>refused/s</th><th>failed/s</th><th>error rate</th><th>status</th></tr></thead><tbody></tbody></table></section>
<div id="alerts-part" hidden><h2>Alerts</h2><section><table id="alerts"><thead><tr><th>alert</th><th>state</th>
<th>severity</th><th>value</th><th>processor</th><th>summary</th></tr></thead><tbody></tbody></table></section></div>
<h2>KPIs</h2><section><table id="kpis"><thead><tr><th>kpi</th><th>labels</th><th>value</th></tr></thead>
<tbody></tbody></table></section>
<h2>Recent errors</h2><section><table id="errors"><tbody></tbody></table></section>
<h2>Effective configuration (secrets redacted)</h2><section><pre id="config"></pre></section>
<script>
"use strict";
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) { sessionStorage.setItem("otelgw-token", fromHash); history.replaceState(null, "", location.pathname); }
let token = sessionStorage.getItem("otelgw-token") || "";
function saveToken() { token = document.getElementById("token-input").value.trim();
  sessionStorage.setItem("otelgw-token", token); refresh(); return false; }
const fmt = v => v === null || v === undefined ? "-" : (Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(1) + "M" :
  Math.abs(v) >= 1e4 ? (v / 1e3).toFixed(1) + "k" : (Number.isInteger(v) ? String(v) : v.toFixed(1)));
const pct = v => v === null || v === undefined ? "-" : (100 * v).toFixed(v > 0 && v < 0.01 ? 2 : 1) + "%";
const el = (tag, attrs, text) => { const e = document.createElementNS(tag === "svg" || attrs.svg ?
  "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text; return e; };
function drawGraph(graph, byKey) {
  const svg = document.getElementById("graph"); svg.replaceChildren();
  const layer = {}; graph.nodes.forEach(n => layer[n.key] = 0);
  for (let i = 0; i < graph.nodes.length; i++)  // longest path from the sources; the graph has no cycles
    for (const [a, b] of graph.edges) layer[b] = Math.max(layer[b], layer[a] + 1);
  const columns = {}; graph.nodes.forEach(n => (columns[layer[n.key]] ||= []).push(n));
  const W = 170, H = 44, GX = 60, GY = 14, pos = {};
  let height = 0;
  for (const [c, nodes] of Object.entries(columns)) nodes.forEach((n, i) => {
    pos[n.key] = [10 + c * (W + GX), 10 + i * (H + GY)]; height = Math.max(height, 10 + (i + 1) * (H + GY)); });
  svg.setAttribute("height", height + 10);
  svg.setAttribute("width", 20 + Object.keys(columns).length * (W + GX));
  for (const [a, b] of graph.edges) { const [x1, y1] = pos[a], [x2, y2] = pos[b];
    svg.append(el("path", {svg: 1, class: "edge", d: `M${x1 + W},${y1 + H / 2} C${x1 + W + GX / 2},${y1 + H / 2}
      ${x2 - GX / 2},${y2 + H / 2} ${x2},${y2 + H / 2}`})); }
  for (const n of graph.nodes) { const [x, y] = pos[n.key], s = byKey[n.kind + ":" + n.id] || {};
    const g = el("g", {svg: 1, class: "node", "data-key": n.key, "data-kind": n.kind, "data-id": n.id});
    const cls = n.kind + (s.status && s.status !== "ok" || s.error_rate > 0 ? " failing" :
      s.dropped_per_s > 0 ? " dropping" : "");
    g.append(el("rect", {svg: 1, class: cls, x, y, width: W, height: H, rx: 6}));
    g.append(el("text", {svg: 1, x: x + 8, y: y + 16}, `${n.kind} ${n.id}` + (n.pipeline ? ` [${n.pipeline}]` : "")));
    g.append(el("text", {svg: 1, x: x + 8, y: y + 33, class: "rates"},
      `in ${fmt(s.in_per_s)}/s  out ${fmt(s.out_per_s)}/s` +
      (s.dropped_total ? `  drop ${fmt(s.dropped_total)}` : "") +
      (s.error_rate > 0 ? `  err ${pct(s.error_rate)}` : "")));
    svg.append(g); }
}
function render(stats) {
  const g = stats.gateway;
  const health = document.getElementById("health");
  health.textContent = g.healthy ? "healthy" : (g.ready ? "unhealthy" : "starting");
  health.className = g.healthy ? "ok" : "bad";
  document.getElementById("uptime").textContent = `up ${Math.round(g.uptime_s)} s`;
  document.getElementById("memory").textContent = `RSS ${fmt(g.rss_bytes / 1048576)} MiB` +
    (g.limit_bytes ? ` / soft ${fmt(g.soft_limit_bytes / 1048576)} / hard ${fmt(g.limit_bytes / 1048576)} MiB` : "");
  document.getElementById("lag").textContent = `loop lag ${g.loop_lag_ms} ms`;
  document.getElementById("generation").textContent = `config generation ${g.config_generation}`;
  const byKey = {}; stats.components.forEach(c => byKey[c.kind + ":" + c.id] = c);
  drawGraph(stats.graph, byKey);
  const body = document.querySelector("#components tbody"); body.replaceChildren();
  for (const c of stats.components) { const tr = el("tr", {"data-key": c.kind + ":" + c.id});
    const dropped = Object.entries(c.dropped).map(([r, n]) => `${r}=${fmt(n)}`).join(" ") || "0";
    const cells = [[c.id, "id"], [c.kind, "kind"], [fmt(c.in_per_s), "in-rate"], [fmt(c.out_per_s), "out-rate"],
      [fmt(c.in_total), "in-total"], [fmt(c.out_total), "out-total"], [fmt(c.refused_total), "refused"],
      [dropped, "dropped"], [c.queue_capacity ? `${fmt(c.queue_size)}/${fmt(c.queue_capacity)}` : "-", "queue"],
      [c.latency_ms === null ? "-" : c.latency_ms.toFixed(1) + " ms", "latency"], [fmt(c.errors_total), "errors"],
      [fmt(c.refused_per_s), "refused-rate"], [fmt(c.errors_per_s), "failed-rate"], [pct(c.error_rate), "error-rate"],
      [c.status + (c.error ? ": " + c.error : ""), "status"]];
    for (const [text, cls] of cells) tr.append(el("td", {class: cls}, text));
    body.append(tr); }
  const kpis = document.querySelector("#kpis tbody"); kpis.replaceChildren();
  for (const k of stats.kpis) { const tr = el("tr", {});
    [k.name, k.labels, fmt(k.value) + (k.unit ? " " + k.unit : "")].forEach(t => tr.append(el("td", {}, t)));
    kpis.append(tr); }
  const errors = document.querySelector("#errors tbody"); errors.replaceChildren();
  for (const e of stats.errors.slice().reverse()) { const tr = el("tr", {});
    [e.ts, e.level, e.component || e.logger, e.msg].forEach(t => tr.append(el("td", {}, t))); errors.append(tr); }
  if (stats.config) document.getElementById("config").textContent = JSON.stringify(stats.config, null, 2);
  document.body.dataset.updated = String(Date.now());
}
function renderAlerts(alerts) {
  document.getElementById("alerts-part").hidden = alerts === null;
  const body = document.querySelector("#alerts tbody"); body.replaceChildren();
  for (const a of alerts || []) { const tr = el("tr", {"data-alert": a.alertname, "data-state": a.state,
      "data-processor": a.processor, class: a.state === "firing" ? "bad" : a.state === "pending" ? "warn" : ""});
    [a.alertname, a.state + (a.silenced ? " (silenced)" : ""), a.severity, fmt(a.value), a.processor,
     (a.annotations || {}).summary || ""].forEach(t => tr.append(el("td", {}, t)));
    body.append(tr); }
}
async function refresh() {
  if (!token) { document.getElementById("token-form").hidden = false; return; }
  try {
    const answer = await fetch("/api/stats?config=1", {headers: {Authorization: "Bearer " + token}});
    if (answer.status === 401) { document.getElementById("token-form").hidden = false;
      document.getElementById("health").textContent = "token refused"; return; }
    document.getElementById("token-form").hidden = true;
    render(await answer.json());
    const alerts = await fetch("/api/alerts", {headers: {Authorization: "Bearer " + token}});
    renderAlerts(alerts.ok ? (await alerts.json()).alerts : null);  // 404: no alerts processor runs
  } catch (err) { document.getElementById("health").textContent = "gateway unreachable";
    document.getElementById("health").className = "bad"; }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


async def _page(request: web.Request) -> web.Response:
    # No caching (the page follows the gateway's version) and no framing by other sites.
    return web.Response(text=PAGE, content_type="text/html", headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                   "frame-ancestors 'none'"})


def add_status_page(admin: AdminServer) -> None:
    admin.add_route("GET", "/ui", _page, public=True)
