import { describe, expect, it } from "vitest";
import { loadMetricsSchema, scalingPolicySchema } from "../src/index.ts";

function issues(schema: typeof scalingPolicySchema | typeof loadMetricsSchema, input: unknown) {
  const result = schema.safeParse(input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
  return result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
}

describe("policy validation names the field and the rule", () => {
  it.each([
    ["minReplicas not an integer", { minReplicas: 1.5 }, "minReplicas", "must be an integer"],
    ["minReplicas below 0", { minReplicas: -1 }, "minReplicas", "must be ≥ 0"],
    ["maxReplicas below 1", { minReplicas: 0, maxReplicas: 0 }, "maxReplicas", "must be ≥ 1"],
    [
      "maxReplicas below minReplicas",
      { minReplicas: 4, maxReplicas: 3 },
      "maxReplicas",
      "must be ≥ minReplicas (4)",
    ],
    [
      "a target percent of 0",
      { targetCpuPercent: 0 },
      "targetCpuPercent",
      "must be a percent in (0, 100]: greater than 0",
    ],
    [
      "a target percent above 100",
      { targetMemoryPercent: 100.5 },
      "targetMemoryPercent",
      "must be a percent in (0, 100]: at most 100",
    ],
    [
      "a threshold above 100",
      { scaleUpThreshold: 120 },
      "scaleUpThreshold",
      "must be a percent in (0, 100]: at most 100",
    ],
    [
      "a negative threshold",
      { scaleDownThreshold: -3 },
      "scaleDownThreshold",
      "must be a percent in (0, 100]: greater than 0",
    ],
    [
      "scaleDownThreshold equal to scaleUpThreshold",
      { scaleDownThreshold: 50, scaleUpThreshold: 50 },
      "scaleDownThreshold",
      "must be below scaleUpThreshold (50)",
    ],
    [
      "scaleDownThreshold above scaleUpThreshold",
      { scaleDownThreshold: 70, scaleUpThreshold: 60 },
      "scaleDownThreshold",
      "must be below scaleUpThreshold (60)",
    ],
    [
      "a negative scale-up cooldown",
      { scaleUpCooldownSeconds: -1 },
      "scaleUpCooldownSeconds",
      "must not be negative",
    ],
    [
      "a negative scale-down cooldown",
      { scaleDownCooldownSeconds: -60 },
      "scaleDownCooldownSeconds",
      "must not be negative",
    ],
    [
      "a negative stabilization window",
      { behavior: { scaleDown: { stabilizationWindowSeconds: -5 } } },
      "behavior.scaleDown.stabilizationWindowSeconds",
      "must not be negative",
    ],
    ["an unknown field", { minReplica: 2 }, "", 'Unrecognized key: "minReplica"'],
    [
      "an unknown nested field",
      { behavior: { scaleUp: { window: 30 } } },
      "behavior.scaleUp",
      'Unrecognized key: "window"',
    ],
    ["a wrong type", { minReplicas: "3" }, "minReplicas", "Invalid input: expected number, received string"],
    [
      "a wrong enum value",
      { strategy: "predictive" },
      "strategy",
      'Invalid option: expected one of "threshold"|"targetTracking"|"step"',
    ],
    [
      "a rate policy of 0",
      { behavior: { scaleUp: { policies: [{ type: "Pods", value: 0, periodSeconds: 15 }] } } },
      "behavior.scaleUp.policies.0.value",
      "must be greater than 0",
    ],
  ])("rejects %s", (_name, input, path, message) => {
    expect(issues(scalingPolicySchema, input)).toContainEqual({ path, message });
  });

  it("accepts HPA's tolerances above 1 (KEP-4951 has no upper bound)", () => {
    expect(scalingPolicySchema.safeParse({ behavior: { scaleUp: { tolerance: 2 } } }).success).toBe(true);
    expect(issues(scalingPolicySchema, { behavior: { scaleUp: { tolerance: -0.1 } } })).toEqual([
      { path: "behavior.scaleUp.tolerance", message: "must not be negative" },
    ]);
  });
});

describe("metrics validation names the field and the rule", () => {
  const valid = {
    cpuPercent: 40,
    memoryPercent: 50,
    requestRate: 300,
    avgLatencyMs: 12,
    errorRatePercent: 1,
  };

  it.each([
    [
      "a missing field",
      { ...valid, avgLatencyMs: undefined },
      "avgLatencyMs",
      "Invalid input: expected number, received undefined",
    ],
    [
      "NaN",
      { ...valid, cpuPercent: Number.NaN },
      "cpuPercent",
      "Invalid input: expected number, received NaN",
    ],
    [
      "Infinity",
      { ...valid, requestRate: Number.POSITIVE_INFINITY },
      "requestRate",
      "Invalid input: expected number, received Infinity",
    ],
    ["a negative value", { ...valid, avgLatencyMs: -1 }, "avgLatencyMs", "must not be negative"],
    ["a negative custom value", { ...valid, custom: { queue: -2 } }, "custom.queue", "must not be negative"],
    [
      "a percent above 100",
      { ...valid, errorRatePercent: 100.1 },
      "errorRatePercent",
      "must be a percent: at most 100",
    ],
    ["an unknown field", { ...valid, cpu: 40 }, "", 'Unrecognized key: "cpu"'],
  ])("rejects %s", (_name, input, path, message) => {
    expect(issues(loadMetricsSchema, input)).toContainEqual({ path, message });
  });

  it("accepts a complete reading with custom metrics", () => {
    expect(loadMetricsSchema.parse({ ...valid, custom: { queue_depth: 3 } })).toEqual({
      ...valid,
      custom: { queue_depth: 3 },
    });
  });
});
