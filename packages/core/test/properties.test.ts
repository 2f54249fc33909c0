import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  computeLoadScore,
  DEFAULT_RECONCILE_SECONDS,
  decide,
  decisionSchema,
  historySecondsFor,
  MAX_POLICY_HISTORY_SECONDS,
  type MetricSample,
  type ObservedState,
  POLICY_DURATION_LIMITS,
  POLICY_MODES,
  parsePolicy,
  parseStoredPolicy,
  type ScalingPolicy,
  STRATEGY_NAMES,
} from "../src/index.ts";
import { NOW, seconds } from "./fixtures.ts";

const percent = fc.double({ min: 0, max: 100, noNaN: true });

const metricsArb = fc.record({
  cpuPercent: percent,
  memoryPercent: percent,
  requestRate: fc.double({ min: 0, max: 1e7, noNaN: true }),
  errorRatePercent: percent,
});

const policyArb = fc
  .record({
    minReplicas: fc.integer({ min: 0, max: 5 }),
    span: fc.integer({ min: 0, max: 20 }),
    scaleDownThreshold: fc.integer({ min: 1, max: 60 }),
    thresholdGap: fc.integer({ min: 1, max: 40 }),
    scaleUpCooldownSeconds: fc.integer({ min: 0, max: 600 }),
    scaleDownCooldownSeconds: fc.integer({ min: 0, max: 600 }),
    scaleUpStep: fc.integer({ min: 1, max: 3 }),
    scaleDownStep: fc.integer({ min: 1, max: 3 }),
    strategy: fc.constantFrom(...STRATEGY_NAMES),
    targetCpuPercent: fc.integer({ min: 10, max: 100 }),
    upWindow: fc.integer({ min: 0, max: 600 }),
    downWindow: fc.integer({ min: 0, max: 600 }),
    upSelect: fc.constantFrom("Max", "Min", "Disabled"),
    downSelect: fc.constantFrom("Max", "Min", "Disabled"),
    upPolicies: fc.array(
      fc.record({
        type: fc.constantFrom("Pods", "Percent"),
        value: fc.integer({ min: 1, max: 200 }),
        periodSeconds: fc.integer({ min: 1, max: 300 }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    downPolicies: fc.array(
      fc.record({
        type: fc.constantFrom("Pods", "Percent"),
        value: fc.integer({ min: 1, max: 100 }),
        periodSeconds: fc.integer({ min: 1, max: 300 }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    tolerance: fc.double({ min: 0, max: 0.5, noNaN: true }),
  })
  .map((p) =>
    parsePolicy({
      minReplicas: p.minReplicas,
      maxReplicas: Math.max(1, p.minReplicas + p.span),
      scaleDownThreshold: p.scaleDownThreshold,
      scaleUpThreshold: Math.min(100, p.scaleDownThreshold + p.thresholdGap),
      scaleUpCooldownSeconds: p.scaleUpCooldownSeconds,
      scaleDownCooldownSeconds: p.scaleDownCooldownSeconds,
      scaleUpStep: p.scaleUpStep,
      scaleDownStep: p.scaleDownStep,
      strategy: p.strategy,
      targetCpuPercent: p.targetCpuPercent,
      behavior: {
        scaleUp: {
          stabilizationWindowSeconds: p.upWindow,
          selectPolicy: p.upSelect,
          policies: p.upPolicies,
          tolerance: p.tolerance,
        },
        scaleDown: {
          stabilizationWindowSeconds: p.downWindow,
          selectPolicy: p.downSelect,
          policies: p.downPolicies,
          tolerance: p.tolerance,
        },
      },
    }),
  );

const sampleArb: fc.Arbitrary<MetricSample> = fc.record({
  instanceId: fc.option(fc.constantFrom("a", "b", "c", "d", "e", "f"), { nil: undefined }),
  at: fc.integer({ min: NOW - seconds(120), max: NOW }),
  cpuPercent: percent,
  memoryPercent: percent,
  requestRate: fc.double({ min: 0, max: 5000, noNaN: true }),
  avgLatencyMs: fc.double({ min: 0, max: 2000, noNaN: true }),
  errorRatePercent: percent,
});

const stateArb: fc.Arbitrary<ObservedState> = fc
  .record({
    currentReplicas: fc.integer({ min: 0, max: 30 }),
    unhealthyShare: fc.double({ min: 0, max: 1, noNaN: true }),
    samples: fc.array(sampleArb, { maxLength: 12 }),
    recentEvents: fc.array(
      fc.record({
        at: fc.integer({ min: NOW - seconds(900), max: NOW }),
        fromReplicas: fc.integer({ min: 0, max: 30 }),
        toReplicas: fc.integer({ min: 0, max: 30 }),
      }),
      { maxLength: 6 },
    ),
    recommendations: fc.array(
      fc.record({
        at: fc.integer({ min: NOW - seconds(900), max: NOW }),
        replicas: fc.integer({ min: 0, max: 40 }),
      }),
      { maxLength: 20 },
    ),
    caps: fc.option(
      fc.record({
        tierMaxReplicas: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
        budgetMaxReplicas: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
      }),
      { nil: undefined },
    ),
  })
  .map(({ unhealthyShare, ...s }) => ({
    ...s,
    unhealthyReplicas: Math.floor(s.currentReplicas * unhealthyShare),
    lastSampleAt: s.samples.length === 0 ? null : Math.max(...s.samples.map((sample) => sample.at)),
    createdAt: NOW - seconds(3_600),
    activeEvent: null,
    reconcileIntervalMs: seconds(DEFAULT_RECONCILE_SECONDS),
  }));

/** A state whose count is within the policy's bounds and whose caps never bind. */
const inRange = (policy: ScalingPolicy, state: ObservedState): ObservedState => ({
  ...state,
  currentReplicas: Math.min(Math.max(state.currentReplicas, policy.minReplicas), policy.maxReplicas),
  unhealthyReplicas: Math.min(state.unhealthyReplicas, policy.minReplicas),
  caps: undefined,
});

/**
 * The policy with minReplicas ≥ 1: scale to zero (bounds reaching 0) goes past the strategy, cooldowns and rate
 * policies by design, and its own property below covers it.
 */
const keepsOne = (policy: ScalingPolicy): ScalingPolicy =>
  policy.minReplicas === 0 ? { ...policy, minReplicas: 1 } : policy;

function lastEventAt(state: ObservedState): number | undefined {
  return state.recentEvents.length === 0 ? undefined : Math.max(...state.recentEvents.map((e) => e.at));
}

describe("engine invariants (fast-check)", () => {
  it("the load score is always within [0, 100]", () => {
    fc.assert(
      fc.property(
        metricsArb,
        fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
        (metrics, targetRequestRate) => {
          const score = computeLoadScore(metrics, { targetRequestRate });
          expect(score).toBeGreaterThanOrEqual(0);
          expect(score).toBeLessThanOrEqual(100);
        },
      ),
    );
  });

  it("desired replicas lie in [minReplicas, maxReplicas], lowered only by a cap below them", () => {
    fc.assert(
      fc.property(policyArb, stateArb, (policy, state) => {
        const cap = Math.min(
          state.caps?.tierMaxReplicas ?? Infinity,
          state.caps?.budgetMaxReplicas ?? Infinity,
        );
        const { desiredReplicas } = decide(policy, state, NOW);
        expect(desiredReplicas).toBeLessThanOrEqual(Math.min(policy.maxReplicas, cap));
        expect(desiredReplicas).toBeGreaterThanOrEqual(Math.min(policy.minReplicas, cap));
        expect(Number.isInteger(desiredReplicas)).toBe(true);
      }),
    );
  });

  it("every decision matches decisionSchema, field for field (the API's output schema of a decision)", () => {
    fc.assert(
      fc.property(policyArb, stateArb, fc.constantFrom(...POLICY_MODES), (policy, state, mode) => {
        const decision = decide({ ...policy, mode }, state, NOW);
        // parse drops keys the schema does not name, so equality also proves every field is described.
        expect(decisionSchema.parse(decision)).toEqual(decision);
      }),
    );
  });

  it("never moves past the strategy's recommendation, nor against it (count within bounds, no caps)", () => {
    fc.assert(
      fc.property(policyArb.map(keepsOne), stateArb, (policy, raw) => {
        const state = inRange(policy, raw);
        const d = decide(policy, state, NOW);
        const low = Math.min(d.currentReplicas, d.recommendedReplicas);
        const high = Math.max(d.currentReplicas, d.recommendedReplicas);
        expect(d.desiredReplicas).toBeGreaterThanOrEqual(Math.max(low, policy.minReplicas));
        expect(d.desiredReplicas).toBeLessThanOrEqual(Math.min(high, policy.maxReplicas));
      }),
    );
  });

  it("threshold: nothing scales inside a cooldown", () => {
    fc.assert(
      fc.property(policyArb.map(keepsOne), stateArb, (anyPolicy, raw) => {
        const policy = { ...anyPolicy, strategy: "threshold" as const };
        const state = inRange(policy, raw);
        const last = lastEventAt(state);
        fc.pre(last !== undefined);
        const sinceLast = NOW - last!;
        const { action } = decide(policy, state, NOW);
        if (sinceLast < seconds(policy.scaleUpCooldownSeconds)) expect(action).not.toBe("scale_up");
        if (sinceLast < seconds(policy.scaleDownCooldownSeconds)) expect(action).not.toBe("scale_down");
      }),
      { numRuns: 300 },
    );
  });

  it("threshold: moves one step at most", () => {
    fc.assert(
      fc.property(policyArb.map(keepsOne), stateArb, (anyPolicy, raw) => {
        const policy = { ...anyPolicy, strategy: "threshold" as const };
        const state = inRange(policy, raw);
        const d = decide(policy, state, NOW);
        const moved = d.desiredReplicas - d.currentReplicas;
        expect(moved).toBeLessThanOrEqual(policy.scaleUpStep);
        expect(-moved).toBeLessThanOrEqual(policy.scaleDownStep);
      }),
    );
  });

  it("the same input always gives the same decision, and the input is left untouched", () => {
    fc.assert(
      fc.property(policyArb, stateArb, fc.integer({ min: 0, max: 120_000 }), (policy, state, offset) => {
        const now = NOW + offset;
        const before = structuredClone(state);
        const first = decide(policy, state, now);
        const second = decide(structuredClone(policy), structuredClone(state), now);
        expect(second).toEqual(first);
        expect(state).toEqual(before);
      }),
    );
  });

  it("rate policies are never exceeded (count within bounds, no caps)", () => {
    // An independent reading of HPA's rule: a scale-up may not pass the best (Max) or the tightest (Min) policy
    // bound computed from the replicas at each period's start.
    fc.assert(
      fc.property(policyArb.map(keepsOne), stateArb, (policy, raw) => {
        const state = inRange(policy, raw);
        const d = decide(policy, state, NOW);
        const current = d.currentReplicas;
        const up = d.desiredReplicas > current;
        const down = d.desiredReplicas < current;
        fc.pre(up || down);
        const rules = up ? policy.behavior.scaleUp : policy.behavior.scaleDown;
        expect(rules.selectPolicy).not.toBe("Disabled");
        const bounds = rules.policies.map((p) => {
          const inPeriod = state.recentEvents.filter((e) => e.at > NOW - seconds(p.periodSeconds));
          const added = inPeriod.reduce((sum, e) => sum + Math.max(0, e.toReplicas - e.fromReplicas), 0);
          const removed = inPeriod.reduce((sum, e) => sum + Math.max(0, e.fromReplicas - e.toReplicas), 0);
          const start = current - added + removed;
          if (up) return p.type === "Pods" ? start + p.value : Math.ceil(start * (1 + p.value / 100));
          return p.type === "Pods" ? start - p.value : Math.trunc(start * (1 - p.value / 100));
        });
        if (up) {
          const bound = rules.selectPolicy === "Max" ? Math.max(...bounds) : Math.min(...bounds);
          expect(d.desiredReplicas).toBeLessThanOrEqual(Math.max(bound, current, policy.minReplicas));
        } else {
          const bound = rules.selectPolicy === "Max" ? Math.min(...bounds) : Math.max(...bounds);
          expect(d.desiredReplicas).toBeGreaterThanOrEqual(Math.min(bound, current, policy.maxReplicas));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("with minReplicas 0, a fleet reaches 0 only by scaleToZero and leaves it only by activation", () => {
    fc.assert(
      fc.property(policyArb, stateArb, fc.integer({ min: 0, max: 5 }), (anyPolicy, raw, held) => {
        const policy = { ...anyPolicy, minReplicas: 0, schedules: undefined, mode: "auto" as const };
        const state = { ...inRange(policy, raw), heldRequests: held };
        const d = decide(policy, state, NOW);
        const kinds = d.limits.map((limit) => limit.kind);
        if (d.currentReplicas > 0 && d.desiredReplicas === 0) expect(kinds).toContain("scaleToZero");
        if (d.currentReplicas === 0 && d.desiredReplicas > 0) expect(kinds).toContain("activation");
        if (d.currentReplicas === 0 && held > 0 && state.activeEvent === null)
          expect(d.desiredReplicas).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 300 },
    );
  });

  it("every decision explains itself, ending with its outcome", () => {
    fc.assert(
      fc.property(policyArb, stateArb, (policy, state) => {
        const d = decide(policy, state, NOW);
        const outcome =
          d.action === "none"
            ? `no change at ${d.currentReplicas}`
            : `${d.action === "scale_up" ? "scale up" : "scale down"} ${d.currentReplicas} → ${d.desiredReplicas}`;
        expect(d.explanation.endsWith(outcome)).toBe(true);
        expect(d.recommendation).toEqual({ at: NOW, replicas: d.recommendedReplicas });
      }),
    );
  });

  it("keeping only the newest recommendation of each replica count changes no decision (scaling_recommendations)", () => {
    // Few replica counts, so most counts are recommended several times.
    const repeatedArb = fc.array(
      fc.record({
        at: fc.integer({ min: NOW - seconds(900), max: NOW }),
        replicas: fc.integer({ min: 0, max: 5 }),
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(policyArb, stateArb, repeatedArb, (policy, raw, recommendations) => {
        const state = { ...raw, recommendations };
        const newest = new Map<number, (typeof state.recommendations)[number]>();
        for (const record of state.recommendations) {
          const kept = newest.get(record.replicas);
          if (!kept || record.at > kept.at) newest.set(record.replicas, record);
        }
        const reduced = { ...state, recommendations: [...newest.values()] };
        expect(decide(policy, reduced, NOW)).toEqual(decide(policy, state, NOW));
      }),
      { numRuns: 500 },
    );
  });
});

describe("extreme stored values (fast-check): evaluation never throws", () => {
  const EXTREMES = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 52, 2 ** 53 - 1, 1e308];
  const extreme = fc.oneof(fc.constantFrom(...EXTREMES), fc.integer({ min: 0, max: 2 ** 40 }));
  /** A policy as an old row may hold it: every duration and count past today's bounds, the schema bypassed. */
  const storedArb = fc
    .record({
      policy: policyArb,
      metricsMaxAgeSeconds: extreme,
      scaleUpCooldownSeconds: extreme,
      scaleDownCooldownSeconds: extreme,
      upWindow: extreme,
      downWindow: extreme,
      period: extreme,
      failureThreshold: extreme,
      scaleUpStep: extreme,
    })
    .map(({ policy, upWindow, downWindow, period, ...fields }): ScalingPolicy => {
      const rules = (rules: ScalingPolicy["behavior"]["scaleUp"], window: number) => ({
        ...rules,
        stabilizationWindowSeconds: window,
        policies: rules.policies.map((rule) => ({ ...rule, periodSeconds: Math.max(1, period) })),
      });
      return {
        ...policy,
        metricsMaxAgeSeconds: Math.max(1, fields.metricsMaxAgeSeconds),
        scaleUpCooldownSeconds: fields.scaleUpCooldownSeconds,
        scaleDownCooldownSeconds: fields.scaleDownCooldownSeconds,
        // A step is a count: what storage and parseStoredPolicy give is at most 2^31 − 1.
        scaleUpStep: Math.min(2 ** 31 - 1, Math.max(1, fields.scaleUpStep)),
        fallback: { failureThreshold: Math.max(1, fields.failureThreshold) },
        behavior: {
          scaleUp: rules(policy.behavior.scaleUp, upWindow),
          scaleDown: rules(policy.behavior.scaleDown, downWindow),
        },
      };
    });
  const farStateArb = fc
    .tuple(
      stateArb,
      fc.constantFrom(0, NOW - 2 ** 40, NOW),
      // The count comes from an integer column: at most 2^31 − 1.
      fc.constantFrom(0, 1, 2 ** 31 - 1),
    )
    .map(([state, createdAt, currentReplicas]) => ({ ...state, createdAt, currentReplicas }));

  it("decide returns a valid decision for any stored durations and counts, its counts fit an integer column, and its history window is a real time", () => {
    fc.assert(
      fc.property(storedArb, farStateArb, (policy, state) => {
        const decision = decide(policy, state, NOW);
        expect(decisionSchema.parse(decision)).toEqual(decision);
        // Every count the decision log stores fits its integer column.
        for (const count of [
          decision.recommendedReplicas,
          decision.desiredReplicas,
          decision.recommendation.replicas,
        ]) {
          expect(count).toBeLessThanOrEqual(2 ** 31 - 1);
        }
        const window = historySecondsFor(policy);
        expect(window).toBeLessThanOrEqual(MAX_POLICY_HISTORY_SECONDS);
        expect(Number.isNaN(new Date(NOW - window * 1000).getTime())).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("a stored policy past today's bounds reads as the bounds (parseStoredPolicy), never throws", () => {
    fc.assert(
      fc.property(storedArb, (stored) => {
        const policy = parseStoredPolicy(JSON.parse(JSON.stringify(stored)));
        expect(policy.metricsMaxAgeSeconds).toBe(
          Math.min(stored.metricsMaxAgeSeconds, POLICY_DURATION_LIMITS.metricsMaxAgeSeconds),
        );
        expect(policy.scaleUpCooldownSeconds).toBeLessThanOrEqual(POLICY_DURATION_LIMITS.cooldownSeconds);
        expect(policy.behavior.scaleDown.stabilizationWindowSeconds).toBeLessThanOrEqual(3_600);
        expect(policy.fallback.failureThreshold).toBeLessThanOrEqual(2 ** 31 - 1);
        expect(() => decide(policy, { ...emptyState(), samples: [] }, NOW)).not.toThrow();
      }),
    );
  });
});

function emptyState(): ObservedState {
  return {
    currentReplicas: 2,
    unhealthyReplicas: 0,
    samples: [],
    recentEvents: [],
    recommendations: [],
    lastSampleAt: null,
    createdAt: NOW - seconds(60),
    activeEvent: null,
    reconcileIntervalMs: seconds(DEFAULT_RECONCILE_SECONDS),
  };
}

describe("targets near 0 (fast-check)", () => {
  it("a target as small as 5e-324 against the largest measurement still gives finite numbers and storable counts", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(5e-324, 1e-300, 1e-6),
        fc.constantFrom(0, 1, 1e15),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (target, value, currentReplicas) => {
          const policy = parsePolicy({
            strategy: "targetTracking",
            maxReplicas: 2 ** 31 - 1,
            targetRequestRate: target,
            targetLatencyMs: target,
            customMetricTargets: { queue: target },
          });
          const decision = decide(
            policy,
            {
              ...emptyState(),
              currentReplicas,
              samples: [
                {
                  at: NOW,
                  cpuPercent: 100,
                  memoryPercent: 100,
                  requestRate: value,
                  avgLatencyMs: value,
                  errorRatePercent: 0,
                  custom: { queue: value },
                },
              ],
              lastSampleAt: NOW,
            },
            NOW,
          );
          // What the API sends and the decision log stores: JSON, then the schema.
          expect(decisionSchema.parse(JSON.parse(JSON.stringify(decision)))).toEqual(decision);
          for (const metric of decision.metrics)
            expect(metric.proposedReplicas).toBeLessThanOrEqual(2 ** 31 - 1);
        },
      ),
    );
  });
});
