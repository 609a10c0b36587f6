// The UI's only script of its own: no inline scripts anywhere (CSP default-src 'self').
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// htmx sends the session's CSRF token on every request it makes.
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = csrfToken();
});

// Forms that ask before they act: <form data-confirm="Roll back?">.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);

const SVG = "http://www.w3.org/2000/svg";

function sparkline(cell, points) {
  cell.textContent = "";
  if (!points || !points.length) { cell.textContent = "–"; return; }
  if (points.length === 1) { points = [points[0], points[0]]; }
  const w = 96, h = 24;
  const ts = points.map((p) => p[0]), vs = points.map((p) => p[1]);
  const t0 = Math.min(...ts), t1 = Math.max(...ts);
  const v0 = Math.min(...vs), v1 = Math.max(...vs);
  const x = (t) => (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (w - 2) + 1);
  const y = (v) => (v1 === v0 ? h / 2 : h - 1 - ((v - v0) / (v1 - v0)) * (h - 2));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("class", "spark");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
  svg.appendChild(line);
  const last = vs[vs.length - 1];
  const title = document.createElementNS(SVG, "title");
  title.textContent = `last ${last.toPrecision(3)}, min ${v0.toPrecision(3)}, max ${v1.toPrecision(3)}`;
  svg.appendChild(title);
  cell.appendChild(svg);
  const label = document.createElement("span");
  label.className = "spark-last";
  label.textContent = last.toPrecision(3);
  cell.appendChild(label);
}

// Fleet: QPS / p99 sparklines and SLO status of every visible row in one request.
async function loadFleetStats(table) {
  const ids = [...table.querySelectorAll("tr[data-engine-id]")].map((r) => r.dataset.engineId);
  if (!ids.length) return;
  const response = await fetch(`${table.dataset.statsUrl}?ids=${ids.join(",")}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const stats = await response.json();
  for (const row of table.querySelectorAll("tr[data-engine-id]")) {
    const s = stats[row.dataset.engineId];
    if (!s) continue;
    sparkline(row.querySelector(".qps"), s.qps);
    sparkline(row.querySelector(".p99"), s.p99_ms);
    const slo = row.querySelector(".slo");
    slo.textContent = s.slo_status;
    slo.className = `slo state state-${s.slo_status.replace(/ /g, "_")}`;
    if (s.slo_detail) slo.title = s.slo_detail;
    const health = row.querySelector("[data-health]");
    health.textContent = s.health;
    health.className = `state state-${s.health.replace(/ /g, "_")}`;
  }
}

function fleet() {
  const table = document.querySelector("table[data-stats-url]");
  if (!table) return;
  loadFleetStats(table);
  window.setInterval(() => loadFleetStats(table), 15000);
}

// Engine: one uPlot chart per canonical series, from the same data as /api/v1/series.
async function drawChart(box) {
  if (typeof uPlot === "undefined") return;
  const response = await fetch(box.dataset.seriesUrl, { credentials: "same-origin" });
  if (!response.ok) { box.querySelector(".chart-body").textContent = "no data"; return; }
  const data = await response.json();
  const body = box.querySelector(".chart-body");
  body.textContent = "";
  if (!data.series.length || !data.series.some((s) => s.points.length)) {
    body.textContent = "no data in this range";
    return;
  }
  const times = [...new Set(data.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = [times];
  const series = [{}];
  const palette = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096"];
  data.series.forEach((s, i) => {
    const col = new Array(times.length).fill(null);
    for (const [t, v] of s.points) col[index.get(t)] = v * (Number(box.dataset.scale) || 1);
    columns.push(col);
    const name = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(",") || box.dataset.title;
    series.push({ label: name, stroke: palette[i % palette.length], width: 1.5, spanGaps: false });
  });
  const width = Math.max(280, body.clientWidth || 600);
  const seconds = box.dataset.x === "seconds";
  // A time chart spans the chosen range, whatever part of it has data.
  const x = seconds ? { time: false } : { time: true, range: [data.start, data.end] };
  const chart = new uPlot({ width, height: 180, series, scales: { x },
                            axes: [{ label: seconds ? "s" : "" }, { label: box.dataset.unit || "" }],
                            legend: { live: true } }, columns, body);
  box._chart = chart;
}

function charts(root) {
  const boxes = (root || document).querySelectorAll("[data-series-url]");
  boxes.forEach((box) => drawChart(box));
}

document.addEventListener("DOMContentLoaded", () => { fleet(); charts(); });
// Content swapped in by htmx (a rollout's live part) draws its own charts.
document.addEventListener("htmx:afterSwap", (event) => charts(event.detail.elt));
