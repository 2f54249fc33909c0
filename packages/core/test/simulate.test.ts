/**
 * The simulator (issue 12): the trace format, the chain it models (warm-up, loop, metric delay), the oracle,
 * identity with `decide`, and a property over random policies and traces.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compare,
  DEFAULT_SIMULATION_START,
  decide,
  HPA_LIKE_LOOP,
  linearCapacityModel,
  oracle,
  parsePolicy,
  parseTrace,
  type SimulationResult,
  STRATEGY_NAMES,
  simulate,
  TraceFormatError,
} from "../src/index.ts";

const START = DEFAULT_SIMULATION_START;
/** 10 req/s per replica; the SLO (100 ms on 20 ms service) holds up to 8 req/s per replica. */
const capacity = linearCapacityModel({ perReplicaRps: 10 });
/** Target tracking on CPU alone (memory and request rate out of reach). */
const cpuTracking = (targetCpuPercent: number, extra: Record<string, unknown> = {}) =>
  parsePolicy({
    strategy: "targetTracking",
    targetCpuPercent,
    targetMemoryPercent: 100,
    targetRequestRate: 1e12,
    minReplicas: 1,
    maxReplicas: 20,
    ...extra,
  });

/** Counts per step for `rates` req/s held `steps` steps each. */
function stepTrace(stepSeconds: number, ...segments: Array<[rate: number, steps: number]>): number[] {
  return segments.flatMap(([rate, steps]) => Array.from({ length: steps }, () => rate * stepSeconds));
}

/** Seconds after the start of the first executed scale-up at or after `fromSeconds`. */
function firstScaleUpAfter(result: SimulationResult, fromSeconds: number): number {
  const found = result.evaluations!.find(
    (e) => e.at >= START + fromSeconds * 1000 && e.decision.action === "scale_up",
  );
  if (found === undefined) throw new Error("no scale-up");
  return (found.at - START) / 1000;
}

describe("parseTrace: the ../shared/traces format (t_seconds,requests; a count per step)", () => {
  it("reads the start, the step and the counts", () => {
    const trace = parseTrace("t_seconds,requests\n0,42\n60,61\n120,57\n");
    expect(trace).toEqual({ startSeconds: 0, stepSeconds: 60, requests: [42, 61, 57] });
  });

  it("refuses unevenly spaced rows, naming the line", () => {
    expect(() => parseTrace("t_seconds,requests\n0,1\n60,2\n180,3\n")).toThrow(TraceFormatError);
    expect(() => parseTrace("t_seconds,requests\n0,1\n60,2\n180,3\n")).toThrow(
      /line 4: rows must be evenly spaced/,
    );
  });

  it("refuses a wrong header and a negative count", () => {
    expect(() => parseTrace("time,count\n0,1\n")).toThrow(/line 1: the header/);
    expect(() => parseTrace("t_seconds,requests\n0,1\n60,-2\n")).toThrow(/line 3: requests must be a count/);
  });
});

describe("simulate: identity with decide() in the small", () => {
  // μ = 10 req/s, cpu = 5 + 95·ρ, memory = 30 + 2·(req/s served). Rates 10, 20, 20, 5 req/s on 2 replicas.
  const policy = cpuTracking(50, { maxReplicas: 10 });
  const result = simulate({
    policy,
    trace: [600, 1200, 1200, 300],
    stepSeconds: 60,
    capacity,
    initialReplicas: 2,
    keepStates: true,
  });
  const evaluations = result.evaluations!;

  it("decides on each pushed sample (t = 60, 120, 180 s), each decision equal to decide() on its state", () => {
    expect(evaluations.map((e) => (e.at - START) / 1000)).toEqual([60, 120, 180]);
    for (const e of evaluations) expect(decide(policy, e.state, e.at)).toEqual(e.decision);
  });

  it("builds the state the control loop would: the fleet-average sample of the interval just ended", () => {
    // t = 120 s: 20 req/s over 2 replicas is ρ = 1: cpu 100%, memory 30 + 2·10 = 50%, latency at its cap.
    expect(evaluations[1]!.state).toEqual({
      currentReplicas: 2,
      unhealthyReplicas: 0,
      samples: [
        {
          at: START + 120_000,
          cpuPercent: 100,
          memoryPercent: 50,
          requestRate: 10,
          avgLatencyMs: 2000,
          errorRatePercent: 0,
        },
      ],
      recentEvents: [],
      recommendations: [{ at: START + 60_000, replicas: 2 }],
      lastSampleAt: START + 120_000,
      createdAt: START,
      activeEvent: null,
      reconcileIntervalMs: 10_000,
    });
    expect(evaluations[1]!.decision.desiredReplicas).toBe(4);
  });

  it("carries the scale into the next state: 4 replicas, the event, both recommendations", () => {
    const state = evaluations[2]!.state;
    expect(state.currentReplicas).toBe(4);
    expect(state.recentEvents).toEqual([{ at: START + 120_000, fromReplicas: 2, toReplicas: 4 }]);
    expect(state.recommendations).toEqual([
      { at: START + 60_000, replicas: 2 },
      { at: START + 120_000, replicas: 4 },
    ]);
    // 20 req/s over 4 replicas: ρ = 0.5, cpu 52.5% — within the 10% tolerance of 50%.
    expect(state.samples[0]!.cpuPercent).toBeCloseTo(52.5, 9);
    expect(evaluations[2]!.decision.action).toBe("none");
  });

  it("reports per step the demand, the supply, the replicas and the step's decision", () => {
    const [first, second, third] = result.steps;
    expect(first).toMatchObject({ demandRps: 10, supplyRps: 20, servingReplicas: 2, decision: null });
    // A decision at t belongs to the step that starts at t: the one at 120 s is the third step's.
    expect(second).toMatchObject({ demandRps: 20, desiredReplicas: 2, servingReplicas: 2, supplyRps: 20 });
    expect(second!.decision?.desiredReplicas).toBe(2);
    expect(third!.decision?.desiredReplicas).toBe(4);
    expect(third).toMatchObject({ desiredReplicas: 4, servingReplicas: 4, supplyRps: 40 });
    expect(result.capacity).toMatch(/^linear capacity: 10 req\/s per replica/);
  });
});

