import { describe, expect, it } from "vitest";
import { linearCapacityModel, type PredictiveBasis, parsePolicy, simulate } from "../src/index.ts";

/** Three days at 60 s steps: a daily cycle between 200 and 1800 requests a second (counts per step). */
const trace = Array.from(
  { length: 3 * 1440 },
  (_, minute) => 60 * (1000 + 800 * Math.sin((2 * Math.PI * minute) / 1440)),
);
const capacity = linearCapacityModel({ perReplicaRps: 100 });
const policy = (strategy: string) =>
  parsePolicy({
    strategy,
    minReplicas: 1,
    maxReplicas: 40,
    targetRequestRate: 80,
    targetCpuPercent: 100,
    targetMemoryPercent: 100,
    predictive: { warmupSeconds: 300 },
  });
const run = (strategy: string) =>
  simulate({
    policy: policy(strategy),
    trace,
    stepSeconds: 60,
    capacity,
    initialReplicas: 12,
    warmupSeconds: 300,
  });

describe("simulate: predictive replays the trace's past", () => {
  const predictive = run("predictive");

  it("acts as target tracking through the first day, then forecasts from the trace's past", () => {
    const bases = predictive.steps.map((step) => step.decision?.basis as PredictiveBasis | undefined);
    const firstDay = bases.slice(0, 1440).filter((b) => b !== undefined);
    const later = bases.slice(1441).filter((b) => b !== undefined);
    expect(firstDay.every((b) => b!.forecast === null)).toBe(true);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((b) => b!.forecast !== null)).toBe(true);
  });

  it("is under-provisioned less of the time than target tracking on a daily cycle with warm-up", () => {
    const tracking = run("targetTracking");
    expect(predictive.metrics.underProvisioningTimeshare).toBeLessThan(
      tracking.metrics.underProvisioningTimeshare,
    );
  });
});
