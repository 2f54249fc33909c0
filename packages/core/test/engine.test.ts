import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY,
  decide,
  explainDecision,
  observeFleet,
  POLICY_PRESETS,
  parsePolicy,
  policyFromPreset,
  roundPercentChange,
} from "../src/index.ts";
import { cpuSamples, NOW, sample, scoreSample, seconds, state } from "./fixtures.ts";

describe("live samples", () => {
  it("averages the latest sample of each instance and ignores stale ones", () => {
    const observation = observeFleet(
      [
        sample({ instanceId: "a", cpuPercent: 10 }, 50),
        sample({ instanceId: "a", cpuPercent: 30 }, 5),
        sample({ instanceId: "b", cpuPercent: 50 }, 20),
        sample({ instanceId: "c", cpuPercent: 99 }, 61),
      ],
      3,
      60,
      NOW,
    );
    expect(observation).toMatchObject({ liveSamples: 2, fleetAverage: false, describedReplicas: 2 });
    expect(observation!.averages.cpuPercent).toBe(40);
  });

  it("uses the latest fleet-average sample only when no instance reported", () => {
    const fleetOnly = observeFleet(
      [sample({ cpuPercent: 20 }, 30), sample({ cpuPercent: 60 }, 10)],
      4,
      60,
      NOW,
    );
    expect(fleetOnly).toMatchObject({ fleetAverage: true, describedReplicas: 4 });
    expect(fleetOnly!.averages.cpuPercent).toBe(60);
    const mixed = observeFleet(
      [sample({ cpuPercent: 20 }), sample({ instanceId: "a", cpuPercent: 70 })],
      4,
      60,
      NOW,
    );
    expect(mixed).toMatchObject({ fleetAverage: false, liveSamples: 1 });
    expect(mixed!.averages.cpuPercent).toBe(70);
  });

  it("averages each custom metric over the samples that carry it", () => {
    const observation = observeFleet(
      [
        sample({ instanceId: "a", custom: { queue: 4 } }),
        sample({ instanceId: "b", custom: { queue: 8, conns: 100 } }),
        sample({ instanceId: "c" }),
      ],
      3,
      60,
      NOW,
    );
    expect(observation!.averages.custom).toEqual({ queue: 6, conns: 100 });
  });

  it("de-duplicates many instances the same way as few", () => {
    const many = Array.from({ length: 80 }, (_, i) =>
      sample({ instanceId: `r${i % 40}`, cpuPercent: i }, 80 - i),
    );
    const observation = observeFleet(many, 40, 120, NOW);
    // The newer half (i = 40..79) wins for every instance: mean of 40..79.
    expect(observation).toMatchObject({ liveSamples: 40 });
    expect(observation!.averages.cpuPercent).toBe(59.5);
  });
});

describe("no live metrics", () => {
  it("holds the count with a noMetrics limit (before fallback's threshold)", () => {
    const decision = decide(DEFAULT_POLICY, state({ samples: [scoreSample(95, 65)] }), NOW);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 3, loadScore: null, basis: null });
    expect(decision.limits).toEqual([{ kind: "noMetrics", liveSamples: 0, maxAgeSeconds: 60 }]);
    expect(decision.explanation).toBe("no live metrics in the last 60s; no change at 3");
  });

  it("still brings a fleet below minReplicas up to it (nothing reports while nothing runs)", () => {
    const decision = decide(DEFAULT_POLICY, state({ currentReplicas: 0, createdAt: NOW - seconds(30) }), NOW);
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 1 });
    expect(decision.explanation).toBe(
      "no live metrics in the last 60s; raised to 1 by minReplicas 1; scale up 0 → 1",
    );
  });
});