describe("simulate: which decisions the steps keep", () => {
  const common = {
    policy: cpuTracking(50, { maxReplicas: 10 }),
    trace: [600, 1200, 1200, 300],
    stepSeconds: 60,
    capacity,
    initialReplicas: 2,
  };

  it("keepDecisions scaling keeps only the decision that scaled; none keeps no decision but the same numbers", () => {
    const every = simulate(common);
    const scaling = simulate({ ...common, keepDecisions: "scaling" });
    const none = simulate({ ...common, keepDecisions: "none" });
    expect(every.steps.map((s) => s.decision?.action ?? null)).toEqual([null, "none", "scale_up", "none"]);
    expect(scaling.steps.map((s) => s.decision?.action ?? null)).toEqual([null, null, "scale_up", null]);
    expect(none.steps.every((s) => s.decision === null)).toBe(true);
    expect(none.metrics).toEqual(every.metrics);
    expect(none.steps.map((s) => s.decisions)).toEqual([0, 1, 1, 1]);
  });

  it("a step's decision, made again from what the run kept when it is read, equals the one the run made", () => {
    // Several decisions a step (HPA's 15 s sync), warming replicas (health), stabilization, a capacity window
    // and a budget that binds: every input a kept decision is made from.
    const policy = cpuTracking(50, {
      maxReplicas: 10,
      timeZone: "Europe/Berlin",
      schedules: [{ name: "night", cron: "0 1 * * *", durationMinutes: 120, minReplicas: 4 }],
      // ≈ 5 replicas over the month's remaining hours: it holds the fleet under what the load asks.
      costPerReplicaHour: 1,
      monthlyBudget: 4000,
    });
    const run = simulate({
      policy,
      trace: stepTrace(60, [20, 60], [80, 120], [5, 120], [60, 180]),
      stepSeconds: 60,
      capacity,
      initialReplicas: 2,
      warmupSeconds: 90,
      loop: HPA_LIKE_LOOP,
      keepStates: true,
    });
    const made = run.evaluations!;
    let compared = 0;
    for (const step of run.steps) {
      const last = made.findLast((e) => e.at >= step.at && e.at < step.at + 60_000);
      expect(step.decision).toEqual(last?.decision ?? null);
      if (last !== undefined) compared++;
    }
    const kinds = new Set(run.steps.flatMap((s) => s.decision?.limits.map((limit) => limit.kind) ?? []));
    expect([...kinds]).toEqual(expect.arrayContaining(["health", "stabilization", "schedule", "budget"]));
    expect(compared).toBe(run.steps.length);
    // Read once, the decision is the same object; written out, the step carries it.
    const step = run.steps[100]!;
    expect(step.decision).toBe(step.decision);
    expect(JSON.parse(JSON.stringify(step)).decision).toEqual(JSON.parse(JSON.stringify(step.decision)));
  });
});

