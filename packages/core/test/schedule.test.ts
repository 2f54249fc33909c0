import { describe, expect, it } from "vitest";
import {
  activeWindows,
  budgetCap,
  decide,
  linearCapacityModel,
  monthBounds,
  monthSpend,
  parsePolicy,
  replicaHours,
  scalingPolicySchema,
  scheduledBounds,
  simulate,
} from "../src/index.ts";
import { scoreSample, state } from "./fixtures.ts";

const BERLIN = "Europe/Berlin";
const at = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;
/** A fleet-average sample of load score `score` taken 5 s before `now`. */
const live = (score: number, now: number) => ({ ...scoreSample(score), at: now - 5000 });

describe("scheduled capacity windows across a DST change", () => {
  const daily = [{ name: "business", cron: "0 9 * * *", durationMinutes: 60, minReplicas: 5 }];

  it("starts a daily 09:00 Berlin window at 08:00 UTC in winter and 07:00 UTC in summer", () => {
    // 2026-03-28 is CET (UTC+1), 2026-03-30 CEST (UTC+2); 2026-10-26 is back on CET.
    expect(activeWindows(daily, BERLIN, at("2026-03-28T08:00:00Z"))).toMatchObject([
      { name: "business", startedAt: at("2026-03-28T08:00:00Z"), endsAt: at("2026-03-28T09:00:00Z") },
    ]);
    expect(activeWindows(daily, BERLIN, at("2026-03-28T07:30:00Z"))).toEqual([]);
    expect(activeWindows(daily, BERLIN, at("2026-03-30T07:00:00Z"))).toMatchObject([
      { startedAt: at("2026-03-30T07:00:00Z"), endsAt: at("2026-03-30T08:00:00Z") },
    ]);
    expect(activeWindows(daily, BERLIN, at("2026-03-30T08:00:00Z"))).toEqual([]);
    expect(activeWindows(daily, BERLIN, at("2026-10-24T07:30:00Z"))).toHaveLength(1);
    expect(activeWindows(daily, BERLIN, at("2026-10-26T07:30:00Z"))).toEqual([]);
    expect(activeWindows(daily, BERLIN, at("2026-10-26T08:30:00Z"))).toHaveLength(1);
  });

  it("starts a 02:30 window on the spring-forward day at the first instant after the gap (03:00 CEST)", () => {
    // 02:00–03:00 local does not exist on 2026-03-29; croner runs the job when the clock jumps to 03:00.
    const night = [{ name: "night", cron: "30 2 * * *", durationMinutes: 30, maxReplicas: 2 }];
    expect(activeWindows(night, BERLIN, at("2026-03-29T01:10:00Z"))).toMatchObject([
      { startedAt: at("2026-03-29T01:00:00Z"), endsAt: at("2026-03-29T01:30:00Z") },
    ]);
    expect(activeWindows(night, BERLIN, at("2026-03-29T01:30:00Z"))).toEqual([]);
    // The next day it is 02:30 CEST = 00:30 UTC.
    expect(activeWindows(night, BERLIN, at("2026-03-30T00:45:00Z"))).toHaveLength(1);
  });

  it("is active from its start exactly, and ends exactly durationMinutes later", () => {
    expect(activeWindows(daily, "UTC", at("2026-01-05T09:00:00Z"))).toHaveLength(1);
    expect(activeWindows(daily, "UTC", at("2026-01-05T09:59:59.999Z"))).toHaveLength(1);
    expect(activeWindows(daily, "UTC", at("2026-01-05T10:00:00Z"))).toEqual([]);
  });
});

describe("overlapping windows", () => {
  const policy = { minReplicas: 1, maxReplicas: 10 };
  const window = (minReplicas?: number, maxReplicas?: number) => ({
    name: "w",
    startedAt: 0,
    endsAt: 1,
    ...(minReplicas === undefined ? {} : { minReplicas }),
    ...(maxReplicas === undefined ? {} : { maxReplicas }),
  });

  it("combine as the max of their mins and the min of their maxes", () => {
    expect(scheduledBounds(policy, [window(3, 8), window(5, 12)])).toEqual({
      minReplicas: 5,
      maxReplicas: 8,
    });
  });
  it("keep the policy's bound where no window sets one", () => {
    expect(scheduledBounds(policy, [window(4)])).toEqual({ minReplicas: 4, maxReplicas: 10 });
    expect(scheduledBounds(policy, [window(undefined, 3)])).toEqual({ minReplicas: 1, maxReplicas: 3 });
  });
  it("let a window's min above the policy's max raise the max", () => {
    expect(scheduledBounds(policy, [window(15)])).toEqual({ minReplicas: 15, maxReplicas: 15 });
  });
  it("let the max win when two windows' bounds cross", () => {
    expect(scheduledBounds(policy, [window(6), window(undefined, 4)])).toEqual({
      minReplicas: 4,
      maxReplicas: 4,
    });
  });
});