describe("health", () => {
  it("lets a fleet with unhealthy replicas scale up: their share of a fleet average falls on serving ones", () => {
    const healthy = decide(DEFAULT_POLICY, state({ currentReplicas: 4, samples: [scoreSample(65)] }), NOW);
    expect(healthy.action).toBe("none");
    // cpu, memory and request share rise by 4/3 (65 → 86.7); the error rate is per request and stays at 65.
    const degraded = decide(
      DEFAULT_POLICY,
      state({ currentReplicas: 4, unhealthyReplicas: 1, samples: [scoreSample(65)] }),
      NOW,
    );
    expect(degraded).toMatchObject({ action: "scale_up", desiredReplicas: 5 });
    expect(degraded.limits[0]).toEqual({
      kind: "health",
      unhealthyReplicas: 1,
      servingReplicas: 3,
      loadFactor: 4 / 3,
    });
    expect(degraded.explanation).toBe(
      "load score 84.5 > scale-up threshold 80 → 5 replicas; 1 of 4 replicas unhealthy (3 serving, their load ×1.33); scale up 4 → 5",
    );
  });

  it("scales up one step when no replica is serving", () => {
    const decision = decide(
      DEFAULT_POLICY,
      state({ currentReplicas: 2, unhealthyReplicas: 2, samples: [scoreSample(5)] }),
      NOW,
    );
    expect(decision).toMatchObject({ loadScore: 100, action: "scale_up", desiredReplicas: 3 });
  });

  it("takes per-instance readings as the serving replicas' own (HPA: unready pods count as idle on a scale-up)", () => {
    const policy = parsePolicy({ strategy: "targetTracking", targetCpuPercent: 30 });
    const decision = decide(
      policy,
      state({ currentReplicas: 3, unhealthyReplicas: 1, samples: cpuSamples(50, 70) }),
      NOW,
    );
    // ratio 2 on 2 ready replicas; with the unready one at 0: 120 / 3 = 40% → 1.33 × 3 → 4.
    expect(decision.desiredReplicas).toBe(4);
    expect(decision.limits[0]).toEqual({
      kind: "health",
      unhealthyReplicas: 1,
      servingReplicas: 2,
      loadFactor: 1,
    });
  });
});

describe("threshold cooldowns", () => {
  const scaledAgo = (secondsAgo: number, fromReplicas: number, toReplicas: number) => [
    { at: NOW - seconds(secondsAgo), fromReplicas, toReplicas },
  ];

  it("holds a scale-up within scaleUpCooldownSeconds of the last event of either direction", () => {
    const decision = decide(
      DEFAULT_POLICY,
      state({ samples: [scoreSample(90)], recentEvents: scaledAgo(20, 4, 3) }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "none", recommendedReplicas: 4, desiredReplicas: 3 });
    expect(decision.limits).toEqual([
      {
        kind: "cooldown",
        direction: "scale_up",
        cooldownSeconds: 60,
        remainingSeconds: 40,
        lastScaleAt: NOW - seconds(20),
      },
    ]);
    expect(decision.explanation).toBe(
      "load score 90 > scale-up threshold 80 → 4 replicas; held by scale-up cooldown 60s (40s left); no change at 3",
    );
  });

  it("scales up once the cooldown has passed", () => {
    const decision = decide(
      DEFAULT_POLICY,
      state({ samples: [scoreSample(90)], recentEvents: scaledAgo(60, 4, 3) }),
      NOW,
    );
    expect(decision.action).toBe("scale_up");
  });

  it("holds a scale-down for scaleDownCooldownSeconds after a scale-up", () => {
    const within = decide(
      DEFAULT_POLICY,
      state({ samples: [scoreSample(10)], recentEvents: scaledAgo(299, 2, 3) }),
      NOW,
    );
    expect(within.action).toBe("none");
    expect(within.limits[0]).toMatchObject({
      kind: "cooldown",
      direction: "scale_down",
      cooldownSeconds: 300,
    });
    const after = decide(
      DEFAULT_POLICY,
      state({ samples: [scoreSample(10)], recentEvents: scaledAgo(300, 2, 3) }),
      NOW,
    );
    expect(after.action).toBe("scale_down");
  });

  it("does not apply the seed's cooldowns to target tracking (HPA has none)", () => {
    const policy = parsePolicy({ strategy: "targetTracking", targetCpuPercent: 50 });
    const decision = decide(
      policy,
      state({ samples: cpuSamples(90, 90, 90), recentEvents: scaledAgo(5, 2, 3) }),
      NOW,
    );
    expect(decision.action).toBe("scale_up");
  });
});