describe("simulate: the chain it models", () => {
  it("warm-up delays supply: a replica ordered at t serves from t + warm-up, not before", () => {
    const trace = stepTrace(60, [10, 3], [40, 10]);
    const policy = cpuTracking(60);
    const run = (warmupSeconds: number) =>
      simulate({
        policy,
        trace,
        stepSeconds: 60,
        capacity,
        initialReplicas: 2,
        warmupSeconds,
        keepStates: true,
      });
    const cold = run(0);
    const warm = run(180);
    const orderedAt = firstScaleUpAfter(warm, 0);
    expect(firstScaleUpAfter(cold, 0)).toBe(orderedAt);
    const step = (r: SimulationResult, seconds: number) => r.steps[seconds / 60]!;
    // Without warm-up the replicas serve in the step after the order; with 180 s they only serve 3 steps later.
    expect(step(cold, orderedAt).servingReplicas).toBeGreaterThan(2);
    for (const s of [0, 60, 120]) expect(step(warm, orderedAt + s).servingReplicas).toBe(2);
    // Still warming at the end of the first two of those steps; ready exactly at the third's end.
    expect(step(warm, orderedAt).warmingReplicas).toBeGreaterThan(0);
    expect(step(warm, orderedAt + 60).warmingReplicas).toBeGreaterThan(0);
    expect(step(warm, orderedAt + 180).servingReplicas).toBeGreaterThan(2);
    // The next decision sees the warming replicas as not serving (unhealthy), as an actuator would report them.
    const during = warm.evaluations!.find((e) => e.at === START + (orderedAt + 60) * 1000)!;
    expect(during.state.unhealthyReplicas).toBe(during.state.currentReplicas - 2);
    expect(during.state.unhealthyReplicas).toBeGreaterThan(0);
    expect(warm.metrics.underProvisioningTimeshare).toBeGreaterThan(cold.metrics.underProvisioningTimeshare);
  });

  it("push-driven reacts sooner than HPA's 15 s sync on a step increase (measured, not claimed)", () => {
    // 5 s steps: 10 req/s for a minute, then 60 req/s. Push: a sample every 5 s, evaluated on arrival.
    const trace = stepTrace(5, [10, 12], [60, 24]);
    const policy = cpuTracking(60);
    const common = { policy, trace, stepSeconds: 5, capacity, initialReplicas: 2, keepStates: true };
    const push = simulate({ ...common, loop: { kind: "push", reportIntervalSeconds: 5 } });
    const sync = simulate({ ...common, loop: HPA_LIKE_LOOP });
    const pushReaction = firstScaleUpAfter(push, 60) - 60;
    const syncReaction = firstScaleUpAfter(sync, 60) - 60;
    expect(pushReaction).toBe(5);
    expect(syncReaction).toBeGreaterThan(pushReaction);
    expect(push.metrics.unnormalized.underProvisionedMinutes).toBeLessThan(
      sync.metrics.unnormalized.underProvisionedMinutes,
    );
  });

  it("a sync loop decides on its period only, whatever the samples' rhythm", () => {
    const trace = stepTrace(5, [10, 12], [60, 12]);
    const result = simulate({
      policy: cpuTracking(60),
      trace,
      stepSeconds: 5,
      capacity,
      initialReplicas: 2,
      loop: { kind: "sync", periodSeconds: 15, reportIntervalSeconds: 5 },
      keepStates: true,
    });
    const times = result.evaluations!.map((e) => (e.at - START) / 1000);
    expect(times).toEqual(Array.from({ length: 7 }, (_, i) => 15 * (i + 1)));
    expect(result.evaluations!.every((e) => e.trigger === "sync")).toBe(true);
  });

  it("a metric delay postpones the reaction by the delay", () => {
    const trace = stepTrace(5, [10, 12], [60, 24]);
    const common = {
      policy: cpuTracking(60),
      trace,
      stepSeconds: 5,
      capacity,
      initialReplicas: 2,
      keepStates: true,
    };
    const prompt = simulate({ ...common, loop: { kind: "push", reportIntervalSeconds: 5 } });
    const late = simulate({
      ...common,
      loop: { kind: "push", reportIntervalSeconds: 5, metricDelaySeconds: 20 },
    });
    expect(firstScaleUpAfter(late, 60) - firstScaleUpAfter(prompt, 60)).toBe(20);
  });

  it("drain time bills removed replicas without counting them as supply", () => {
    const trace = stepTrace(60, [60, 3], [5, 12]);
    const common = { policy: cpuTracking(60), trace, stepSeconds: 60, capacity, initialReplicas: 10 };
    const quick = simulate(common);
    const drained = simulate({ ...common, drainSeconds: 300 });
    expect(drained.steps.map((s) => s.servingReplicas)).toEqual(quick.steps.map((s) => s.servingReplicas));
    expect(drained.metrics.replicaHours).toBeGreaterThan(quick.metrics.replicaHours);
  });
});

