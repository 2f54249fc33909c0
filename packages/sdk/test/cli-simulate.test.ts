import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProxyScaleClient } from "../src/client.ts";
import { type CliRun, type EmbeddedServer, runCli, startEmbeddedServer, unique } from "./support.ts";

const TIMEOUT = 90_000;

let workDir: string;

/** Runs the bin from `workDir`; PROXYSCALE_URL points at nothing unless given (a local run needs no server). */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli({ cwd: workDir, serverUrl: "http://127.0.0.1:9", timeoutMs: 60_000 }, args, env);
}

const METRICS = [
  "underProvisioningTimeshare",
  "overProvisioningTimeshare",
  "underProvisioningAccuracy",
  "overProvisioningAccuracy",
  "instability",
  "jitter",
  "scalingActions",
  "replicaHours",
  "sloViolationMinutes",
];

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "proxyscale-simulate-"));
  const rows = Array.from({ length: 120 }, (_, i) => `${i * 60},${i < 60 ? 6000 : 30000}`);
  writeFileSync(join(workDir, "trace.csv"), `t_seconds,requests\n${rows.join("\n")}\n`);
  writeFileSync(join(workDir, "target.yaml"), "strategy: targetTracking\nminReplicas: 1\nmaxReplicas: 10\n");
  writeFileSync(
    join(workDir, "threshold.json"),
    JSON.stringify({ strategy: "threshold", minReplicas: 1, maxReplicas: 10 }),
  );
  writeFileSync(join(workDir, "capacity.yaml"), "perReplicaRps: 100\n");
  writeFileSync(join(workDir, "bad.yaml"), "minReplicas: -2\n");
});

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe("proxyscale simulate (local)", () => {
  const args = ["simulate", "--trace", "trace.csv", "--policy", "target.yaml", "--policy", "threshold.json"];

  it(
    "--json prints { results: [{ name, metrics }] } for each policy, HPA's defaults and the oracle",
    async () => {
      const run = await cli([...args, "--capacity", "capacity.yaml", "--json"]);
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      const output = JSON.parse(run.stdout) as {
        results: Array<{ name: string; metrics: Record<string, number> }>;
      };
      expect(Object.keys(output)).toEqual(["results"]);
      expect(output.results.map((result) => result.name)).toEqual([
        "target",
        "threshold",
        "hpa-defaults",
        "oracle",
      ]);
      for (const result of output.results) {
        expect(Object.keys(result)).toEqual(["name", "metrics"]);
        expect(Object.keys(result.metrics)).toEqual(METRICS);
      }
      const oracle = output.results.at(-1)!.metrics;
      expect(oracle.underProvisioningTimeshare).toBe(0);
      // 100 req/s needs 2 replicas (80 req/s each within the SLO) for an hour, 500 req/s needs 7 for an hour.
      expect(oracle.replicaHours).toBeCloseTo(9, 6);
    },
    TIMEOUT,
  );

  it(
    "prints a table with one row per policy, HPA's defaults and the oracle, and the capacity model",
    async () => {
      const run = await cli([...args, "--capacity", "capacity.yaml"]);
      expect(run.code).toBe(0);
      // stderr is not a terminal here: no progress bar.
      expect(run.stderr).toBe("");
      const lines = run.stdout.trim().split("\n");
      expect(lines[0]).toContain("100 req/s per replica");
      expect(lines[2]).toMatch(/^NAME\s+UNDER %TIME\s+OVER %TIME/);
      expect(lines.slice(3).map((line) => line.split(/\s+/)[0])).toEqual([
        "target",
        "threshold",
        "hpa-defaults",
        "oracle",
      ]);
    },
    TIMEOUT,
  );

  it(
    "--report writes a self-contained HTML report with the data and no external resources",
    async () => {
      const run = await cli([...args, "--report", "report.html"]);
      expect(run.code).toBe(0);
      const html = readFileSync(join(workDir, "report.html"), "utf8");
      expect(html).toContain("uPlot");
      expect(html).toContain('"demandRps"');
      expect(html).toContain("<td>oracle</td>");
      expect(html).toContain("<td>threshold</td>");
      // uPlot's licence banner names its repository; nothing is loaded from anywhere.
      expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
      expect(html).not.toMatch(/url\(\s*["']?(https?:)?\/\//i);
      expect(html).not.toMatch(/@import/i);
    },
    TIMEOUT,
  );

  it(
    "names the file and field of an invalid policy, and exits 1",
    async () => {
      const run = await cli(["simulate", "--trace", "trace.csv", "--policy", "bad.yaml"]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("bad.yaml: minReplicas");
      const noTrace = await cli(["simulate", "--policy", "target.yaml"]);
      expect(noTrace.code).toBe(2);
      expect(noTrace.stderr).toContain("--trace");
    },
    TIMEOUT,
  );
});

describe("proxyscale simulate --proxy", () => {
  let server: EmbeddedServer;

  beforeAll(async () => {
    server = await startEmbeddedServer();
  }, TIMEOUT);
  afterAll(async () => server?.close());

  it(
    "replays the proxy's history on the server through its current policy",
    async () => {
      const admin = createProxyScaleClient({ url: server.url, token: server.firstAdminToken });
      const { id } = await admin.proxies.register.mutate({ name: unique("edge") });
      const to = new Date();
      const from = new Date(to.getTime() - 3_600_000);
      const run = await cli(
        ["simulate", "--proxy", id, "--from", from.toISOString(), "--to", to.toISOString(), "--json"],
        { PROXYSCALE_URL: server.url, PROXYSCALE_TOKEN: server.firstAdminToken },
      );
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      const output = JSON.parse(run.stdout) as { results: Array<{ name: string }> };
      expect(output.results.map((result) => result.name)).toEqual(["current", "hpa-defaults", "oracle"]);
    },
    TIMEOUT,
  );
});
