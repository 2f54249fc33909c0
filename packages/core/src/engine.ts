import { limitRate, stabilize } from "./behavior.ts";
import type {
  Decision,
  Limit,
  MetricProposal,
  ObservedState,
  ScaleEventRecord,
  ScalingAction,
} from "./decision.ts";
import { explainDecision } from "./explain.ts";
import { type FleetMetrics, type FleetObservation, observeFleet } from "./observe.ts";
import { MAX_POLICY_HISTORY_SECONDS, type ScalingPolicy, withinDurationLimits } from "./policy.ts";
import { scaleToZeroLimit } from "./scale-to-zero.ts";
import {
  type ActiveWindow,
  activeWindows,
  budgetCap,
  DEFAULT_TIME_ZONE,
  scheduledBounds,
} from "./schedule.ts";
import { computeLoadScore } from "./score.ts";
import { PG_INTEGER_MAX } from "./storable.ts";
import { type StrategyBasis, strategies } from "./strategies/index.ts";
import type { StrategyInput } from "./strategies/types.ts";

/**
 * Spreads a fleet average over the serving replicas: unhealthy replicas carry no load, so the load they are
 * averaged in with falls on the others. Per-request readings (latency, error rate) stay as they are.
 */
function projectOntoServing(metrics: FleetMetrics, factor: number): FleetMetrics {
  let custom: Record<string, number> | undefined;
  if (metrics.custom !== undefined) {
    custom = {};
    for (const name in metrics.custom) custom[name] = metrics.custom[name]! * factor;
  }
  return {
    cpuPercent: Math.min(100, metrics.cpuPercent * factor),
    memoryPercent: Math.min(100, metrics.memoryPercent * factor),
    requestRate: metrics.requestRate * factor,
    avgLatencyMs: metrics.avgLatencyMs,
    errorRatePercent: metrics.errorRatePercent,
    custom,
  };
}

function strategyInput(
  policy: ScalingPolicy,
  currentReplicas: number,
  unhealthyReplicas: number,
  observation: FleetObservation,
  now: number,
  demand: ObservedState["demand"],
): { input: StrategyInput; loadFactor: number } {
  const servingReplicas = currentReplicas - unhealthyReplicas;
  // A fleet average describes every replica; per-instance readings are taken as the serving replicas' own.
  const loadFactor = observation.fleetAverage && servingReplicas > 0 ? currentReplicas / servingReplicas : 1;
  const readyWithMetrics = observation.fleetAverage
    ? servingReplicas
    : Math.min(observation.liveSamples, servingReplicas);
  const metrics =
    loadFactor === 1 ? observation.averages : projectOntoServing(observation.averages, loadFactor);
  const noServingCapacity = currentReplicas > 0 && servingReplicas === 0;
  return {
    input: {
      policy,
      currentReplicas,
      unhealthyReplicas,
      servingReplicas,
      readyWithMetrics,
      missingReplicas: servingReplicas - readyWithMetrics,
      metrics,
      loadScore: noServingCapacity ? 100 : computeLoadScore(metrics, policy),
      observation,
      now,
      demand,
    },
    loadFactor,
  };
}

function lastScaleAt(events: readonly ScaleEventRecord[]): number | undefined {
  let last: number | undefined;
  for (const event of events) if (last === undefined || event.at > last) last = event.at;
  return last;
}

/**
 * How many reconcile intervals in a row found the proxy without live metrics, from time alone (so every server,
 * the API and the simulator agree without keeping counters): 0 while the newest sample is younger than
 * `metricsMaxAgeSeconds`, then one more per interval. A proxy that never reported counts from its creation.
 */
export function missedIntervals(policy: ScalingPolicy, state: ObservedState, now: number): number {
  const staleSince = (state.lastSampleAt ?? state.createdAt) + policy.metricsMaxAgeSeconds * 1000;
  if (now < staleSince) return 0;
  return Math.floor((now - staleSince) / state.reconcileIntervalMs) + 1;
}

/**
 * KEDA's fallback, for a decision without live metrics: once `failureThreshold` intervals were missed, hold
 * (no `fallback.replicas`) or go to `fallback.replicas` within [minReplicas, maxReplicas].
 */
