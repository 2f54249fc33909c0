import { describe, expect, it } from "vitest";
import { decide, minReplicasZeroError, parsePolicy, recordedOnReconcile } from "../src/index.ts";
import { cpuSamples, NOW, sample, seconds, state } from "./fixtures.ts";

const zeroable = parsePolicy({ minReplicas: 0, strategy: "targetTracking", targetCpuPercent: 50 });
/** Idle replicas: low cpu, no requests. */
const idle = (...cpu: number[]) => cpuSamples(...cpu);

describe("scale to zero", () => {
  it("defaults the grace period to 30 s, as Knative, and bounds it at an hour naming the field", () => {
    expect(zeroable.scaleToZeroGracePeriodSeconds).toBe(30);
    expect(() => parsePolicy({ scaleToZeroGracePeriodSeconds: 3_601 })).toThrow(/at most 3600/);
  });

  it("goes to 0 once live metrics show no request for the grace period, past the strategy and stabilization", () => {
    const decision = decide(
      zeroable,
      state({
        currentReplicas: 2,
        samples: idle(20, 20),
        lastRequestAt: NOW - seconds(31),
      }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "scale_down", desiredReplicas: 0 });
    expect(decision.limits.at(-1)).toEqual({
      kind: "scaleToZero",
      idleSeconds: 31,
      gracePeriodSeconds: 30,
      // What target tracking proposed (cpu 20% of 50% on 2 replicas).
      from: 1,
      to: 0,
    });
    expect(decision.explanation).toContain("no request for 31s (scale-to-zero grace 30s): to 0");
  });

  it("stays up within the grace period, and holds a proposal of 0 at 1", () => {
    const recent = state({
      currentReplicas: 1,
      samples: idle(0),
      lastRequestAt: NOW - seconds(10),
      recommendations: [],
    });
    const decision = decide(
      parsePolicy({ ...zeroable, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } }),
      recent,
      NOW,
    );
    expect(decision.recommendedReplicas).toBe(0);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 1 });
    expect(decision.limits.at(-1)).toMatchObject({ kind: "scaleToZero", from: 0, to: 1, idleSeconds: 10 });
  });

  it("counts a request in the latest samples and a scale up from 0 as requests seen", () => {
    const busy = decide(
      zeroable,
      state({ currentReplicas: 1, samples: [sample({ instanceId: "r0", requestRate: 3 }, 5)] }),
      NOW,
    );
    expect(busy.desiredReplicas).toBeGreaterThan(0);
    const justActivated = decide(
      zeroable,
      state({
        currentReplicas: 1,
        samples: idle(1),
        lastRequestAt: null,
        recentEvents: [{ at: NOW - seconds(5), fromReplicas: 0, toReplicas: 1 }],
      }),
      NOW,
    );
    expect(justActivated.desiredReplicas).toBe(1);
  });

  it("never goes to 0 on missing metrics: the stale-metrics rules apply instead", () => {
    const decision = decide(zeroable, state({ currentReplicas: 2, samples: [], lastRequestAt: null }), NOW);
    expect(decision.desiredReplicas).toBe(2);
    expect(decision.limits.map((limit) => limit.kind)).not.toContain("scaleToZero");
  });

  it("does nothing of the kind when minReplicas is above 0", () => {
    const decision = decide(
      parsePolicy({ ...zeroable, minReplicas: 1 }),
      state({ currentReplicas: 2, samples: idle(0, 0), lastRequestAt: null }),
      NOW,
    );
    expect(decision.limits.map((limit) => limit.kind)).not.toContain("scaleToZero");
    expect(decision.desiredReplicas).toBeGreaterThanOrEqual(1);
  });
});

describe("activation from 0", () => {
  it("scales to 1 at once for requests held at the front, past the cooldown, and the decision is recorded", () => {
    const decision = decide(
      parsePolicy({ minReplicas: 0 }),
      state({
        currentReplicas: 0,
        heldRequests: 3,
        recentEvents: [{ at: NOW - seconds(2), fromReplicas: 1, toReplicas: 0 }],
      }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 1 });
    expect(decision.limits).toContainEqual({
      kind: "activation",
      source: "front",
      heldRequests: 3,
      requestRate: 0,
      threshold: 0,
      from: 0,
      to: 1,
    });
    expect(decision.explanation).toContain("activation: 3 requests held at the front: raised to 1");
    expect(recordedOnReconcile(decision)).toBe(true);
  });

  it("scales to 1 when the live request rate is above the metric source's activation threshold (KEDA)", () => {
    const fleet = [sample({ requestRate: 6 }, 5)];
    const above = decide(
      zeroable,
      state({ currentReplicas: 0, samples: fleet, activationThreshold: 5 }),
      NOW,
    );
    expect(above).toMatchObject({ action: "scale_up", desiredReplicas: 1 });
    expect(above.limits.at(-1)).toMatchObject({ kind: "activation", source: "metrics", requestRate: 6 });
    const below = decide(
      zeroable,
      state({ currentReplicas: 0, samples: fleet, activationThreshold: 6 }),
      NOW,
    );
    expect(below).toMatchObject({ action: "none", desiredReplicas: 0 });
    expect(below.explanation).toContain(
      "at zero: request rate 6/s not above activation threshold 6: held at 0",
    );
  });

  it("stays at 0 without demand, with no fallback waking it when no metrics come", () => {
    const decision = decide(
      parsePolicy({ minReplicas: 0, fallback: { failureThreshold: 1, replicas: 3 } }),
      state({ currentReplicas: 0, samples: [], lastSampleAt: NOW - seconds(600) }),
      NOW,
    );
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 0 });
    expect(decision.limits.map((limit) => limit.kind)).toEqual(["noMetrics", "activation"]);
  });
});

describe("which actuators may run minReplicas 0", () => {
  it("allows local (buffering) and kubernetes, webhook, command (activation), and refuses none", () => {
    for (const kind of ["local", "kubernetes", "webhook", "command"] as const)
      expect(minReplicasZeroError(kind)).toBeNull();
    expect(minReplicasZeroError("none")).toMatch(/must be at least 1 for a proxy on actuator none/);
  });
});
