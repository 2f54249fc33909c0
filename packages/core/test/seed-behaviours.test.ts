/**
 * The seed's 23 behaviours (proxy-scaling-summary.md, "Test Coverage"), at engine level, grouped and named as
 * the seed names them. Behaviours that need a database or the API are tested here for the part the engine owns.
 */
import { describe, expect, it } from "vitest";
import {
  computeLoadScore,
  DEFAULT_POLICY,
  decide,
  loadMetricsSchema,
  parsePolicy,
  scalingCompletionSchema,
  scalingPolicySchema,
  trendDirection,
  validateReplicaRequest,
} from "../src/index.ts";
import { NOW, scoreSample, seconds, state } from "./fixtures.ts";

function policyIssues(input: unknown) {
  const result = scalingPolicySchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error!.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
}

const validMetrics = {
  cpuPercent: 50,
  memoryPercent: 60,
  requestRate: 500,
  avgLatencyMs: 35,
  errorRatePercent: 5,
};

describe("Scaling Policy Management", () => {
  it("Create policy with valid configuration", () => {
    const policy = parsePolicy({ minReplicas: 2, maxReplicas: 20, targetCpuPercent: 65 });
    expect(policy).toMatchObject({
      minReplicas: 2,
      maxReplicas: 20,
      targetCpuPercent: 65,
      targetMemoryPercent: 80,
      targetRequestRate: 1000,
      scaleUpThreshold: 80,
      scaleDownThreshold: 30,
      scaleUpCooldownSeconds: 60,
      scaleDownCooldownSeconds: 300,
      strategy: "threshold",
    });
  });

  it("Reject invalid minReplicas", () => {
    expect(policyIssues({ minReplicas: -1 })).toEqual([{ path: "minReplicas", message: "must be ≥ 0" }]);
  });

  it("Reject maxReplicas < minReplicas", () => {
    expect(policyIssues({ minReplicas: 5, maxReplicas: 3 })).toEqual([
      { path: "maxReplicas", message: "must be ≥ minReplicas (5)" },
    ]);
  });

  it("Reject invalid CPU percent", () => {
    expect(policyIssues({ targetCpuPercent: 150 })).toEqual([
      { path: "targetCpuPercent", message: "must be a percent in (0, 100]: at most 100" },
    ]);
  });

  it("Reject invalid threshold configuration", () => {
    expect(policyIssues({ scaleUpThreshold: 40, scaleDownThreshold: 60 })).toEqual([
      { path: "scaleDownThreshold", message: "must be below scaleUpThreshold (40)" },
    ]);
  });
});

describe("Load Metrics Recording", () => {
  it("Record metrics with valid data", () => {
    const parsed = loadMetricsSchema.parse({ ...validMetrics, instanceId: "proxy-1" });
    expect(parsed).toEqual({ ...validMetrics, instanceId: "proxy-1" });
    expect(computeLoadScore(parsed, DEFAULT_POLICY)).toBeCloseTo(48.5, 10);
  });

  it("Reject metrics with missing fields", () => {
    const { requestRate: _omitted, ...missing } = validMetrics;
    const result = loadMetricsSchema.safeParse(missing);
    expect(result.success).toBe(false);
    expect(result.error!.issues).toMatchObject([{ path: ["requestRate"] }]);
  });

  it("Calculate load score correctly", () => {
    // 0.4·50 + 0.3·60 + 0.2·min(100, 500/1000·100) + 0.1·5 = 20 + 18 + 10 + 0.5
    expect(computeLoadScore(validMetrics, DEFAULT_POLICY)).toBeCloseTo(48.5, 10);
    // The request share saturates at 100% of targetRequestRate.
    expect(computeLoadScore({ ...validMetrics, requestRate: 5000 }, DEFAULT_POLICY)).toBeCloseTo(58.5, 10);
    expect(computeLoadScore({ ...validMetrics, requestRate: 250 }, { targetRequestRate: 500 })).toBeCloseTo(
      48.5,
      10,
    );
  });

  it("Cap load score at 100", () => {
    const max = { cpuPercent: 100, memoryPercent: 100, requestRate: 1e9, errorRatePercent: 100 };
    expect(computeLoadScore(max, DEFAULT_POLICY)).toBe(100);
    // Readings that never went through the schema still cannot push the score past 100.
    expect(computeLoadScore({ ...max, cpuPercent: 400, errorRatePercent: 900 }, DEFAULT_POLICY)).toBe(100);
  });
});

