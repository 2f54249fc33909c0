import { describe, expect, it } from "vitest";
import {
  type DemandHistory,
  decide,
  decisionOutcome,
  errorQuantile,
  executes,
  fitDemand,
  type PredictiveBasis,
  scalingPolicySchema,
} from "../src/index.ts";
import { NOW, sample, state } from "./fixtures.ts";

const MINUTE = 60_000;

/** The daily sinusoid behind dailyDemand: 500 req/s at 12:00 UTC, rising fastest there (sign −1: falling). */
const dailyRate = (at: number, sign: 1 | -1) =>
  500 + sign * 400 * Math.sin((2 * Math.PI * (((at / 3_600_000) % 24) - 12)) / 24);

/** Fleet request rate per minute on dailyRate, ending at `endsAt` (NOW, 12:00 UTC, unless given). */
function dailyDemand(minutes: number, sign: 1 | -1, endsAt = NOW): DemandHistory {
  const perMinute = Array.from({ length: minutes }, (_, i) =>
    dailyRate(endsAt - (minutes - i) * MINUTE, sign),
  );
  return { perMinute, endsAt };
}

const policy = (overrides: Record<string, unknown> = {}) =>
  scalingPolicySchema.parse({
    strategy: "predictive",
    maxReplicas: 50,
    targetCpuPercent: 70,
    targetMemoryPercent: 80,
    targetRequestRate: 100,
    ...overrides,
  });

/** Four replicas whose fleet-average readings put target tracking at `reactive` replicas of 4. */
function fleet(reactiveShare: number, demand?: DemandHistory) {
  return state({
    currentReplicas: 4,
    samples: [
      sample({
        cpuPercent: 70 * reactiveShare,
        memoryPercent: 80 * reactiveShare,
        requestRate: 100 * reactiveShare,
        errorRatePercent: 0,
      }),
    ],
    ...(demand ? { demand } : {}),
  });
}

const basisOf = (decision: ReturnType<typeof decide>) => decision.basis as PredictiveBasis;

describe("predictive strategy", () => {
  it("takes the forecast when it asks for more than target tracking: the current rate times the curve's rise over the warm-up", () => {
    const decision = decide(policy(), fleet(1, dailyDemand(2 * 1440, 1)), NOW);
    const basis = basisOf(decision);
    expect(basis.reactive.recommendedReplicas).toBe(4);
    expect(basis.forecast?.at).toBe(NOW + 300_000);
    expect(basis.forecast?.anchor?.requestRate).toBe(400);
    // The curve rises 500 → 508.7 req/s from 12:00 to 12:05: 400 req/s now → ≈ 407 then.
    const rise = dailyRate(NOW + 300_000, 1) / dailyRate(NOW, 1);
    expect(basis.forecast?.requestRate).toBeGreaterThan(400 * (1 + (rise - 1) / 2));
    expect(basis.forecast?.requestRate).toBeLessThan(400 * (1 + (rise - 1) * 1.5));
    expect(basis.source).toBe("forecast");
    expect(basis.recommendedReplicas).toBe(basis.forecast?.replicas);
    expect(basis.recommendedReplicas).toBe(5);
    expect(decision.explanation).toMatch(
      /forecast 40\d req\/s at 12:05 UTC \(400 req\/s now, the daily curve \+\d(\.\d)?%\) → 5 replicas/,
    );
  });

  it("anchors the forecast on the fleet's rate now: twice the rate, twice the forecast, on the same history", () => {
    const demand = fitDemand(dailyDemand(2 * 1440, 1).perMinute, NOW);
    const once = basisOf(decide(policy(), fleet(1, demand), NOW)).forecast;
    const twice = basisOf(decide(policy(), fleet(2, demand), NOW)).forecast;
    expect(twice?.anchor?.requestRate).toBe(800);
    expect(twice?.requestRate).toBeCloseTo(2 * (once?.requestRate ?? 0), 6);
  });

  it("with no serving replica's reading reads the curve itself, timed from the last full bucket's end, not the history's", () => {
    const noReadings = (demand: DemandHistory) =>
      basisOf(
        decide(
          policy(),
          state({ currentReplicas: 4, unhealthyReplicas: 4, samples: [sample()], demand }),
          NOW,
        ),
      ).forecast;
    // 2,890 minutes end 10 minutes into a bucket: counted from the history's end, 12:05 would be read as 11:55.
    for (const minutes of [2 * 1440, 2 * 1440 + 10]) {
      const forecast = noReadings(dailyDemand(minutes, 1));
      expect(forecast?.anchor).toBeUndefined();
      expect(forecast?.requestRate).toBeCloseTo(dailyRate(NOW + 300_000, 1), -1);
    }
  });

  it("gives the forecast's time in the policy's time zone", () => {
    const inZone = (timeZone: string) =>
      decide(policy({ timeZone }), fleet(1, dailyDemand(2 * 1440, 1)), NOW).explanation;
    const at = NOW + 300_000;
    const clock = (timeZone: string) =>
      new Intl.DateTimeFormat("en-GB", {
        timeZone,
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }).format(at);
    expect(inZone("Asia/Kolkata")).toContain(`req/s at ${clock("Asia/Kolkata")} GMT+5:30 (`);
    expect(inZone("UTC")).toContain(`req/s at ${clock("UTC")} UTC (`);
    expect(clock("Asia/Kolkata")).not.toBe(clock("UTC"));
  });

  it("never scales in on a forecast alone: a low forecast leaves target tracking's count", () => {
    // An hour ahead the falling curve is 20% lower: 368 req/s now (within tolerance of 4 replicas) → ≈ 292.
    const decision = decide(
      policy({ predictive: { warmupSeconds: 3600 } }),
      fleet(0.92, dailyDemand(2 * 1440, -1)),
      NOW,
    );
    const basis = basisOf(decision);
    expect(basis.forecast?.replicas).toBeLessThan(4);
    expect(basis.source).toBe("reactive");
    expect(decision.recommendedReplicas).toBe(4);
    expect(decision.action).toBe("none");
  });

  it("takes the reactive count when the load is above the forecast", () => {
    const decision = decide(policy(), fleet(3, dailyDemand(2 * 1440, -1)), NOW);
    expect(basisOf(decision).source).toBe("reactive");
    expect(basisOf(decision).recommendedReplicas).toBe(12);
  });

  it("under 24 h of history says so and decides as target tracking", () => {
    const short = fleet(0.5, dailyDemand(600, 1));
    const decision = decide(policy(), short, NOW);
    const tracking = decide(policy({ strategy: "targetTracking" }), short, NOW);
    expect(basisOf(decision).forecast).toBeNull();
    expect(basisOf(decision).historyMinutes).toBe(600);
    expect(decision.explanation).toContain("not enough history for a forecast (10 h of 24 h)");
    expect(decision.recommendedReplicas).toBe(tracking.recommendedReplicas);
    expect(decision.desiredReplicas).toBe(tracking.desiredReplicas);
  });

  it("acts as target tracking without any demand history", () => {
    const decision = decide(policy(), fleet(2), NOW);
    expect(basisOf(decision).forecast).toBeNull();
    expect(basisOf(decision).recommendedReplicas).toBe(8);
  });
});

