/**
 * The elasticity metrics on the hand-computed examples of docs/simulator.md ("Elasticity metrics"): each
 * example in the document is one of these cases, in both forms.
 */
import { describe, expect, it } from "vitest";
import { elasticityMetrics } from "../src/index.ts";

// docs/simulator.md, "The worked example": six one-minute steps.
const example = {
  stepSeconds: 60,
  demand: [2, 4, 4, 2, 2, 4],
  supply: [2, 3, 4, 4, 2, 4],
  billed: [2, 3, 4, 4, 4, 4],
  sloViolated: [false, true, false, false, false, false],
};

describe("elasticity metrics, the worked example (normalised form, percent)", () => {
  const m = elasticityMetrics(example);

  it("under-provisioning accuracy is the mean shortfall relative to demand: 100 · (1/4 · 60) / 360", () => {
    expect(m.underProvisioningAccuracy).toBeCloseTo(4.1667, 4);
  });

  it("over-provisioning accuracy is the mean excess relative to demand: 100 · (2/2 · 60) / 360", () => {
    expect(m.overProvisioningAccuracy).toBeCloseTo(16.6667, 4);
  });

  it("timeshares are the shares of time short (step 2) and in excess (step 4): 60 / 360 each", () => {
    expect(m.underProvisioningTimeshare).toBeCloseTo(16.6667, 4);
    expect(m.overProvisioningTimeshare).toBeCloseTo(16.6667, 4);
  });

  it("instability counts steps 3, 4 and 5 (supply and demand moved apart) over T − Δt: 180 / 300", () => {
    expect(m.instability).toBeCloseTo(60, 9);
  });

  it("jitter is (4 supply adaptations − 3 demand changes) per hour of a 6-minute run: 10/h", () => {
    expect(m.jitter).toBeCloseTo(10, 9);
  });

  it("totals: 4 scaling actions (supply changes), 21 billed replica-minutes, 1 minute in SLO violation", () => {
    expect(m.scalingActions).toBe(4);
    expect(m.replicaHours).toBeCloseTo(0.35, 12);
    expect(m.sloViolationMinutes).toBe(1);
    expect(m.durationMinutes).toBe(6);
  });
});

describe("elasticity metrics, the worked example (unnormalised form, resource units × time)", () => {
  const u = elasticityMetrics(example).unnormalized;

  it("the under- and over-provisioning areas are 1 replica × 1 min and 2 replicas × 1 min", () => {
    expect(u.underProvisioningReplicaHours).toBeCloseTo(1 / 60, 12);
    expect(u.overProvisioningReplicaHours).toBeCloseTo(2 / 60, 12);
  });

  it("times short, in excess and unstable are 1, 1 and 3 minutes; jitter is +1 adaptation", () => {
    expect(u.underProvisionedMinutes).toBe(1);
    expect(u.overProvisionedMinutes).toBe(1);
    expect(u.instabilityMinutes).toBe(3);
    expect(u.jitterAdaptations).toBe(1);
  });
});

describe("elasticity metrics, edge cases of the definitions", () => {
  it("a step without demand is compared with one replica: 1 replica over 0 demand is 100% over", () => {
    const m = elasticityMetrics({ stepSeconds: 60, demand: [0], supply: [1] });
    expect(m.overProvisioningAccuracy).toBe(100);
    expect(m.unnormalized.overProvisioningReplicaHours).toBeCloseTo(1 / 60, 12);
  });

  it("supply that follows demand exactly scores 0 everywhere but cost", () => {
    const m = elasticityMetrics({ stepSeconds: 30, demand: [1, 3, 2], supply: [1, 3, 2] });
    expect(m.underProvisioningAccuracy + m.overProvisioningAccuracy).toBe(0);
    expect(m.instability).toBe(0);
    expect(m.jitter).toBe(0);
    expect(m.replicaHours).toBeCloseTo((6 * 30) / 3600, 12);
  });

  it("a lagging supply has negative jitter: 1 adaptation for 2 demand changes in 4 minutes is −15/h", () => {
    const m = elasticityMetrics({ stepSeconds: 60, demand: [1, 2, 3, 3], supply: [1, 1, 3, 3] });
    expect(m.jitter).toBeCloseTo(-15, 9);
    expect(m.unnormalized.jitterAdaptations).toBe(-1);
  });

  it("series of different lengths are refused, naming the series", () => {
    expect(() => elasticityMetrics({ stepSeconds: 60, demand: [1, 2], supply: [1] })).toThrow(/supply/);
  });
});
