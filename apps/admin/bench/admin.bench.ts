/**
 * The admin UI's two browser-side figures, printed as a markdown table:
 *  1. the first page's JavaScript (the fleet page at `/`): gzip size of the entry chunk, its static imports and
 *     the fleet page's chunk with its static imports, from the production build's manifest (budget 250 KB);
 *  2. the proxy page with 10,000 points per series: navigation start → every chart drawn, in Chromium, against
 *     the real server, next to a same-run blank page (navigation start → load of /healthz). Budget 200 ms. On
 *     PGlite (the default) and, when it answers, on PostgreSQL (a scratch database).
 * Run after `vite build` (the package's bench script does both).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createScratchDatabase, probePostgres } from "@proxyscale/db/testing";
import { CHROMIUM, chromiumAvailable, distDir, rest, startHarness } from "../test/e2e/harness.ts";

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  src?: string;
}

const manifest = JSON.parse(readFileSync(join(distDir, ".vite", "manifest.json"), "utf8")) as Record<
  string,
  ManifestChunk
>;

/** A chunk and every chunk it imports statically (what the browser must load before it runs). */
function closure(key: string, seen = new Set<string>()): Set<string> {
  if (seen.has(key)) return seen;
  seen.add(key);
  for (const imported of manifest[key]?.imports ?? []) closure(imported, seen);
  return seen;
}

const entry = Object.keys(manifest).find((key) => manifest[key]!.isEntry)!;
const fleet = Object.keys(manifest).find((key) => key.endsWith("pages/Fleet.tsx"))!;
const firstPage = new Set([...closure(entry), ...closure(fleet)]);
const files = [...firstPage].map((key) => manifest[key]!.file).filter((file) => file.endsWith(".js"));
const gzipBytes = files.reduce(
  (sum, file) => sum + gzipSync(readFileSync(join(distDir, file)), { level: 9 }).length,
  0,
);
const rawBytes = files.reduce((sum, file) => sum + readFileSync(join(distDir, file)).length, 0);

const rows: string[][] = [
  [
    "first page (fleet) JavaScript, gzip",
    `${(gzipBytes / 1024).toFixed(1)} KB (${files.length} files, ${(rawBytes / 1024).toFixed(0)} KB raw)`,
    "≤ 250 KB",
    gzipBytes <= 250 * 1024 ? "pass" : "FAIL",
  ],
];

const RUNS = 10;
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};

interface PageTimings {
  points: number;
  chartMs: number[];
  blankMs: number[];
  /** Where the time goes: navigation → first API request, that request → the range answered, → every chart drawn. */
  startMs: number[];
  rangeMs: number[];
  renderMs: number[];
}