describe("Scaling Evaluation", () => {
  it("No scaling when load within thresholds", () => {
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 3, samples: [scoreSample(55)] }), NOW);
    expect(decision).toMatchObject({ action: "none", recommendedReplicas: 3, desiredReplicas: 3 });
    expect(decision.loadScore).toBeCloseTo(55, 10);
  });

  it("Recommend scale up when load exceeds threshold", () => {
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 3, samples: [scoreSample(85)] }), NOW);
    expect(decision).toMatchObject({ action: "scale_up", recommendedReplicas: 4, desiredReplicas: 4 });
    expect(decision.explanation).toBe("load score 85 > scale-up threshold 80 → 4 replicas; scale up 3 → 4");
  });

  it("Recommend scale down when load below threshold", () => {
    // Default behavior has a 300 s scale-down window; with no recommendation history it is no constraint (as HPA).
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 3, samples: [scoreSample(20)] }), NOW);
    expect(decision).toMatchObject({ action: "scale_down", recommendedReplicas: 2, desiredReplicas: 2 });
    expect(decision.explanation).toBe(
      "load score 20 < scale-down threshold 30 → 2 replicas; scale down 3 → 2",
    );
  });

  it("Respect minimum replicas when scaling down", () => {
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 1, samples: [scoreSample(5)] }), NOW);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 1 });
    expect(decision.limits).toContainEqual({ kind: "minReplicas", value: 1, from: 0, to: 1 });
  });

  it("Respect maximum replicas when scaling up", () => {
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 10, samples: [scoreSample(99)] }), NOW);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 10 });
    expect(decision.limits).toContainEqual({ kind: "maxReplicas", value: 10, from: 11, to: 10 });
    expect(decision.explanation).toContain("capped at 10 by maxReplicas 10");
  });
});

describe("Scaling Execution", () => {
  it("Execute scaling with valid parameters", () => {
    const result = validateReplicaRequest(DEFAULT_POLICY, 7);
    expect(result).toMatchObject({ success: true, data: 7 });
  });

  it("Reject scaling with invalid replica count", () => {
    for (const bad of [11, 0, -2, 2.5, "5"]) {
      const result = validateReplicaRequest(DEFAULT_POLICY, bad);
      expect(result.success, `replica count ${String(bad)}`).toBe(false);
    }
    expect(validateReplicaRequest(DEFAULT_POLICY, 11).error!.issues[0]!.message).toBe(
      "must be within the policy's minReplicas..maxReplicas (1..10)",
    );
    expect(validateReplicaRequest(DEFAULT_POLICY, 8, { tierMaxReplicas: 5 }).error!.issues[0]!.message).toBe(
      "must be at most 5 (the owner's cap)",
    );
  });
});

describe("Scaling Event Completion", () => {
  it("Reject invalid status", () => {
    const result = scalingCompletionSchema.safeParse({ eventId: "evt-1", status: "done" });
    expect(result.success).toBe(false);
    expect(result.error!.issues).toMatchObject([
      { path: ["status"], message: "must be one of completed, failed, cancelled" },
    ]);
    expect(
      scalingCompletionSchema.safeParse({ eventId: "evt-1", status: "failed", error: "timeout" }).success,
    ).toBe(true);
  });

  it("Reject missing eventId", () => {
    const result = scalingCompletionSchema.safeParse({ status: "completed" });
    expect(result.success).toBe(false);
    expect(result.error!.issues).toMatchObject([
      { path: ["eventId"], message: "must name the scaling event" },
    ]);
  });
});

describe("Scaling History and Summary", () => {
  it("Retrieve scaling events", () => {
    // The engine reads a proxy's scale history in any order: the cooldown counts from the newest event.
    const decision = decide(
      DEFAULT_POLICY,
      state({
        samples: [scoreSample(95)],
        recentEvents: [
          { at: NOW - seconds(400), fromReplicas: 1, toReplicas: 2 },
          { at: NOW - seconds(30), fromReplicas: 2, toReplicas: 3 },
          { at: NOW - seconds(200), fromReplicas: 3, toReplicas: 2 },
        ],
      }),
      NOW,
    );
    expect(decision.action).toBe("none");
    expect(decision.limits).toContainEqual(
      expect.objectContaining({ kind: "cooldown", lastScaleAt: NOW - seconds(30), remainingSeconds: 30 }),
    );
  });

  it("Retrieve scaling summary", () => {
    // The summary's trend: the fitted change over the window decides rising, falling or steady.
    expect(trendDirection(8, 5)).toBe("rising");
    expect(trendDirection(-4, 5)).toBe("falling");
    expect(trendDirection(0.5, 5)).toBe("steady");
    expect(trendDirection(null, 0)).toBe("steady");
  });
});

describe("Error Handling", () => {
  it("Throw error when proxyId missing", () => {
    // The engine has no proxy identity of its own: a metrics report names its source with instanceId, and an
    // empty one is an error naming the field.
    const result = loadMetricsSchema.safeParse({ ...validMetrics, instanceId: "" });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(["instanceId"]);
  });

  it("Throw error when userId missing", () => {
    // Policies carry no owner: an owner field is an unknown field, rejected by name.
    const issues = policyIssues({ userId: "u-1" });
    expect(issues).toEqual([{ path: "", message: 'Unrecognized key: "userId"' }]);
  });

  it("Throw error when metrics invalid", () => {
    expect(() => loadMetricsSchema.parse({ ...validMetrics, cpuPercent: Number.NaN })).toThrow(/cpuPercent/);
    expect(() => loadMetricsSchema.parse({ ...validMetrics, memoryPercent: 101 })).toThrow(/memoryPercent/);
  });
});
