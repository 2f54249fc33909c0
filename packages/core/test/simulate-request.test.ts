import { describe, expect, it } from "vitest";
import {
  MAX_SIMULATION_STEPS,
  replayRequestSchema,
  runSimulateRequest,
  simulateRequestSchema,
  traceFromRollups,
} from "../src/index.ts";

const POLICY = { strategy: "targetTracking", minReplicas: 1, maxReplicas: 10 } as const;

describe("simulateRequestSchema", () => {
  it("names the trace's line, the policy's field and the bounds", () => {
    const bad = simulateRequestSchema.safeParse({
      trace: "t_seconds,requests\n0,5\n60,-1\n",
      policies: [
        { name: "a", policy: { ...POLICY, maxReplicas: 0 } },
        { name: "a", policy: POLICY },
      ],
    });
    expect(bad.success).toBe(false);
    const issues = bad.error!.issues.map((issue) => [issue.path.join("."), issue.message]);
    expect(issues).toContainEqual(["trace", "trace line 3: requests must be a count ≥ 0"]);
    expect(issues.map(([path]) => path)).toContain("policies.1.name");
    expect(issues.some(([path]) => String(path).startsWith("policies.0.policy"))).toBe(true);

    const long = simulateRequestSchema.safeParse({
      stepSeconds: 60,
      points: new Array(MAX_SIMULATION_STEPS + 1).fill(1),
      policies: [{ name: "a", policy: POLICY }],
    });
    expect(long.error!.issues[0]!.path).toEqual(["points"]);
    expect(long.error!.issues[0]!.message).toBe(`at most ${MAX_SIMULATION_STEPS} steps`);

    const both = simulateRequestSchema.safeParse({
      trace: "t_seconds,requests\n0,1\n",
      points: [1],
      stepSeconds: 60,
      policies: [{ name: "a", policy: POLICY }],
    });
    expect(both.error!.issues[0]!.path).toEqual(["trace"]);
    const noStep = simulateRequestSchema.safeParse({
      points: [1],
      policies: [{ name: "a", policy: POLICY }],
    });
    expect(noStep.error!.issues[0]!.path).toEqual(["stepSeconds"]);
  });

  it("refuses a latency SLO at or under the service time (which no replica meets), naming sloLatencyMs", () => {
    const request = (capacity: Record<string, number>) =>
      simulateRequestSchema.safeParse({
        stepSeconds: 60,
        points: [10, 20],
        capacity: { perReplicaRps: 10, ...capacity },
        policies: [{ name: "a", policy: POLICY }],
      });
    for (const capacity of [{ serviceMs: 50, sloLatencyMs: 50 }, { sloLatencyMs: 10 }] as Record<
      string,
      number
    >[]) {
      const refused = request(capacity);
      expect(refused.success).toBe(false);
      expect(refused.error!.issues.map((issue) => issue.path.join("."))).toEqual(["capacity.sloLatencyMs"]);
    }
    expect(request({ serviceMs: 50, sloLatencyMs: 60 }).success).toBe(true);
    expect(request({ serviceMs: 50 }).success).toBe(true);
  });

  it("bounds a step's request count and the per-replica capacity, so every metric stays a finite number", () => {
    const refused = simulateRequestSchema.safeParse({
      stepSeconds: 60,
      points: [1, 1e13],
      capacity: { perReplicaRps: 1e-6 },
      policies: [{ name: "a", policy: POLICY }],
    });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues.map((issue) => issue.path.join("."))).toEqual([
      "capacity.perReplicaRps",
      "points.1",
    ]);
  });

  it("bounds a replay's window", () => {
    const day = 86_400_000;
    expect(replayRequestSchema.safeParse({ from: 0, to: 31 * day }).error!.issues[0]!.path).toEqual(["to"]);
    expect(replayRequestSchema.safeParse({ from: 0, to: 30 * day }).success).toBe(true);
  });
});

describe("runSimulateRequest", () => {
  it("reports policies, HPA's defaults and the oracle with series downsampled to seriesPoints", () => {
    const request = simulateRequestSchema.parse({
      stepSeconds: 60,
      points: [...new Array(10).fill(6000), ...new Array(10).fill(30000)],
      policies: [
        { name: "first", policy: POLICY },
        { name: "second", policy: { ...POLICY, maxReplicas: 4 } },
      ],
      capacity: { perReplicaRps: 100 },
      seriesPoints: 4,
    });
    const progress: number[] = [];
    const report = runSimulateRequest(request, (done) => progress.push(done));
    expect(progress).toEqual([1, 2]);
    expect(report.rows.map((row) => row.name)).toEqual(["first", "second", "hpa-defaults", "oracle"]);
    // Bucket means of 5 steps each: 100 req/s, 100, 500, 500.
    expect(report.series.demandRps).toEqual([100, 100, 500, 500]);
    expect(report.series.replicas.oracle).toEqual([2, 2, 7, 7]);
    // maxReplicas 4 serves at most 400 req/s of the 500.
    expect(report.rows[1]!.metrics.underProvisioningTimeshare).toBeGreaterThan(0);
    expect(report.rows[3]!.fromOracle.replicaHours).toBe(0);
  });
});

describe("traceFromRollups", () => {
  it("turns per-replica rates into fleet counts per minute and repeats the last minute over gaps", () => {
    const t0 = Date.UTC(2026, 10, 1, 12, 0);
    const { trace, gapMinutes, startAt } = traceFromRollups(
      [
        { bucket: t0 + 60_000, requestRateAvg: 10, replicasAvg: 2 },
        { bucket: t0 + 3 * 60_000, requestRateAvg: 5, replicasAvg: null },
      ],
      { from: t0 + 1, to: t0 + 5 * 60_000, fallbackReplicas: 3 },
    );
    // from rounds up to the next whole minute: minutes 1..4.
    expect(startAt).toBe(t0 + 60_000);
    expect(trace.stepSeconds).toBe(60);
    expect(trace.requests).toEqual([1200, 1200, 900, 900]);
    expect(gapMinutes).toBe(2);
  });
});