/** The proxy page with 10,000 points per series, RUNS times (after one warm-up), on a server of `databaseUrl`. */
async function measureProxyPage(databaseUrl?: string): Promise<PageTimings> {
  const harness = await startHarness({ demo: false, retention: false, databaseUrl });
  try {
    const proxy = await rest<{ id: string }>(harness.url, harness.adminToken, "POST", "/proxies", {
      name: "bench-10k",
    });
    // 20,000 samples over the last hour: every one of 10,000 buckets holds about two.
    const start = Date.now() - 3_600_000;
    for (let batch = 0; batch < 4; batch++) {
      const samples = Array.from({ length: 5000 }, (_, i) => {
        const n = batch * 5000 + i;
        const wave = 50 + 40 * Math.sin(n / 500);
        return {
          cpuPercent: wave,
          memoryPercent: 60,
          requestRate: wave * 10,
          avgLatencyMs: 20 + wave / 5,
          errorRatePercent: 0.5,
          replicas: 2,
          recordedAt: start + n * 180,
        };
      });
      await rest(harness.url, harness.adminToken, "POST", `/proxy/scaling/metrics/${proxy.id}/batch`, {
        samples,
      });
    }
    const context = await harness.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${harness.url}/#token=${harness.adminToken}`);
    await page.getByTestId("who-sub").waitFor();

    const timings: PageTimings = {
      points: 0,
      chartMs: [],
      blankMs: [],
      startMs: [],
      rangeMs: [],
      renderMs: [],
    };
    for (let run = 0; run < RUNS + 1; run++) {
      await page.goto(`${harness.url}/healthz`);
      const blank = await page.evaluate(() => {
        const [nav] = performance.getEntriesByType("navigation") as PerformanceNavigationTiming[];
        return nav!.loadEventEnd;
      });
      await page.goto(`${harness.url}/proxies/${proxy.id}?range=1h&points=10000`);
      await page.waitForFunction(
        () => {
          const charts = [...document.querySelectorAll<HTMLElement>("[data-testid=charts] .chart-area")];
          return charts.length >= 6 && charts.every((chart) => chart.dataset.drawnAt);
        },
        undefined,
        { timeout: 30_000 },
      );
      const drawn = await page.evaluate(() => {
        const charts = [...document.querySelectorAll<HTMLElement>("[data-testid=charts] .chart-area")];
        const api = (performance.getEntriesByType("resource") as PerformanceResourceTiming[]).filter(
          (entry) => entry.name.includes("/trpc/"),
        );
        return {
          at: Math.max(...charts.map((chart) => Number(chart.dataset.drawnAt))),
          points: Number(charts[0]!.dataset.points),
          apiStart: Math.min(...api.map((entry) => entry.startTime)),
          rangeEnd: api.find((entry) => entry.name.includes("metrics.range"))!.responseEnd,
          each: api.map((entry) => ({
            path: new URL(entry.name).pathname.replace("/trpc/", ""),
            start: Math.round(entry.startTime),
            waiting: Math.round(entry.responseStart - entry.requestStart),
            transfer: Math.round(entry.responseEnd - entry.responseStart),
          })),
        };
      });
      // The first run warms the server's and the browser's caches; it is not counted.
      if (process.env.BENCH_VERBOSE) console.error(JSON.stringify(drawn.each));
      if (run === 0) continue;
      timings.chartMs.push(drawn.at);
      timings.blankMs.push(blank);
      timings.startMs.push(drawn.apiStart);
      timings.rangeMs.push(drawn.rangeEnd - drawn.apiStart);
      timings.renderMs.push(drawn.at - drawn.rangeEnd);
      timings.points = drawn.points;
    }
    await context.close();
    return timings;
  } finally {
    await harness.close();
  }
}

function proxyPageRows(driver: string, timings: PageTimings): string[][] {
  const median = quantile(timings.chartMs, 0.5);
  const blankMedian = quantile(timings.blankMs, 0.5);
  return [
    [
      `proxy page on ${driver}, ${timings.points.toLocaleString("en")} points per series: navigation → charts drawn (median of ${RUNS})`,
      `${median.toFixed(0)} ms (p95 ${quantile(timings.chartMs, 0.95).toFixed(0)} ms)`,
      "≤ 200 ms",
      median <= 200 ? "pass" : "FAIL",
    ],
    ["same-run blank page (/healthz): navigation → load (median)", `${blankMedian.toFixed(1)} ms`, "", ""],
    ["ratio charts / blank", `${(median / Math.max(blankMedian, 0.1)).toFixed(1)}×`, "", ""],
    [
      "… of which navigation → first API request (JS loaded, page rendered)",
      `${quantile(timings.startMs, 0.5).toFixed(0)} ms`,
      "",
      "",
    ],
    [
      `… of which first API request → the range answered (server on ${driver} + transfer)`,
      `${quantile(timings.rangeMs, 0.5).toFixed(0)} ms`,
      "",
      "",
    ],
    [
      "… of which the range answered → every chart drawn (the rest of the answers, parse, React, uPlot)",
      `${quantile(timings.renderMs, 0.5).toFixed(0)} ms`,
      "",
      "",
    ],
  ];
}

if (chromiumAvailable()) {
  rows.push(...proxyPageRows("PGlite", await measureProxyPage()));
  if (await probePostgres("admin bench")) {
    const scratch = await createScratchDatabase("admin_bench");
    try {
      rows.push(...proxyPageRows("PostgreSQL", await measureProxyPage(scratch.url)));
    } finally {
      await scratch.drop();
    }
  }
} else {
  rows.push(["proxy page, 10,000 points per series", `skipped: no Chromium at ${CHROMIUM}`, "≤ 200 ms", ""]);
}

console.log("\n| admin UI | result | budget | |\n| --- | --- | --- | --- |");
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
