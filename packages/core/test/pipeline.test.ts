import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY,
  decide,
  decisionOutcome,
  executes,
  missedIntervals,
  parsePolicy,
} from "../src/index.ts";
import { NOW, scoreSample, seconds, state } from "./fixtures.ts";

/** The limits after the strategy's: fallback, in flight and mode are decided in core like every other limit. */
describe("missed intervals (fallback's clock)", () => {
  const policy = parsePolicy({ metricsMaxAgeSeconds: 60 });
  const at = (now: number, lastSampleAt: number | null, createdAt = 0) =>
    missedIntervals(policy, state({ lastSampleAt, createdAt, reconcileIntervalMs: 10_000 }), now);

  it("counts missed intervals from the moment the newest sample went stale", () => {
    expect(at(59_999, 0)).toBe(0);
    expect(at(60_000, 0)).toBe(1);
    expect(at(89_999, 0)).toBe(3);
    expect(at(90_000, 0)).toBe(4);
  });

  it("counts from the proxy's registration when it never reported", () => {
    expect(at(90_000, null, 50_000)).toBe(0);
    expect(at(110_000, null, 50_000)).toBe(1);
  });
});

describe("fallback", () => {
  const policy = parsePolicy({
    minReplicas: 2,
    maxReplicas: 5,
    fallback: { failureThreshold: 2, replicas: 9 },
  });
  const stale = (missedSeconds: number) =>
    state({ samples: [], lastSampleAt: NOW - seconds(policy.metricsMaxAgeSeconds + missedSeconds) });

  it("holds without live metrics until failureThreshold intervals are missed", () => {
    const decision = decide(policy, stale(5), NOW);
    expect(decision.limits.map((limit) => limit.kind)).toEqual(["noMetrics"]);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 3 });
  });

  it("goes to fallback.replicas within min and max once the threshold is reached", () => {
    const decision = decide(policy, stale(15), NOW);
    expect(decision.limits).toContainEqual({
      kind: "fallback",
      missedIntervals: 2,
      failureThreshold: 2,
      replicas: 9,
      from: 3,
      to: 5,
    });
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 5 });
    expect(decisionOutcome(decision)).toBe("scaled");
  });

  it("holds at the current count when the policy names no fallback replicas", () => {
    const hold = parsePolicy({ fallback: { failureThreshold: 1 } });
    const decision = decide(hold, state({ samples: [], lastSampleAt: NOW - seconds(600) }), NOW);
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 3 });
    expect(decision.limits.at(-1)).toMatchObject({ kind: "fallback", from: 3, to: 3 });
    expect(decisionOutcome(decision)).toBe("fallback");
  });

  it("never applies while any sample is live", () => {
    const decision = decide(policy, state({ samples: [scoreSample(50)], lastSampleAt: NOW - 5_000 }), NOW);
    expect(decision.limits.some((limit) => limit.kind === "fallback")).toBe(false);
  });

  it("is capped by the owner's tier like any other count", () => {
    const decision = decide(policy, { ...stale(15), caps: { tierMaxReplicas: 4 } }, NOW);
    expect(decision.limits.map((limit) => limit.kind)).toEqual(["noMetrics", "fallback", "tierCap"]);
    expect(decision.desiredReplicas).toBe(4);
  });
});

describe("a scale in flight", () => {
  const activeEvent = { id: "e-1", status: "in_progress" as const, fromReplicas: 2, toReplicas: 3 };

  it("holds a decision that would scale, naming the event", () => {
    const decision = decide(DEFAULT_POLICY, state({ samples: [scoreSample(95)], activeEvent }), NOW);
    expect(decision.recommendedReplicas).toBe(4);
    expect(decision.limits.at(-1)).toEqual({
      kind: "inFlight",
      eventId: "e-1",
      toReplicas: 3,
      from: 4,
      to: 3,
    });
    expect(decision).toMatchObject({ action: "none", desiredReplicas: 3 });
    expect(decision.explanation).toContain("already in flight (event e-1)");
    expect(decisionOutcome(decision)).toBe("skipped_in_flight");
    expect(executes(decision)).toBe(false);
  });

  it("adds nothing when the decision would not scale anyway", () => {
    const decision = decide(DEFAULT_POLICY, state({ samples: [scoreSample(50)], activeEvent }), NOW);
    expect(decision.limits).toEqual([]);
    expect(decisionOutcome(decision)).toBe("held");
  });
});

describe("the policy's mode", () => {
  const load = state({ samples: [scoreSample(95)] });

  it("auto scales and is executed", () => {
    const decision = decide(DEFAULT_POLICY, load, NOW);
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 4 });
    expect(executes(decision)).toBe(true);
    expect(decisionOutcome(decision)).toBe("scaled");
  });

  it("dryRun keeps the count it would scale to and is not executed", () => {
    const decision = decide(parsePolicy({ mode: "dryRun" }), load, NOW);
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 4 });
    expect(decision.limits.at(-1)).toEqual({ kind: "mode", mode: "dryRun", from: 4, to: 4 });
    expect(decision.explanation).toContain("dry run: not executed");
    expect(executes(decision)).toBe(false);
    expect(decisionOutcome(decision)).toBe("dry_run");
  });

  it("off holds the current count and says what it would have done", () => {
    const decision = decide(parsePolicy({ mode: "off" }), load, NOW);
    expect(decision).toMatchObject({ action: "none", recommendedReplicas: 4, desiredReplicas: 3 });
    expect(decision.limits.at(-1)).toEqual({ kind: "mode", mode: "off", from: 4, to: 3 });
    expect(decision.explanation).toContain("paused (mode off): held at 3 instead of 4");
    expect(decisionOutcome(decision)).toBe("paused");
  });

  it("adds nothing when nothing would change", () => {
    const decision = decide(parsePolicy({ mode: "off" }), state({ samples: [scoreSample(50)] }), NOW);
    expect(decision.limits).toEqual([]);
  });
});