function fallbackLimit(
  policy: ScalingPolicy,
  state: ObservedState,
  now: number,
  desired: number,
): Extract<Limit, { kind: "fallback" }> | undefined {
  const { failureThreshold, replicas } = policy.fallback;
  const missed = missedIntervals(policy, state, now);
  if (missed < failureThreshold) return undefined;
  const to =
    replicas === undefined ? desired : Math.min(policy.maxReplicas, Math.max(policy.minReplicas, replicas));
  return {
    kind: "fallback",
    missedIntervals: missed,
    failureThreshold,
    ...(replicas === undefined ? {} : { replicas }),
    from: desired,
    to,
  };
}

/** The bounds a decision is held to: the policy's, or those of the capacity windows active now. */
interface Bounds {
  windows: readonly ActiveWindow[];
  timeZone: string;
  minReplicas: number;
  maxReplicas: number;
}

/**
 * The limit for a bound that moved the count: the policy's min/max, or the schedule's naming its windows. A
 * module function, not a closure in `decide`: a closure made per decision cost a defineProperty each under tsx.
 */
function boundLimit(bounds: Bounds, kind: "minReplicas" | "maxReplicas", from: number, to: number): Limit {
  if (bounds.windows.length === 0) return { kind, value: to, from, to };
  return {
    kind: "schedule",
    windows: bounds.windows.map((window) => ({ name: window.name, endsAt: window.endsAt })),
    timeZone: bounds.timeZone,
    minReplicas: bounds.minReplicas,
    maxReplicas: bounds.maxReplicas,
    from,
    to,
  };
}

export interface DecideOptions {
  /**
   * Build `explanation` (default true). The simulator passes false for decisions it does not keep and explains
   * the kept ones afterwards with `explainDecision` (the sentence is a function of the structured decision, so
   * it is the same); with false, `explanation` is "".
   */
  explain?: boolean;
}

/**
 * The scaling decision for `state` at `now`: a pure function of its arguments (no clock, no randomness, no I/O).
 * The REST evaluate, the control loop and the simulator all call it, so they cannot disagree.
 *
 * Pipeline: live samples → averages (health-adjusted) → strategy proposal → the seed's cooldowns (threshold
 * strategy) → HPA stabilization windows → HPA rate policies → min/max → scale to zero and activation (bounds
 * reaching 0) → fallback (no live metrics for `failureThreshold` intervals) → tier cap → budget → in flight (a scale already runs) → mode (dryRun, off)
 * → action. A fleet outside [minReplicas, maxReplicas] goes straight to the nearest bound, as HPA does.
 */