describe("behavior applied after the threshold strategy", () => {
  it("holds a scale-down while the scale-down window remembers a higher recommendation", () => {
    const recommendations = [
      { at: NOW - seconds(200), replicas: 3 },
      { at: NOW - seconds(100), replicas: 3 },
    ];
    const decision = decide(DEFAULT_POLICY, state({ samples: [scoreSample(10)], recommendations }), NOW);
    expect(decision).toMatchObject({ action: "none", recommendedReplicas: 2, desiredReplicas: 3 });
    expect(decision.explanation).toBe(
      "load score 10 < scale-down threshold 30 → 2 replicas; held at 3 by scaleDown stabilization window 300s; no change at 3",
    );
    // Once every remembered recommendation is 2 or less, it scales down.
    const settled = recommendations.map((r) => ({ ...r, replicas: 2 }));
    expect(
      decide(DEFAULT_POLICY, state({ samples: [scoreSample(10)], recommendations: settled }), NOW).action,
    ).toBe("scale_down");
  });

  it("caps a large threshold step at the rate policies", () => {
    const policy = parsePolicy({ scaleUpStep: 10, maxReplicas: 50 });
    const decision = decide(policy, state({ currentReplicas: 2, samples: [scoreSample(90)] }), NOW);
    expect(decision).toMatchObject({ recommendedReplicas: 12, desiredReplicas: 6 });
    expect(decision.explanation).toBe(
      "load score 90 > scale-up threshold 80 → 12 replicas; capped at 6 by scaleUp policy Pods 4 per 15s; scale up 2 → 6",
    );
  });

  it("holds when the direction's selectPolicy is Disabled", () => {
    const policy = parsePolicy({ behavior: { scaleDown: { selectPolicy: "Disabled" } } });
    const decision = decide(policy, state({ samples: [scoreSample(10)] }), NOW);
    expect(decision.action).toBe("none");
    expect(decision.limits).toEqual([
      {
        kind: "ratePolicy",
        direction: "scale_down",
        selectPolicy: "Disabled",
        policy: undefined,
        from: 2,
        to: 3,
      },
    ]);
    expect(decision.explanation).toContain("held at 3: scaleDown selectPolicy Disabled");
  });
});

describe("bounds and caps", () => {
  it("goes straight to maxReplicas from above it, cooldown or not (as HPA)", () => {
    const decision = decide(
      DEFAULT_POLICY,
      state({
        currentReplicas: 14,
        samples: [scoreSample(50)],
        recentEvents: [{ at: NOW - 1000, fromReplicas: 13, toReplicas: 14 }],
      }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "scale_down", desiredReplicas: 10 });
    expect(decision.limits).toEqual([{ kind: "maxReplicas", value: 10, from: 14, to: 10 }]);
  });

  it("applies the tier cap, then the budget, after every other limit", () => {
    const decision = decide(
      parsePolicy({ maxReplicas: 20 }),
      state({
        currentReplicas: 8,
        samples: [scoreSample(90)],
        caps: { tierMaxReplicas: 7, budgetMaxReplicas: 6 },
      }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "scale_down", recommendedReplicas: 9, desiredReplicas: 6 });
    expect(decision.limits).toEqual([
      { kind: "tierCap", value: 7, from: 9, to: 7 },
      { kind: "budget", value: 6, from: 7, to: 6 },
    ]);
    expect(decision.explanation).toBe(
      "load score 90 > scale-up threshold 80 → 9 replicas; capped at 7 by tier cap 7; capped at 6 by budget 6; scale down 8 → 6",
    );
  });
});

