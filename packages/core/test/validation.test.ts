import { describe, expect, it } from "vitest";
import {
  CONTROL_CHARACTER_RULE,
  futureSampleRefusal,
  loadMetricsSchema,
  MULTILINE_CONTROL_CHARACTER_RULE,
  PG_INTEGER_MAX,
  reportedAtMs,
  scalingCompletionSchema,
  scalingPolicySchema,
  storableInteger,
  storableText,
  UNICODE_RULE,
} from "../src/index.ts";

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
      { strategy: "lstm" },
      "strategy",
      'Invalid option: expected one of "threshold"|"targetTracking"|"step"|"predictive"',
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

describe("storable text and integers: what PostgreSQL text, jsonb and integer columns hold", () => {
  it.each([
    ["NUL", "a\u0000b"],
    ["a tab", "a\tb"],
    ["a line feed", "a\nb"],
    ["ESC", "\u001b[31m"],
    ["DEL", "a\u007f"],
    ["a C1 control", "a\u0085"],
  ])("a line of text refuses %s, naming the rule", (_case, value) => {
    expect(storableText().safeParse(value).error?.issues[0]?.message).toBe(CONTROL_CHARACTER_RULE);
  });

  it("free text keeps tab, line feed and carriage return but refuses NUL and the other controls", () => {
    const free = storableText("multiline");
    expect(free.safeParse("line one\r\n\tline two").success).toBe(true);
    expect(free.safeParse("a\u0000").error?.issues[0]?.message).toBe(MULTILINE_CONTROL_CHARACTER_RULE);
    expect(free.safeParse("a\u0007").error?.issues[0]?.message).toBe(MULTILINE_CONTROL_CHARACTER_RULE);
  });

  it("refuses an unpaired surrogate and keeps a paired one (an emoji)", () => {
    expect(storableText().safeParse("a\ud800").error?.issues[0]?.message).toBe(UNICODE_RULE);
    expect(storableText().safeParse("ok \u{1F600}").success).toBe(true);
  });

  it("bounds integers by a PostgreSQL integer, whatever larger bound a caller asks", () => {
    expect(storableInteger(0).safeParse(PG_INTEGER_MAX).success).toBe(true);
    expect(storableInteger(0).safeParse(PG_INTEGER_MAX + 1).error?.issues[0]?.message).toBe(
      "must be at most 2147483647 (a PostgreSQL integer)",
    );
    expect(storableInteger(0, 2 ** 40).safeParse(2 ** 31).success).toBe(false);
  });

  it("every integer field of the policy, the sample and the completion refuses 2^31", () => {
    expect(issues(scalingPolicySchema, { scaleDownCooldownSeconds: 2 ** 31 })[0]?.path).toBe(
      "scaleDownCooldownSeconds",
    );
    expect(issues(scalingPolicySchema, { scaleUpStep: 2 ** 31 })[0]?.path).toBe("scaleUpStep");
    expect(
      issues(scalingPolicySchema, {
        behavior: { scaleUp: { policies: [{ type: "Pods", value: 2 ** 31, periodSeconds: 15 }] } },
      })[0]?.path,
    ).toBe("behavior.scaleUp.policies.0.value");
    expect(
      issues(loadMetricsSchema, {
        cpuPercent: 1,
        memoryPercent: 1,
        requestRate: 1,
        avgLatencyMs: 1,
        errorRatePercent: 1,
        replicas: 2 ** 31,
      })[0]?.path,
    ).toBe("replicas");
    expect(
      scalingCompletionSchema.safeParse({ eventId: "e", status: "completed", observedReplicas: 2 ** 31 })
        .success,
    ).toBe(false);
  });
});

describe("the clock-skew rule: a sample too far in the future (time is an argument)", () => {
  const NOW = Date.UTC(2030, 0, 1);

  it("accepts a sample up to the allowance ahead, and any sample from the past", () => {
    expect(futureSampleRefusal(NOW + 60_000, NOW, 60)).toBeNull();
    expect(futureSampleRefusal(NOW - 86_400_000, NOW, 60)).toBeNull();
    expect(futureSampleRefusal(NOW + 1, NOW, 0)).not.toBeNull();
  });

  it("refuses one further ahead, naming the allowance and how far ahead it is", () => {
    expect(futureSampleRefusal(NOW + 60_001, NOW, 60)).toBe(
      "must not be more than 60 s ahead of the server's clock (the clock-skew allowance, PROXYSCALE_MAX_CLOCK_SKEW_SECONDS); it is 61 s ahead",
    );
    expect(futureSampleRefusal(reportedAtMs("9999-12-31T23:59:59Z", NOW), NOW, 60)).not.toBeNull();
    expect(futureSampleRefusal(2 ** 53 - 1, NOW, 60)).not.toBeNull();
  });

  it("reads recordedAt as epoch ms or ISO 8601, the receive time when absent", () => {
    expect(reportedAtMs(undefined, NOW)).toBe(NOW);
    expect(reportedAtMs(NOW - 5, NOW)).toBe(NOW - 5);
    expect(reportedAtMs("2030-01-01T00:00:01+00:00", NOW)).toBe(NOW + 1000);
  });
});