export function decide(
  input: ScalingPolicy,
  state: ObservedState,
  now: number,
  options: DecideOptions = {},
): Decision {
  const policy = withinDurationLimits(input);
  const current = state.currentReplicas;
  const unhealthy = Math.min(Math.max(0, state.unhealthyReplicas), current);
  const strategy = strategies[policy.strategy];
  const observation = observeFleet(state.samples, current, policy.metricsMaxAgeSeconds, now);
  const limits: Limit[] = [];

  let recommended = current;
  let loadScore: number | null = null;
  let metrics: MetricProposal[] = [];
  let basis: StrategyBasis | null = null;
  if (observation === null) {
    limits.push({ kind: "noMetrics", liveSamples: 0, maxAgeSeconds: policy.metricsMaxAgeSeconds });
  } else {
    const { input, loadFactor } = strategyInput(policy, current, unhealthy, observation, now, state.demand);
    if (unhealthy > 0) {
      limits.push({
        kind: "health",
        unhealthyReplicas: unhealthy,
        servingReplicas: input.servingReplicas,
        loadFactor,
      });
    }
    const proposal = strategy.propose(input);
    // A count the decision log's integer columns hold: a proposal past it (a current count near 2^31 − 1 plus a
    // step, or a load far past its target) is cut there; maxReplicas bounds what is executed anyway.
    recommended = Math.min(proposal.recommendedReplicas, PG_INTEGER_MAX);
    loadScore = input.loadScore;
    metrics = proposal.metrics;
    basis = proposal.basis;
    for (const limit of proposal.limits) limits.push(limit);
  }

  const { behavior } = policy;
  const timeZone = policy.timeZone ?? DEFAULT_TIME_ZONE;
  // Active capacity windows replace the policy's bounds (docs/engine.md, "Scheduled capacity").
  const windows =
    policy.schedules === undefined || policy.schedules.length === 0
      ? []
      : activeWindows(policy.schedules, timeZone, now);
  const { minReplicas, maxReplicas } = windows.length === 0 ? policy : scheduledBounds(policy, windows);
  const bounds: Bounds = { windows, timeZone, minReplicas, maxReplicas };
  let desired = recommended;
  if (current > maxReplicas || current < minReplicas) {
    desired = current > maxReplicas ? maxReplicas : minReplicas;
    limits.push(boundLimit(bounds, current > maxReplicas ? "maxReplicas" : "minReplicas", current, desired));
  } else if (desired !== current) {
    if (strategy.usesCooldowns) {
      const last = lastScaleAt(state.recentEvents);
      if (last !== undefined) {
        const up = desired > current;
        const cooldownSeconds = up ? policy.scaleUpCooldownSeconds : policy.scaleDownCooldownSeconds;
        const remainingMs = cooldownSeconds * 1000 - (now - last);
        if (remainingMs > 0) {
          limits.push({
            kind: "cooldown",
            direction: up ? "scale_up" : "scale_down",
            cooldownSeconds,
            remainingSeconds: remainingMs / 1000,
            lastScaleAt: last,
          });
          desired = current;
        }
      }
    }
    if (desired !== current) {
      const stabilized = stabilize(current, desired, state.recommendations, behavior, now);
      if (stabilized !== desired) {
        const up = desired > current;
        limits.push({
          kind: "stabilization",
          direction: up ? "scale_up" : "scale_down",
          windowSeconds: (up ? behavior.scaleUp : behavior.scaleDown).stabilizationWindowSeconds,
          from: desired,
          to: stabilized,
        });
        desired = stabilized;
      }
    }
    const rated = limitRate(current, desired, state.recentEvents, behavior, now);
    if (rated.limit !== undefined) {
      limits.push(rated.limit);
      desired = rated.desired;
    }
    if (desired > maxReplicas) {
      limits.push(boundLimit(bounds, "maxReplicas", desired, maxReplicas));
      desired = maxReplicas;
    } else if (desired < minReplicas) {
      limits.push(boundLimit(bounds, "minReplicas", desired, minReplicas));
      desired = minReplicas;
    }
  }
  // A window shows in the decision even when its bounds did not bind.
  if (windows.length > 0 && !limits.some((limit) => limit.kind === "schedule"))
    limits.push(boundLimit(bounds, "minReplicas", desired, desired));

  // Bounds that reach 0: the grace period takes the fleet to 0, and only demand brings it back.
  const toZero = minReplicas === 0 ? scaleToZeroLimit(policy, state, observation, now, desired) : undefined;
  if (toZero !== undefined) {
    limits.push(toZero);
    desired = toZero.to;
  }

  // A fleet at 0 reports nothing by design: there, activation decides, not fallback.
  if (observation === null && toZero?.kind !== "activation") {
    const bounded = windows.length === 0 ? policy : { ...policy, minReplicas, maxReplicas };
    const fallback = fallbackLimit(bounded, state, now, desired);
    if (fallback !== undefined) {
      limits.push(fallback);
      desired = fallback.to;
    }
  }

  const caps = state.caps;
  if (caps !== undefined) {
    const tier = caps.tierMaxReplicas;
    if (tier !== undefined && desired > tier) {
      limits.push({ kind: "tierCap", value: tier, from: desired, to: tier });
      desired = tier;
    }
    const budget = caps.budgetMaxReplicas;
    if (budget !== undefined && desired > budget) {
      limits.push({ kind: "budget", value: budget, from: desired, to: budget });
      desired = budget;
    }
  }
  const { monthlyBudget, costPerReplicaHour } = policy;
  if (
    monthlyBudget !== undefined &&
    costPerReplicaHour !== undefined &&
    state.replicaHoursThisMonth !== undefined &&
    desired > current
  ) {
    const cap = budgetCap(
      { monthlyBudget, costPerReplicaHour, replicaHoursThisMonth: state.replicaHoursThisMonth, timeZone },
      now,
    );
    // The budget caps scale-up only: over budget, the fleet holds rather than losing serving replicas.
    const affordable = Math.max(cap.affordableReplicas, current);
    if (desired > affordable) {
      limits.push({
        kind: "budget",
        value: cap.affordableReplicas,
        from: desired,
        to: affordable,
        monthlyBudget,
        spent: cap.spent,
        remainingHours: cap.remainingHours,
      });
      desired = affordable;
    }
  }

  const active = state.activeEvent;
  if (active !== null && desired !== current) {
    limits.push({
      kind: "inFlight",
      eventId: active.id,
      toReplicas: active.toReplicas,
      from: desired,
      to: current,
    });
    desired = current;
  }
  if (policy.mode !== "auto" && desired !== current) {
    const to = policy.mode === "off" ? current : desired;
    limits.push({ kind: "mode", mode: policy.mode, from: desired, to });
    desired = to;
  }

  const action: ScalingAction = desired > current ? "scale_up" : desired < current ? "scale_down" : "none";
  // The lists as exact-size copies: an array grown by push reserves 17 slots, and a simulation keeps tens of
  // thousands of decisions.
  const decision: Decision = {
    strategy: policy.strategy,
    action,
    currentReplicas: current,
    recommendedReplicas: recommended,
    desiredReplicas: desired,
    loadScore,
    metrics: metrics.slice(),
    averages: observation === null ? null : observation.averages,
    basis,
    limits: limits.slice(),
    explanation: "",
    recommendation: { at: now, replicas: recommended },
    evaluatedAt: now,
  };
  if (options.explain ?? true) decision.explanation = explainDecision(decision);
  return decision;
}

