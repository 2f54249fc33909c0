import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { SimulationReport } from "@proxyscale/core";
import { COMPARED_METRICS } from "@proxyscale/core";

const require = createRequire(import.meta.url);

/** uPlot's script and stylesheet, read from node_modules so the report needs no network. */
function uplotAssets(): { js: string; css: string } {
  return {
    js: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    css: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that can sit inside a <script> element (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"];

/**
 * A self-contained HTML report of a simulation: the capacity model, the metrics table (one row per policy,
 * HPA's defaults, the oracle) and, with uPlot inlined, demand vs supply and the replicas of every row.
 */
export function simulationReportHtml(report: SimulationReport, title: string): string {
  const { js, css } = uplotAssets();
  const header = ["name", ...COMPARED_METRICS].map((name) => `<th>${escapeHtml(name)}</th>`).join("");
  const body = report.rows
    .map(
      (row) =>
        `<tr><td>${escapeHtml(row.name)}</td>${COMPARED_METRICS.map(
          (metric) => `<td>${Number(row.metrics[metric].toFixed(3))}</td>`,
        ).join("")}</tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; }
table { border-collapse: collapse; margin: 16px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${report.steps} steps of ${report.stepSeconds} s (${Number(report.durationMinutes.toFixed(1))} min). Capacity model: ${escapeHtml(report.capacity)}</p>
<p>Shares are in percent; jitter in adaptations per hour.</p>
<table><thead><tr>${header}</tr></thead><tbody>
${body}
</tbody></table>
<h2>Demand vs supply (req/s)</h2>
<div id="supply"></div>
<h2>Serving replicas</h2>
<div id="replicas"></div>
<script id="simulation-data" type="application/json">${scriptJson(report)}</script>
<script>${js}</script>
<script>
const report = JSON.parse(document.getElementById("simulation-data").textContent);
const palette = ${JSON.stringify(PALETTE)};
const names = report.rows.map((row) => row.name);
const x = report.series.at.map((ms) => ms / 1000);
const width = Math.min(1100, document.body.clientWidth - 48);
function chart(target, first, key) {
  const series = [{}];
  const data = [x];
  if (first) { series.push({ label: "demand", stroke: "#000", width: 2 }); data.push(report.series.demandRps); }
  names.forEach((name, i) => { series.push({ label: name, stroke: palette[i % palette.length] }); data.push(report.series[key][name]); });
  new uPlot({ width, height: 320, series }, data, document.getElementById(target));
}
chart("supply", true, "supplyRps");
chart("replicas", false, "replicas");
</script>
</body>
</html>
`;
}