describe("decide with schedules", () => {
  const policy = parsePolicy({
    timeZone: BERLIN,
    schedules: [{ name: "business", cron: "0 9 * * 1-5", durationMinutes: 540, minReplicas: 6 }],
  });

  it("raises the count to the window's min and says which window until when", () => {
    const decision = decide(
      policy,
      state({ currentReplicas: 3, samples: [live(50, at("2026-03-30T08:00:00Z"))] }),
      at("2026-03-30T08:00:00Z"),
    );
    expect(decision).toMatchObject({ action: "scale_up", desiredReplicas: 6 });
    expect(decision.limits).toContainEqual({
      kind: "schedule",
      windows: [{ name: "business", endsAt: at("2026-03-30T16:00:00Z") }],
      timeZone: BERLIN,
      minReplicas: 6,
      maxReplicas: 10,
      from: 3,
      to: 6,
    });
    expect(decision.explanation).toContain(
      'scheduled window "business" until 2026-03-30 18:00 Europe/Berlin sets bounds 6–10: raised to 6',
    );
  });

  it("shows an active window that did not bind, and none outside it", () => {
    const inside = decide(
      policy,
      state({ currentReplicas: 7, samples: [live(50, at("2026-03-30T08:00:00Z"))] }),
      at("2026-03-30T08:00:00Z"),
    );
    expect(inside.limits).toContainEqual(expect.objectContaining({ kind: "schedule", from: 7, to: 7 }));
    const outside = decide(
      policy,
      state({ currentReplicas: 3, samples: [live(50, at("2026-03-28T08:00:00Z"))] }),
      at("2026-03-28T08:00:00Z"),
    );
    expect(outside.limits.some((limit) => limit.kind === "schedule")).toBe(false);
    expect(outside.desiredReplicas).toBe(3);
  });
});

describe("schedule and time zone validation", () => {
  it("names the cron field of a bad expression", () => {
    const result = scalingPolicySchema.safeParse({
      schedules: [{ name: "x", cron: "every day", durationMinutes: 10, minReplicas: 2 }],
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ path: ["schedules", 0, "cron"] });
    expect(result.error?.issues[0]?.message).toMatch(/^not a cron expression/);
  });
  it("names timeZone for an unknown zone", () => {
    const result = scalingPolicySchema.safeParse({ timeZone: "Mars/Olympus" });
    expect(result.error?.issues).toEqual([
      expect.objectContaining({
        path: ["timeZone"],
        message: "must be an IANA time zone such as Europe/Berlin",
      }),
    ]);
  });
  it("requires a window to set a bound, and a budget to have a cost", () => {
    expect(
      scalingPolicySchema.safeParse({ schedules: [{ name: "x", cron: "0 9 * * *", durationMinutes: 10 }] })
        .error?.issues[0]?.path,
    ).toEqual(["schedules", 0, "minReplicas"]);
    expect(scalingPolicySchema.safeParse({ monthlyBudget: 100 }).error?.issues[0]).toMatchObject({
      path: ["monthlyBudget"],
      message: "needs costPerReplicaHour",
    });
  });
});