describe("target tracking", () => {
  const policy = parsePolicy({ strategy: "targetTracking", targetCpuPercent: 50, maxReplicas: 20 });

  it("explains the winning metric and the rate policy that capped it", () => {
    const decision = decide(
      policy,
      state({
        samples: cpuSamples(78, 78, 78),
        recentEvents: [{ at: NOW - seconds(5), fromReplicas: 0, toReplicas: 3 }],
      }),
      NOW,
    );
    expect(decision.explanation).toBe(
      "cpu 78% vs target 50% → 5 replicas; capped at 4 by scaleUp policy Pods 4 per 15s; scale up 3 → 4",
    );
  });

  it("lets the largest proposal win", () => {
    const samples = cpuSamples(60, 60).map((s) => ({ ...s, requestRate: 3000 }));
    const decision = decide(policy, state({ currentReplicas: 2, samples }), NOW);
    // cpu: ceil(1.2 · 2) = 3; requestRate: ceil(3 · 2) = 6.
    expect(decision.metrics.map((m) => [m.metric, m.proposedReplicas])).toEqual([
      ["cpuPercent", 3],
      ["memoryPercent", 0],
      ["requestRate", 6],
    ]);
    expect(decision.desiredReplicas).toBe(6);
    expect(decision.explanation.startsWith("requestRate 3000/s vs target 1000/s → 6 replicas")).toBe(true);
  });

  it("records the tolerance that held the count", () => {
    const samples = cpuSamples(53, 53).map((s) => ({ ...s, memoryPercent: 80, requestRate: 1000 }));
    const decision = decide(policy, state({ currentReplicas: 2, samples }), NOW);
    expect(decision.action).toBe("none");
    expect(decision.limits).toEqual([
      { kind: "tolerance", direction: "scale_up", tolerance: 0.1, ratio: 1.06, metric: "cpuPercent" },
    ]);
    expect(decision.explanation).toBe(
      "cpu 53% vs target 50% within tolerance 0.1 → 2 replicas; cpu ratio 1.06 within scale-up tolerance 0.1; no change at 2",
    );
  });

  it("tracks latency and custom targets when set", () => {
    const withTargets = parsePolicy({
      strategy: "targetTracking",
      targetLatencyMs: 100,
      customMetricTargets: { queue_depth: 10 },
      maxReplicas: 20,
    });
    const samples = cpuSamples(10, 10).map((s) => ({ ...s, avgLatencyMs: 150, custom: { queue_depth: 40 } }));
    const decision = decide(withTargets, state({ currentReplicas: 2, samples }), NOW);
    expect(decision.metrics.map((m) => [m.metric, m.proposedReplicas])).toContainEqual(["avgLatencyMs", 3]);
    expect(decision.metrics.map((m) => [m.metric, m.proposedReplicas])).toContainEqual([
      "custom.queue_depth",
      8,
    ]);
    expect(decision.desiredReplicas).toBe(6); // 8 wanted; Max(2 + 4, 2 · 2) = 6 per 15 s
    expect(decision.explanation.startsWith("queue_depth 40 vs target 10 → 8 replicas")).toBe(true);
  });
});

describe("step scaling", () => {
  const stepPolicy = (stepScaling: object) => parsePolicy({ strategy: "step", maxReplicas: 50, stepScaling });

  it("applies the default steps: +1 just above the scale-out threshold, +2 from 10 above, −1 at or below scale-in", () => {
    const at = (score: number, current = 4) =>
      decide(stepPolicy({}), state({ currentReplicas: current, samples: [scoreSample(score)] }), NOW)
        .recommendedReplicas;
    expect(at(80)).toBe(5); // breach 0: lower bound 0 is inclusive above the threshold
    expect(at(89.9)).toBe(5);
    expect(at(90)).toBe(6); // upper bound 10 is exclusive
    expect(at(55)).toBe(4);
    expect(at(30)).toBe(3); // breach 0 below: upper bound 0 is inclusive
  });

  it("explains the alarm, the breach and the step", () => {
    const decision = decide(stepPolicy({}), state({ currentReplicas: 4, samples: [scoreSample(95)] }), NOW);
    expect(decision.explanation).toBe(
      "load score 95 ≥ scale-out threshold 80 (+15) → step +2 → 6 replicas; scale up 4 → 6",
    );
  });

  it("rounds percent changes the AWS way and raises them to MinAdjustmentMagnitude", () => {
    expect([12.7, 0.67, 0, -0.58, -6.67, 3].map(roundPercentChange)).toEqual([12, 1, 0, -1, -6, 3]);
    const policy = stepPolicy({
      metric: "cpuPercent",
      adjustmentType: "PercentChangeInCapacity",
      minAdjustmentMagnitude: 2,
      scaleOut: { threshold: 70, stepAdjustments: [{ metricIntervalLowerBound: 0, scalingAdjustment: 25 }] },
    });
    // 25% of 4 is 1; MinAdjustmentMagnitude makes it 2.
    const decision = decide(policy, state({ currentReplicas: 4, samples: cpuSamples(80, 80, 80, 80) }), NOW);
    expect(decision.recommendedReplicas).toBe(6);
    expect(decision.limits).toEqual([{ kind: "minAdjustmentMagnitude", value: 2, from: 5, to: 6 }]);
    expect(decision.explanation).toBe(
      "cpu 80% ≥ scale-out threshold 70 (+10) → step +25% (+2) → 6 replicas; raised to 6 by minAdjustmentMagnitude 2; scale up 4 → 6",
    );
    // 25% of 12 is 3, above the minimum.
    expect(
      decide(policy, state({ currentReplicas: 12, samples: cpuSamples(80) }), NOW).recommendedReplicas,
    ).toBe(15);
  });

  it("sets ExactCapacity and scales in on a custom metric", () => {
    const policy = stepPolicy({
      metric: "custom.sessions",
      adjustmentType: "ExactCapacity",
      scaleOut: { threshold: 100, stepAdjustments: [{ metricIntervalLowerBound: 0, scalingAdjustment: 8 }] },
      scaleIn: { threshold: 20, stepAdjustments: [{ metricIntervalUpperBound: 0, scalingAdjustment: 2 }] },
    });
    const busy = cpuSamples(50).map((s) => ({ ...s, custom: { sessions: 150 } }));
    const idle = cpuSamples(50).map((s) => ({ ...s, custom: { sessions: 5 } }));
    expect(decide(policy, state({ currentReplicas: 4, samples: busy }), NOW).recommendedReplicas).toBe(8);
    expect(decide(policy, state({ currentReplicas: 4, samples: idle }), NOW).recommendedReplicas).toBe(2);
  });

  it("holds with a noMetrics limit when the step metric has no reading", () => {
    const policy = stepPolicy({ metric: "custom.sessions" });
    const decision = decide(policy, state({ samples: cpuSamples(90, 90, 90) }), NOW);
    expect(decision.action).toBe("none");
    expect(decision.limits).toEqual([
      { kind: "noMetrics", liveSamples: 3, maxAgeSeconds: 60, metric: "custom.sessions" },
    ]);
  });

  it("holds when no step adjustment covers the breach", () => {
    const policy = stepPolicy({
      scaleOut: {
        threshold: 80,
        stepAdjustments: [{ metricIntervalLowerBound: 0, metricIntervalUpperBound: 5, scalingAdjustment: 1 }],
      },
    });
    const decision = decide(policy, state({ samples: [scoreSample(95)] }), NOW);
    expect(decision.recommendedReplicas).toBe(3);
    expect(decision.explanation).toBe(
      "load score 95 ≥ scale-out threshold 80 (+15), no step adjustment matches → 3 replicas; no change at 3",
    );
  });
});