/** The daily sinusoid with every other minute 150 req/s above it and the next 150 below (the bucket mean keeps). */
function swingingDemand(minutes: number): DemandHistory {
  const smooth = dailyDemand(minutes, 1);
  return {
    ...smooth,
    perMinute: Array.from(smooth.perMinute, (rate, i) => rate + (i % 2 === 0 ? 150 : -150)),
  };
}

describe("predictive headroom (predictive.headroomQuantile)", () => {
  it("keeps the last day's per-minute errors: swings inside a bucket widen them around zero", () => {
    const errors = fitDemand(swingingDemand(2 * 1440).perMinute, NOW).recentErrors ?? [];
    expect(errors).toHaveLength(1440);
    expect(errors).toEqual([...errors].sort((a, b) => a - b));
    expect(errorQuantile(errors, 0.9)).toBeGreaterThan(140);
    expect(errorQuantile(errors, 0.5)).toBeLessThan(errorQuantile(errors, 0.9));
  });

  it("adds that quantile of the errors to the forecast before turning it into replicas, and says so", () => {
    const demand = fitDemand(swingingDemand(2 * 1440).perMinute, NOW);
    const bare = basisOf(decide(policy(), fleet(1, demand), NOW)).forecast;
    const decision = decide(policy({ predictive: { headroomQuantile: 0.9 } }), fleet(1, demand), NOW);
    const forecast = basisOf(decision).forecast;
    expect(bare?.headroom).toBeUndefined();
    expect(forecast?.requestRate).toBe(bare?.requestRate);
    expect(forecast?.headroom).toBe(errorQuantile(demand.recentErrors ?? [], 0.9));
    expect(forecast?.replicas).toBe(
      Math.ceil(((forecast?.requestRate ?? 0) + (forecast?.headroom ?? 0)) / 100),
    );
    expect(forecast?.replicas).toBeGreaterThan(bare?.replicas ?? Number.POSITIVE_INFINITY);
    expect(decision.explanation).toMatch(
      /forecast \d{3} req\/s at 12:05 UTC \(400 req\/s now, the daily curve \+\d(\.\d)?%\) \+ p90 headroom \d+(\.\d)? req\/s → \d+ replicas/,
    );
  });

  it("refuses a quantile outside 0.5–0.99, naming the rule", () => {
    const issue = (headroomQuantile: unknown) =>
      scalingPolicySchema.safeParse({ strategy: "predictive", predictive: { headroomQuantile } }).error
        ?.issues[0];
    expect(issue(0.4)).toMatchObject({
      path: ["predictive", "headroomQuantile"],
      message: "must be at least 0.5 (the median error): lower would act under the forecast",
    });
    expect(issue(1)?.message).toBe("must be at most 0.99 (the last day has 1440 minutes of errors)");
    expect(issue("0.9")?.message).toBe("must be a quantile, a number from 0.5 to 0.99");
    expect(issue(0.75)).toBeUndefined();
  });
});

describe("forecastOnly mode", () => {
  it("records the forecast and the would-be scale without acting", () => {
    const decision = decide(policy({ mode: "forecastOnly" }), fleet(1, dailyDemand(2 * 1440, 1)), NOW);
    expect(decision.action).toBe("scale_up");
    expect(executes(decision)).toBe(false);
    expect(decisionOutcome(decision)).toBe("dry_run");
    expect(decision.limits).toContainEqual(expect.objectContaining({ kind: "mode", mode: "forecastOnly" }));
    const forecast = basisOf(decision).forecast;
    expect(forecast?.series).toHaveLength(5);
    expect(forecast?.series[0]?.at).toBe(NOW);
    expect(decision.explanation).toContain("forecast only: not executed");
  });
});