describe("budget", () => {
  it("bounds the month in the proxy's time zone", () => {
    expect(monthBounds(BERLIN, at("2026-03-15T12:00:00Z"))).toEqual({
      start: at("2026-02-28T23:00:00Z"),
      end: at("2026-03-31T22:00:00Z"),
    });
  });

  it("affords what is left of the budget spread over the month's remaining hours", () => {
    // 2026-01-31T00:00Z: 24 h left in January (UTC). 100 replica-hours × 0.5 = 50 spent; 70 left; 70 / (0.5 × 24) = 5.83.
    const cap = budgetCap(
      { costPerReplicaHour: 0.5, monthlyBudget: 120, replicaHoursThisMonth: 100, timeZone: "UTC" },
      at("2026-01-31T00:00:00Z"),
    );
    expect(cap).toEqual({ affordableReplicas: 5, spent: 50, remainingHours: 24 });
  });

  it("affords nothing once the budget is spent", () => {
    const cap = budgetCap(
      { costPerReplicaHour: 1, monthlyBudget: 10, replicaHoursThisMonth: 20, timeZone: "UTC" },
      at("2026-01-31T00:00:00Z"),
    );
    expect(cap.affordableReplicas).toBe(0);
  });

  it("caps a scale-up and says the budget, not the load, set the number", () => {
    const policy = parsePolicy({
      maxReplicas: 20,
      costPerReplicaHour: 0.5,
      monthlyBudget: 120,
      scaleUpStep: 3,
    });
    const now = at("2026-01-31T00:00:00Z");
    const decision = decide(
      policy,
      state({ currentReplicas: 3, samples: [live(90, now)], replicaHoursThisMonth: 100 }),
      now,
    );
    expect(decision).toMatchObject({ action: "scale_up", recommendedReplicas: 6, desiredReplicas: 5 });
    expect(decision.limits).toContainEqual({
      kind: "budget",
      value: 5,
      from: 6,
      to: 5,
      monthlyBudget: 120,
      spent: 50,
      remainingHours: 24,
    });
    expect(decision.explanation).toContain(
      "the budget, not the load, set 5: 50 of 120 spent this month affords 5 replicas for the 24h left",
    );
  });

  it("over budget holds the fleet rather than scaling it in, and never blocks a scale-down", () => {
    const policy = parsePolicy({ maxReplicas: 20, costPerReplicaHour: 1, monthlyBudget: 10 });
    const now = at("2026-01-31T00:00:00Z");
    const up = decide(
      policy,
      state({ currentReplicas: 3, samples: [live(90, now)], replicaHoursThisMonth: 50 }),
      now,
    );
    expect(up).toMatchObject({ action: "none", desiredReplicas: 3 });
    expect(up.limits).toContainEqual(expect.objectContaining({ kind: "budget", value: 0, from: 4, to: 3 }));
    const down = decide(
      policy,
      state({ currentReplicas: 3, samples: [live(10, now)], replicaHoursThisMonth: 50 }),
      now,
    );
    expect(down).toMatchObject({ action: "scale_down", desiredReplicas: 2 });
  });

  it("projects the month's spend at the current count", () => {
    const spend = monthSpend(
      { costPerReplicaHour: 0.5, monthlyBudget: 120, timeZone: "UTC" },
      100,
      4,
      at("2026-01-31T00:00:00Z"),
    );
    expect(spend).toEqual({
      monthStart: at("2026-01-01T00:00:00Z"),
      monthEnd: at("2026-02-01T00:00:00Z"),
      spent: 50,
      projected: 50 + 4 * 0.5 * 24,
      monthlyBudget: 120,
    });
  });

  it("sums replica-hours of a step function of counts within the interval", () => {
    const from = 0;
    const changes = [
      { at: -HOUR, replicas: 2 },
      { at: HOUR, replicas: 4 },
      { at: 3 * HOUR, replicas: 1 },
      { at: 10 * HOUR, replicas: 9 },
    ];
    // 2 for 1 h, 4 for 2 h, 1 for 1 h (to 4 h) = 2 + 8 + 1.
    expect(replicaHours(1, changes, from, 4 * HOUR)).toBe(11);
    expect(replicaHours(3, [], 0, 2 * HOUR)).toBe(6);
  });
});

describe("the simulator honours schedules and the budget through decide", () => {
  const capacity = linearCapacityModel({ perReplicaRps: 10 });
  const start = at("2026-03-30T06:00:00Z"); // 08:00 in Berlin (CEST)
  const steady = Array.from({ length: 240 }, () => 10 * 60); // 10 req/s for 4 h at 60 s steps: 1-2 replicas' load

  it("raises the fleet to a window's min while it is active, in the policy's time zone", () => {
    const policy = parsePolicy({
      strategy: "targetTracking",
      minReplicas: 1,
      maxReplicas: 20,
      timeZone: BERLIN,
      schedules: [{ name: "nine-to-ten", cron: "0 9 * * *", durationMinutes: 60, minReplicas: 8 }],
    });
    const result = simulate({
      policy,
      trace: steady,
      stepSeconds: 60,
      capacity,
      initialReplicas: 2,
      startAt: start,
    });
    const countAt = (iso: string) => result.steps.find((step) => step.at === at(iso))!.desiredReplicas;
    expect(countAt("2026-03-30T06:30:00Z")).toBeLessThan(8);
    expect(countAt("2026-03-30T07:30:00Z")).toBe(8);
    expect(countAt("2026-03-30T09:30:00Z")).toBeLessThan(8);
  });

  it("caps scale-up at what its own simulated replica-hours leave of the budget", () => {
    // 1 per replica-hour, 1,000 for the month: from 06:00 on 2026-03-30 about 42 h are left, so 23 replicas afford it
    // at the start and the spend grows with the simulated fleet.
    const policy = parsePolicy({
      strategy: "targetTracking",
      minReplicas: 1,
      maxReplicas: 100,
      costPerReplicaHour: 1,
      monthlyBudget: 1_000,
    });
    const heavy = Array.from({ length: 120 }, () => 1_000 * 60); // 1,000 req/s: ~125 replicas' load
    const result = simulate({
      policy,
      trace: heavy,
      stepSeconds: 60,
      capacity,
      initialReplicas: 2,
      startAt: start,
    });
    const peak = Math.max(...result.steps.map((step) => step.desiredReplicas));
    expect(peak).toBeLessThanOrEqual(23);
    expect(peak).toBeGreaterThan(2);
    const budgeted = result.steps.find((step) =>
      step.decision?.limits.some((limit) => limit.kind === "budget"),
    );
    expect(budgeted?.decision?.explanation).toMatch(/the budget, not the load, set \d+/);
  });
});