describe("presets", () => {
  it("balanced is the default policy", () => {
    expect(policyFromPreset("balanced")).toEqual(DEFAULT_POLICY);
  });

  it("aggressive scales out earlier and faster; conservative later and slower", () => {
    const aggressive = policyFromPreset("aggressive");
    const conservative = policyFromPreset("conservative");
    expect(aggressive.scaleUpThreshold).toBeLessThan(DEFAULT_POLICY.scaleUpThreshold);
    expect(conservative.scaleUpThreshold).toBeGreaterThan(DEFAULT_POLICY.scaleUpThreshold);
    const busy = state({ currentReplicas: 4, samples: [scoreSample(70)] });
    expect(decide(aggressive, busy, NOW)).toMatchObject({ action: "scale_up", desiredReplicas: 6 });
    expect(decide(DEFAULT_POLICY, busy, NOW).action).toBe("none");
    expect(decide(conservative, state({ currentReplicas: 4, samples: [scoreSample(85)] }), NOW).action).toBe(
      "none",
    );
  });

  it("merges overrides into the preset, behavior field by field", () => {
    const policy = policyFromPreset("conservative", {
      maxReplicas: 40,
      behavior: { scaleUp: { stabilizationWindowSeconds: 0 } },
    });
    expect(policy.maxReplicas).toBe(40);
    expect(policy.behavior.scaleUp).toEqual({
      ...POLICY_PRESETS.conservative.behavior.scaleUp,
      stabilizationWindowSeconds: 0,
    });
    expect(policy.behavior.scaleDown.stabilizationWindowSeconds).toBe(600);
  });

  it("rejects an invalid override by field", () => {
    expect(() => policyFromPreset("aggressive", { scaleDownThreshold: 90 })).toThrow(/scaleDownThreshold/);
  });
});

describe("explanations", () => {
  it("are rebuilt identically from a stored (JSON) decision", () => {
    const decision = decide(
      DEFAULT_POLICY,
      state({ currentReplicas: 4, unhealthyReplicas: 1, samples: [scoreSample(65)] }),
      NOW,
    );
    const stored = JSON.parse(JSON.stringify(decision));
    expect(explainDecision(stored)).toBe(decision.explanation);
  });
});
