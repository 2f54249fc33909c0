import { monitorEventLoopDelay } from "node:perf_hooks";
import { rollupMetrics } from "@proxyscale/db";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, registerProxy, token, unique } from "./support.ts";

const METRIC_NAMES = [
  "underProvisioningTimeshare",
  "overProvisioningTimeshare",
  "underProvisioningAccuracy",
  "overProvisioningAccuracy",
  "instability",
  "jitter",
  "scalingActions",
  "replicaHours",
  "sloViolationMinutes",
].sort();

/** Two hours at 60 s steps: an hour of low load, then a step to five times as much. */
const TRACE = `t_seconds,requests\n${Array.from({ length: 120 }, (_, i) => `${i * 60},${i < 60 ? 6000 : 30000}`).join("\n")}\n`;

const TARGET = { strategy: "targetTracking", minReplicas: 1, maxReplicas: 10 };
const THRESHOLD = { strategy: "threshold", minReplicas: 1, maxReplicas: 10 };

forEachDriver("simulate", (suite) => {
  let operator: Client;

  beforeAll(async () => {
    operator = client(suite().url, await token({ role: "operator", sub: unique("sim-owner") }));
  });

  describe("POST /api/proxy/scaling/simulate", () => {
    it("returns the metrics of each policy, HPA's defaults and the oracle, and chart series", async () => {
      const viewer = client(suite().url, await token({ role: "viewer", sub: unique("sim-viewer") }));
      const response = await viewer.request("POST", "/api/proxy/scaling/simulate", {
        body: {
          trace: TRACE,
          policies: [
            { name: "target", policy: TARGET },
            { name: "threshold", policy: THRESHOLD },
          ],
          capacity: { perReplicaRps: 100 },
          seriesPoints: 60,
        },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      const rows = response.body.rows as Array<{ name: string; kind: string; metrics: object }>;
      expect(rows.map((row) => [row.name, row.kind])).toEqual([
        ["target", "policy"],
        ["threshold", "policy"],
        ["hpa-defaults", "hpa"],
        ["oracle", "oracle"],
      ]);
      for (const row of rows) expect(Object.keys(row.metrics).sort()).toEqual(METRIC_NAMES);
      const oracle = rows.find((row) => row.name === "oracle")!.metrics as Record<string, number>;
      expect(oracle.underProvisioningTimeshare).toBe(0);
      // 6000/60 = 100 req/s at 80 req/s per replica within the SLO: 2 replicas, then 500 req/s: 7.
      expect(oracle.replicaHours).toBeCloseTo(2 + 7, 6);
      expect(response.body.capacity).toContain("100 req/s per replica");
      expect(response.body.series.at).toHaveLength(60);
      expect(response.body.series.demandRps[0]).toBeCloseTo(100);
      expect(response.body.series.demandRps[59]).toBeCloseTo(500);
      expect(Object.keys(response.body.series.supplyRps).sort()).toEqual(
        ["hpa-defaults", "oracle", "target", "threshold"].sort(),
      );
    });

    it("takes the trace as request counts (points with stepSeconds)", async () => {
      const response = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: {
          stepSeconds: 60,
          points: [600, 600, 6000, 6000],
          policies: [{ name: "target", policy: TARGET }],
          hpaDefaults: false,
        },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      expect(response.body.rows.map((row: { name: string }) => row.name)).toEqual(["target", "oracle"]);
      expect(response.body.steps).toBe(4);
    });

    it("answers 400 naming the field of a bad trace or policy", async () => {
      const badTrace = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: { trace: "time,count\n0,1\n", policies: [{ name: "a", policy: TARGET }] },
      });
      expect(badTrace.status).toBe(400);
      expect(badTrace.body.zodIssues.map((issue: { path: unknown[] }) => issue.path)).toContainEqual([
        "trace",
      ]);
      expect(JSON.stringify(badTrace.body)).toContain("t_seconds,requests");

      const badPolicy = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: { trace: TRACE, policies: [{ name: "a", policy: { ...TARGET, minReplicas: -1 } }] },
      });
      expect(badPolicy.status).toBe(400);
      expect(badPolicy.body.zodIssues.map((issue: { path: unknown[] }) => issue.path)).toContainEqual([
        "policies",
        0,
        "policy",
        "minReplicas",
      ]);

      const tooMany = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: {
          trace: TRACE,
          policies: Array.from({ length: 5 }, (_, i) => ({ name: `p${i}`, policy: TARGET })),
        },
      });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.zodIssues[0].path).toEqual(["policies"]);
    });

    it("answers 401 without a token", async () => {
      const response = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: { trace: TRACE, policies: [{ name: "a", policy: TARGET }] },
        token: null,
      });
      expect(response.status).toBe(401);
    });

    it("runs off the server's event loop: no stall of it lasts half the 30-day simulation's time", async () => {
      // 43,200 steps through four policies: a second or more of CPU. The test server shares this process's
      // event loop, so a simulation run on it would stall it for about that whole time.
      const month = Array.from({ length: 43_200 }, (_, i) => 3000 + 2000 * Math.sin(i / 600));
      const stalls = monitorEventLoopDelay({ resolution: 10 });
      stalls.enable();
      const startedAt = performance.now();
      const simulated = await operator.request("POST", "/api/proxy/scaling/simulate", {
        body: {
          points: month,
          stepSeconds: 60,
          policies: [
            { name: "a", policy: TARGET },
            { name: "b", policy: THRESHOLD },
            { name: "c", policy: { ...TARGET, maxReplicas: 20 } },
            { name: "d", policy: { ...THRESHOLD, maxReplicas: 20 } },
          ],
        },
      });
      const tookMs = performance.now() - startedAt;
      stalls.disable();
      expect(simulated.status, JSON.stringify(simulated.body).slice(0, 500)).toBe(200);
      expect(stalls.max / 1e6).toBeLessThan(tookMs / 2);
    });
  });

  describe("POST /api/proxy/scaling/simulate/:proxyId", () => {
    it("replays the proxy's stored per-minute rollups through its current policy", async () => {
      const proxyId = await registerProxy(operator);
      const now = Date.now();
      const firstMinute = Math.floor(now / 60_000) * 60_000 - 6 * 60_000;
      // Five whole minutes: 2 replicas at 50 req/s each (100 req/s), then 2 at 250 (500 req/s).
      const samples = Array.from({ length: 5 }, (_, i) => ({
        cpuPercent: 40,
        memoryPercent: 40,
        requestRate: i < 2 ? 50 : 250,
        avgLatencyMs: 20,
        errorRatePercent: 0,
        replicas: 2,
        recordedAt: firstMinute + i * 60_000 + 30_000,
      }));
      const pushed = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples },
      });
      expect(pushed.status, JSON.stringify(pushed.body)).toBeLessThan(300);
      await rollupMetrics(suite().database.db, { now });

      const response = await operator.request("POST", `/api/proxy/scaling/simulate/${proxyId}`, {
        body: { from: firstMinute, to: firstMinute + 5 * 60_000, capacity: { perReplicaRps: 100 } },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      expect(response.body.steps).toBe(5);
      expect(response.body.gapMinutes).toBe(0);
      expect(response.body.rows.map((row: { name: string }) => row.name)).toEqual([
        "current",
        "hpa-defaults",
        "oracle",
      ]);
      expect(response.body.series.demandRps.map((rps: number) => Math.round(rps))).toEqual([
        100, 100, 500, 500, 500,
      ]);
      expect(response.body.series.at[0]).toBe(firstMinute);
    });

    it("answers 404 for another owner's proxy, and 400 for a window that ends before it starts", async () => {
      const proxyId = await registerProxy(operator);
      const now = Date.now();
      const body = { from: now - 3_600_000, to: now };
      const foreign = await client(
        suite().url,
        await token({ role: "viewer", sub: unique("other") }),
      ).request("POST", `/api/proxy/scaling/simulate/${proxyId}`, { body });
      expect(foreign.status).toBe(404);

      const backwards = await operator.request("POST", `/api/proxy/scaling/simulate/${proxyId}`, {
        body: { from: now, to: now - 60_000 },
      });
      expect(backwards.status).toBe(400);
      expect(backwards.body.zodIssues[0].path).toEqual(["to"]);
    });
  });
});
