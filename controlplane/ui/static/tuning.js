// The tuning page's plots: the run report's own Plotly figures, as JSON.
"use strict";

async function drawPlots() {
  const box = document.getElementById("plots");
  if (!box || typeof Plotly === "undefined") return;
  const response = await fetch(box.dataset.plotsUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const { plots } = await response.json();
  box.textContent = "";
  if (!plots.length) { box.textContent = "No completed trials yet."; return; }
  for (const plot of plots) {
    const section = document.createElement("section");
    section.className = "card";
    const title = document.createElement("h3");
    title.textContent = plot.title;
    section.appendChild(title);
    const area = document.createElement("div");
    area.className = "plot";
    section.appendChild(area);
    box.appendChild(section);
    if (plot.note) { area.textContent = plot.note; area.className = "muted"; continue; }
    const layout = Object.assign({}, plot.figure.layout, { autosize: true, height: 380 });
    Plotly.newPlot(area, plot.figure.data, layout, { responsive: true, displaylogo: false });
  }
}

document.addEventListener("DOMContentLoaded", drawPlots);
document.addEventListener("click", (event) => {
  if (event.target instanceof HTMLElement && event.target.id === "redraw-plots") drawPlots();
});