describe("oracle", () => {
  it("never under-provisions a step trace, warm-up included (it starts replicas warm-up ahead)", () => {
    const trace = stepTrace(60, [16, 5], [80, 5], [8, 5], [120, 5]);
    const result = oracle({ trace, stepSeconds: 60, capacity, warmupSeconds: 150, drainSeconds: 30 });
    for (const step of result.steps) expect(step.servingReplicas).toBeGreaterThanOrEqual(step.demandReplicas);
    expect(result.metrics.underProvisioningTimeshare).toBe(0);
    expect(result.metrics.sloViolationMinutes).toBe(0);
    // 150 s of warm-up is 3 steps of 60 s: the 15 replicas of minute 15 are paid for from minute 12.
    expect(result.steps[12]!.billedReplicas).toBe(15);
    expect(result.steps[11]!.billedReplicas).toBe(1);
  });

  it("compare reports every policy, HPA's defaults and the oracle, each with its distance from the oracle", () => {
    const trace = stepTrace(60, [16, 10], [80, 20], [8, 20]);
    const comparison = compare({
      trace,
      stepSeconds: 60,
      capacity,
      initialReplicas: 2,
      warmupSeconds: 60,
      candidates: [{ name: "cpu 60%", policy: cpuTracking(60) }],
    });
    expect(comparison.capacity).toBe(capacity.description);
    expect(comparison.rows.map((row) => [row.name, row.kind])).toEqual([
      ["cpu 60%", "policy"],
      ["hpa-defaults", "hpa"],
      ["oracle", "oracle"],
    ]);
    const [policy, , best] = comparison.rows;
    expect(best!.fromOracle.replicaHours).toBe(0);
    expect(best!.fromOracle.replicaHoursRatio).toBe(1);
    expect(policy!.fromOracle.underProvisioningTimeshare).toBe(policy!.metrics.underProvisioningTimeshare);
    expect(policy!.fromOracle.underProvisioningTimeshare).toBeGreaterThan(0);
    expect(policy!.fromHpa).toBeDefined();
  });
});

describe("simulate: property", () => {
  const scenario = fc.record({
    strategy: fc.constantFrom(...STRATEGY_NAMES),
    minReplicas: fc.integer({ min: 0, max: 3 }),
    span: fc.integer({ min: 0, max: 8 }),
    targetCpuPercent: fc.integer({ min: 10, max: 95 }),
    scaleDownWindow: fc.integer({ min: 0, max: 600 }),
    counts: fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 40 }),
    stepSeconds: fc.constantFrom(1, 15, 60),
    sync: fc.boolean(),
    reportIntervalSeconds: fc.constantFrom(5, 15, 60),
    metricDelaySeconds: fc.integer({ min: 0, max: 120 }),
    warmupSeconds: fc.integer({ min: 0, max: 300 }),
    drainSeconds: fc.integer({ min: 0, max: 120 }),
    initialOffset: fc.integer({ min: 0, max: 8 }),
    perReplicaRps: fc.integer({ min: 1, max: 500 }),
  });

  it("never throws, and the replicas stay within the policy's min/max", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const maxReplicas = Math.max(1, s.minReplicas + s.span);
        const policy = parsePolicy({
          strategy: s.strategy,
          minReplicas: s.minReplicas,
          maxReplicas,
          targetCpuPercent: s.targetCpuPercent,
          behavior: { scaleDown: { stabilizationWindowSeconds: s.scaleDownWindow } },
        });
        const initialReplicas = Math.min(maxReplicas, s.minReplicas + s.initialOffset);
        const result = simulate({
          policy,
          trace: s.counts,
          stepSeconds: s.stepSeconds,
          capacity: linearCapacityModel({ perReplicaRps: s.perReplicaRps }),
          initialReplicas,
          loop: s.sync
            ? {
                kind: "sync",
                reportIntervalSeconds: s.reportIntervalSeconds,
                metricDelaySeconds: s.metricDelaySeconds,
              }
            : {
                kind: "push",
                reportIntervalSeconds: s.reportIntervalSeconds,
                metricDelaySeconds: s.metricDelaySeconds,
              },
          warmupSeconds: s.warmupSeconds,
          drainSeconds: s.drainSeconds,
        });
        expect(result.steps).toHaveLength(s.counts.length);
        for (const step of result.steps) {
          expect(step.desiredReplicas).toBeGreaterThanOrEqual(policy.minReplicas);
          expect(step.desiredReplicas).toBeLessThanOrEqual(policy.maxReplicas);
          expect(step.servingReplicas).toBeLessThanOrEqual(policy.maxReplicas + 1e-9);
          expect(Number.isFinite(step.billedReplicas)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});