/** Whether the control loop carries the decision out: it scales, and its mode is not dryRun. */
export function executes(decision: Decision): boolean {
  if (decision.action === "none") return false;
  for (const limit of decision.limits) if (limit.kind === "mode") return false;
  return true;
}

/**
 * Whether a periodic reconcile's decision is news the control loop records (and the simulator counts): a scale
 * (or a dry run's would-be scale), one held by a scale in flight, or the interval in which fallback took over.
 * A push brings news, so its decisions are all recorded.
 */
export function recordedOnReconcile(decision: Decision): boolean {
  if (decision.action !== "none") return true;
  return decision.limits.some(
    (limit) =>
      limit.kind === "inFlight" ||
      (limit.kind === "fallback" && limit.missedIntervals === limit.failureThreshold),
  );
}

/** Who the control loop's decision is recorded as triggered by: `activation` when demand brought a fleet up from 0. */
export function scalingTriggerOf(decision: Decision): "auto" | "activation" {
  for (const limit of decision.limits)
    if (limit.kind === "activation" && limit.source !== "none" && limit.to > 0) return "activation";
  return "auto";
}

/** What a decision came to, in one word (the control loop's evaluation metric). */
export type DecisionOutcome = "scaled" | "dry_run" | "paused" | "skipped_in_flight" | "fallback" | "held";

export function decisionOutcome(decision: Decision): DecisionOutcome {
  let outcome: DecisionOutcome = decision.action === "none" ? "held" : "scaled";
  for (const limit of decision.limits) {
    if (limit.kind === "inFlight") return "skipped_in_flight";
    if (limit.kind === "mode") return limit.mode === "off" ? "paused" : "dry_run";
    if (limit.kind === "fallback" && outcome === "held") outcome = "fallback";
  }
  return outcome;
}

/**
 * How far back `decide` looks for this policy (cooldowns, stabilization windows, rate-policy periods, sample
 * age), in seconds: whoever builds an ObservedState reads at least this much history.
 */
export function historySecondsFor(policy: ScalingPolicy): number {
  const { scaleUp, scaleDown } = policy.behavior;
  // Bounded even for a policy that bypassed the schema: the window becomes a timestamp (now − window).
  return Math.min(
    MAX_POLICY_HISTORY_SECONDS,
    Math.max(
      policy.scaleUpCooldownSeconds,
      policy.scaleDownCooldownSeconds,
      policy.metricsMaxAgeSeconds,
      policy.scaleToZeroGracePeriodSeconds,
      scaleUp.stabilizationWindowSeconds,
      scaleDown.stabilizationWindowSeconds,
      ...scaleUp.policies.map((rule) => rule.periodSeconds),
      ...scaleDown.policies.map((rule) => rule.periodSeconds),
    ),
  );
}
