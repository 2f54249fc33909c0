/**
 * The what-if simulator: replays a request trace through `decide` — the function the control loop calls — on a
 * simulated clock. Pure: no I/O, no clock, no randomness; the same input gives the same output.
 *
 * The chain, each link explicit (docs/simulator.md):
 *   demand → replicas' readings (capacity model) → a fleet-average sample every report interval, arriving
 *   after the metric delay → the loop decides (push: on each arrival; sync: every period) → `decide` (strategy,
 *   cooldowns, stabilization, rate policies, min/max, fallback, mode) → the fleet scales: a new replica warms up
 *   before it serves, a removed one drains (paid for, serving nobody new).
 */
import type { Decision, ObservedState } from "../decision.ts";
import { executes } from "../engine.ts";
import type { MetricSample } from "../metrics.ts";
import { DEFAULT_RECONCILE_SECONDS, type ScalingPolicy } from "../policy.ts";
import { demandRefitDue, fitDemand, PREDICTIVE_HISTORY_DAYS } from "../strategies/predictive.ts";
import type { CapacityModel, ReplicaReading } from "./capacity.ts";
import { type ElasticityMetrics, elasticityMetrics } from "./elasticity.ts";
import { Fleet } from "./fleet.ts";
import { KeptDecisions } from "./kept-decisions.ts";
import type { Trace } from "./trace.ts";
import { DecisionTrail } from "./trail.ts";

/**
 * How decisions are triggered.
 * - `push`, as ProxyScale: every sample that arrives is evaluated at once; `reconcileSeconds` adds the live
 *   loop's periodic reconcile (off by default: between pushes it only matters for stale metrics and windows
 *   that expire between samples).
 * - `sync`, as HPA: a decision every `periodSeconds` (default 15), on whatever sample arrived last.
 * Both: a sample is taken every `reportIntervalSeconds` (default: the trace's step) and describes the interval
 * that ends then; it reaches the loop `metricDelaySeconds` later (default 0).
 */
export type LoopModel =
  | { kind: "push"; reportIntervalSeconds?: number; metricDelaySeconds?: number; reconcileSeconds?: number }
  | { kind: "sync"; periodSeconds?: number; reportIntervalSeconds?: number; metricDelaySeconds?: number };

/** HPA's chain: a 15 s sync period on metrics-server samples taken every 15 s and read up to 15 s late. */
export const HPA_LIKE_LOOP = {
  kind: "sync",
  periodSeconds: 15,
  reportIntervalSeconds: 15,
  metricDelaySeconds: 15,
} as const satisfies LoopModel;

export interface SimulationInput {
  policy: ScalingPolicy;
  /** A parsed trace, or request counts per step (then `stepSeconds` is required). */
  trace: Trace | readonly number[];
  capacity: CapacityModel;
  /** Replicas serving at the start (warm). */
  initialReplicas: number;
  /** The trace's step; must equal a parsed trace's own. */
  stepSeconds?: number;
  loop?: LoopModel;
  /** Provisioning time: a new replica serves this long after the decision. Default 0. */
  warmupSeconds?: number;
  /** A removed replica is paid for this long after the decision, serving nothing new. Default 0. */
  drainSeconds?: number;
  /** The simulated epoch ms of the trace's first step. Default 2026-01-01T00:00:00Z. */
  startAt?: number;
  /** Keep each decision's ObservedState (a copy) in `evaluations`. Default false (it costs memory). */
  keepStates?: boolean;
  /**
   * Which decision each step carries: `every` (default: the step's last decision), `scaling` (only one that
   * scaled), `none` (all null: metrics only). A kept decision is stored as what it was made from and made again
   * when its step's `decision` is first read (KeptDecisions), so keeping costs little until it is read.
   */
  keepDecisions?: "every" | "scaling" | "none";
}

export interface SimulationStep {
  /** The trace's t_seconds of this step. */
  t: number;
  /** Simulated epoch ms at the step's start. */
  at: number;
  /** Offered load, req/s (the step's count / stepSeconds). */
  demandRps: number;
  /** Serving capacity: serving replicas (time-weighted over the step) × per-replica req/s. */
  supplyRps: number;
  /** The demand in resource units: the capacity model's fewest replicas that keep the SLO. */
  demandReplicas: number;
  /** Serving replicas, time-weighted over the step (fractional when one warmed up or left mid-step). */
  servingReplicas: number;
  /** Replicas paid for (serving + warming + draining), time-weighted over the step. */
  billedReplicas: number;
  /** The engine's count at the step's end (serving + warming): what the last decision asked for. */
  desiredReplicas: number;
  warmingReplicas: number;
  drainingReplicas: number;
  /** A serving replica's readings over the step (the load spread over `servingReplicas`). */
  metrics: ReplicaReading;
  sloViolated: boolean;
  /**
   * The step's last decision (as `keepDecisions` keeps), or null when none was made in it. Made again from the
   * kept inputs on first read, then the same object; equal to the decision the run made.
   */
  readonly decision: Decision | null;
  decisions: number;
}

export interface Evaluation {
  at: number;
  trigger: "push" | "sync" | "reconcile";
  state: ObservedState;
  decision: Decision;
}

export interface SimulationResult {
  /** The capacity model, as every report states it. */
  capacity: string;
  loop: Required<Extract<LoopModel, { kind: "push" }>> | Required<Extract<LoopModel, { kind: "sync" }>>;
  warmupSeconds: number;
  drainSeconds: number;
  stepSeconds: number;
  steps: SimulationStep[];
  /** Decisions made, and how many of them scaled. */
  decisions: number;
  scalingActions: number;
  metrics: ElasticityMetrics;
  /** With `keepStates`: every decision with the state it was made from. */
  evaluations?: Evaluation[];
}

export const DEFAULT_SIMULATION_START = Date.UTC(2026, 0, 1);

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name}: must be a finite number ≥ 0`);
  return value;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name}: must be a finite number > 0`);
  return value;
}

/** The loop with every default filled, checked. */
export function resolveLoop(loop: LoopModel | undefined, stepSeconds: number): SimulationResult["loop"] {
  const chosen = loop ?? { kind: "push" };
  const reportIntervalSeconds = positive(
    "loop.reportIntervalSeconds",
    chosen.reportIntervalSeconds ?? stepSeconds,
  );
  const metricDelaySeconds = nonNegative("loop.metricDelaySeconds", chosen.metricDelaySeconds ?? 0);
  if (chosen.kind === "sync") {
    return {
      kind: "sync",
      periodSeconds: positive("loop.periodSeconds", chosen.periodSeconds ?? 15),
      reportIntervalSeconds,
      metricDelaySeconds,
    };
  }
  return {
    kind: "push",
    reportIntervalSeconds,
    metricDelaySeconds,
    reconcileSeconds:
      chosen.reconcileSeconds === undefined ? 0 : positive("loop.reconcileSeconds", chosen.reconcileSeconds),
  };
}

function traceOf(input: SimulationInput): {
  requests: readonly number[];
  stepSeconds: number;
  startSeconds: number;
} {
  const { trace } = input;
  if (Array.isArray(trace)) {
    if (input.stepSeconds === undefined)
      throw new RangeError("stepSeconds: required with a plain count series");
    return { requests: trace, stepSeconds: positive("stepSeconds", input.stepSeconds), startSeconds: 0 };
  }
  const parsed = trace as Trace;
  if (input.stepSeconds !== undefined && input.stepSeconds !== parsed.stepSeconds)
    throw new RangeError(
      `stepSeconds: ${input.stepSeconds} differs from the trace's step (${parsed.stepSeconds} s)`,
    );
  return {
    requests: parsed.requests,
    stepSeconds: positive("stepSeconds", parsed.stepSeconds),
    startSeconds: parsed.startSeconds,
  };
}

/**
 * A step as `simulate` and the oracle return it: the numbers, and the decision read from the run's kept ones
 * (the step's slot in KeptDecisions), made on first read. `toJSON` writes the decision in as a field.
 */
class SimulatedStep implements SimulationStep {
  // Declared, not initialised: class fields would define each as undefined before the constructor stores it.
  declare readonly t: number;
  declare readonly at: number;
  declare readonly demandRps: number;
  declare readonly supplyRps: number;
  declare readonly demandReplicas: number;
  declare readonly servingReplicas: number;
  declare readonly billedReplicas: number;
  declare readonly desiredReplicas: number;
  declare readonly warmingReplicas: number;
  declare readonly drainingReplicas: number;
  declare readonly metrics: ReplicaReading;
  declare readonly sloViolated: boolean;
  declare readonly decisions: number;
  declare private readonly kept: KeptDecisions | null;
  declare private readonly index: number;

  constructor(
    t: number,
    at: number,
    demandRps: number,
    supplyRps: number,
    demandReplicas: number,
    servingReplicas: number,
    billedReplicas: number,
    desiredReplicas: number,
    warmingReplicas: number,
    drainingReplicas: number,
    metrics: ReplicaReading,
    sloViolated: boolean,
    decisions: number,
    kept: KeptDecisions | null,
    index: number,
  ) {
    this.t = t;
    this.at = at;
    this.demandRps = demandRps;
    this.supplyRps = supplyRps;
    this.demandReplicas = demandReplicas;
    this.servingReplicas = servingReplicas;
    this.billedReplicas = billedReplicas;
    this.desiredReplicas = desiredReplicas;
    this.warmingReplicas = warmingReplicas;
    this.drainingReplicas = drainingReplicas;
    this.metrics = metrics;
    this.sloViolated = sloViolated;
    this.decisions = decisions;
    this.kept = kept;
    this.index = index;
  }

  get decision(): Decision | null {
    return this.kept === null ? null : this.kept.decisionOf(this.index);
  }

  toJSON(): SimulationStep {
    return {
      t: this.t,
      at: this.at,
      demandRps: this.demandRps,
      supplyRps: this.supplyRps,
      demandReplicas: this.demandReplicas,
      servingReplicas: this.servingReplicas,
      billedReplicas: this.billedReplicas,
      desiredReplicas: this.desiredReplicas,
      warmingReplicas: this.warmingReplicas,
      drainingReplicas: this.drainingReplicas,
      metrics: this.metrics,
      sloViolated: this.sloViolated,
      decision: this.decision,
      decisions: this.decisions,
    };
  }
}

/**
 * Ends step `index` of a replay (the simulator's or the oracle's): advances the fleet to the step's end and reads
 * what it served, billed and measured under the demand of that step. `decided.kept` holds the step's decision
 * (null: none kept).
 */
export function closeStep(
  fleet: Fleet,
  capacity: CapacityModel,
  step: { index: number; startMs: number; stepMs: number; t: number; requests: number },
  decided: { kept: KeptDecisions | null; decisions: number },
): SimulationStep {
  const { stepMs } = step;
  fleet.advanceTo(step.startMs + stepMs);
  const { servingMs, billedMs } = fleet.takeIntegrals();
  const servingReplicas = servingMs / stepMs;
  const demandRps = step.requests / (stepMs / 1000);
  const metrics: ReplicaReading =
    servingReplicas > 0
      ? capacity.reading(demandRps / servingReplicas)
      : // Nothing serving: every request fails.
        {
          cpuPercent: 0,
          memoryPercent: 0,
          requestRate: 0,
          avgLatencyMs: 0,
          errorRatePercent: demandRps > 0 ? 100 : 0,
        };
  return new SimulatedStep(
    step.t,
    step.startMs,
    demandRps,
    servingReplicas * capacity.perReplicaRps,
    capacity.requiredReplicas(demandRps),
    servingReplicas,
    billedMs / stepMs,
    fleet.current,
    fleet.warmingCount,
    fleet.drainingCount,
    metrics,
    capacity.violatesSlo(metrics),
    decided.decisions,
    decided.kept,
    step.index,
  );
}

/** Replays `input.trace` through `decide`; see the module comment and docs/simulator.md. */
export function simulate(input: SimulationInput): SimulationResult {
  const { policy, capacity } = input;
  const { requests, stepSeconds, startSeconds } = traceOf(input);
  const loop = resolveLoop(input.loop, stepSeconds);
  const initial = input.initialReplicas;
  if (!Number.isInteger(initial) || initial < 0)
    throw new RangeError("initialReplicas: must be a whole number ≥ 0");
  const warmupSeconds = nonNegative("warmupSeconds", input.warmupSeconds ?? 0);
  const drainSeconds = nonNegative("drainSeconds", input.drainSeconds ?? 0);
  const start = input.startAt ?? DEFAULT_SIMULATION_START;
  if (!Number.isInteger(start) || start < 0) throw new RangeError("startAt: must be whole epoch ms ≥ 0");
  for (let i = 0; i < requests.length; i++) {
    const count = requests[i]!;
    if (!Number.isFinite(count) || count < 0) throw new RangeError(`trace[${i}]: must be a count ≥ 0`);
  }

  const stepMs = stepSeconds * 1000;
  const n = requests.length;
  const end = start + n * stepMs;
  // Cumulative requests at each step boundary: a window's rate is a difference of two interpolations.
  const cumulative = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cumulative[i + 1] = cumulative[i]! + requests[i]!;
  const countBefore = (at: number): number => {
    const offset = (at - start) / stepMs;
    if (offset <= 0) return 0;
    if (offset >= n) return cumulative[n]!;
    const i = Math.floor(offset);
    return cumulative[i]! + requests[i]! * (offset - i);
  };

  const fleet = new Fleet(initial, Math.round(warmupSeconds * 1000), Math.round(drainSeconds * 1000), start);
  const reportMs = loop.reportIntervalSeconds * 1000;
  const delayMs = Math.round(loop.metricDelaySeconds * 1000);
  const tickMs = loop.kind === "sync" ? loop.periodSeconds * 1000 : loop.reconcileSeconds * 1000;
  const trigger: Evaluation["trigger"] = loop.kind === "sync" ? "sync" : "reconcile";
  const reconcileIntervalMs =
    loop.kind === "sync" ? tickMs : (loop.reconcileSeconds || DEFAULT_RECONCILE_SECONDS) * 1000;

  let nextTake = start + reportMs;
  let nextTick = tickMs > 0 ? start + tickMs : Infinity;
  const arrivals: Array<{ arriveAt: number; sample: MetricSample }> = [];
  let arrivalHead = 0;
  let latest: MetricSample | null = null;
  let lastSampleAt: number | null = null;
  const keep = input.keepDecisions ?? "every";
  const evaluations: Evaluation[] | undefined = input.keepStates ? [] : undefined;
  let decisions = 0;
  let scalingActions = 0;
  let stepIndex = 0;
  let stepDecisions = 0;

  const takeSample = (at: number): void => {
    const serving = fleet.serving;
    if (serving <= 0 || fleet.current <= 0) return; // no serving replica reports
    const from = Math.max(start, at - reportMs);
    const rate = at > from ? ((countBefore(at) - countBefore(from)) / (at - from)) * 1000 : 0;
    const r = capacity.reading(rate / serving);
    // A fleet average describes every current replica (the engine spreads it back over the serving ones):
    // warming replicas carry no load, so the load-carrying readings are the serving ones' × serving / current.
    const share = serving / fleet.current;
    arrivals.push({
      arriveAt: at + delayMs,
      sample: {
        at,
        cpuPercent: Math.min(100, r.cpuPercent * share),
        memoryPercent: Math.min(100, r.memoryPercent * share),
        requestRate: r.requestRate * share,
        avgLatencyMs: r.avgLatencyMs,
        errorRatePercent: r.errorRatePercent,
      },
    });
  };

  const trail = new DecisionTrail(policy, {
    createdAt: start,
    reconcileIntervalMs,
    initialReplicas: initial,
    // Only `keepStates` keeps the decisions themselves; a step's is made again, explained, when it is read.
    explain: evaluations !== undefined,
  });
  const kept =
    keep === "none" ? null : new KeptDecisions(policy, n, { createdAt: start, reconcileIntervalMs });
  const samples: MetricSample[] = [];
  const observed = {
    currentReplicas: initial,
    unhealthyReplicas: 0,
    samples,
    lastSampleAt: null as number | null,
  };

  // Predictive: the trace's past as the per-minute demand the control loop reads from its rollups, refitted on
  // the loop's schedule (every PREDICTIVE_REFIT_MINUTES of simulated time). One array for the run; each refit
  // fits a view of its last week (a copy per refit was most of the run's garbage collection).
  let demandPerMinute: Float64Array | null = null;
  if (policy.strategy === "predictive") {
    demandPerMinute = new Float64Array(Math.floor((end - start) / 60_000));
    for (let m = 0; m < demandPerMinute.length; m++) {
      const from = start + m * 60_000;
      demandPerMinute[m] = (countBefore(from + 60_000) - countBefore(from)) / 60;
    }
  }
  let fittedAt: number | undefined;
  const refitDemand = (now: number): void => {
    if (demandPerMinute === null || !demandRefitDue(fittedAt, now)) return;
    fittedAt = now;
    const minutes = Math.floor((now - start) / 60_000);
    const past = demandPerMinute.subarray(Math.max(0, minutes - PREDICTIVE_HISTORY_DAYS * 1440), minutes);
    trail.state.demand = fitDemand(past, start + minutes * 60_000);
  };

  const evaluate = (now: number, why: Evaluation["trigger"]): void => {
    refitDemand(now);
    observed.currentReplicas = fleet.current;
    observed.unhealthyReplicas = fleet.warmingCount;
    if (latest !== null) samples[0] = latest;
    observed.lastSampleAt = lastSampleAt;
    const decision = trail.decide(now, observed);
    decisions++;
    stepDecisions++;
    if (kept !== null && (keep === "every" || executes(decision))) kept.keep(stepIndex, now, trail.state);
    if (evaluations !== undefined) {
      const state = trail.state;
      evaluations.push({
        at: now,
        trigger: why,
        state: {
          ...state,
          samples: [...state.samples],
          recentEvents: [...state.recentEvents],
          recommendations: [...state.recommendations],
        },
        decision,
      });
    }
    if (trail.record(decision, why)) kept?.recordRecommendation(decision.recommendation);
    if (executes(decision)) {
      // The event is recorded at the decision's time, as the loop's scaling event row; the actuator is taken to
      // complete at once (activeEvent stays null), and warm-up models the rest.
      trail.recordScale(now, decision.currentReplicas, decision.desiredReplicas);
      kept?.recordScale(now, decision.currentReplicas, decision.desiredReplicas);
      fleet.scaleTo(decision.desiredReplicas);
      scalingActions++;
    }
  };

  const steps: SimulationStep[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const stepStart = start + i * stepMs;
    const stepEnd = stepStart + stepMs;
    stepIndex = i;
    stepDecisions = 0;
    for (;;) {
      const arrival = arrivalHead < arrivals.length ? arrivals[arrivalHead]!.arriveAt : Infinity;
      const next = Math.min(nextTake, arrival, nextTick);
      if (next >= stepEnd || next >= end) break;
      fleet.advanceTo(next);
      if (next === nextTake) {
        takeSample(next);
        nextTake += reportMs;
      } else if (next === arrival) {
        latest = arrivals[arrivalHead++]!.sample;
        lastSampleAt = latest.at;
        if (arrivalHead > 1024) {
          arrivals.splice(0, arrivalHead);
          arrivalHead = 0;
        }
        if (loop.kind === "push") evaluate(next, "push");
      } else {
        evaluate(next, trigger);
        nextTick += tickMs;
      }
    }
    steps[i] = closeStep(
      fleet,
      capacity,
      { index: i, startMs: stepStart, stepMs, t: startSeconds + i * stepSeconds, requests: requests[i]! },
      { kept, decisions: stepDecisions },
    );
  }

  const result: SimulationResult = {
    capacity: capacity.description,
    loop,
    warmupSeconds,
    drainSeconds,
    stepSeconds,
    steps,
    decisions,
    scalingActions,
    metrics: metricsOfSteps(steps, stepSeconds, scalingActions),
  };
  if (evaluations !== undefined) result.evaluations = evaluations;
  return result;
}

/** The elasticity metrics of simulated steps: demand and supply in replicas, billing, SLO, actions. */
export function metricsOfSteps(
  steps: readonly SimulationStep[],
  stepSeconds: number,
  scalingActions: number,
): ElasticityMetrics {
  // One pass over the steps (tens of thousands of objects), not one per series.
  const demand: number[] = [];
  const supply: number[] = [];
  const billed: number[] = [];
  const sloViolated: boolean[] = [];
  for (const step of steps) {
    demand.push(step.demandReplicas);
    supply.push(step.servingReplicas);
    billed.push(step.billedReplicas);
    sloViolated.push(step.sloViolated);
  }
  return elasticityMetrics({ stepSeconds, demand, supply, billed, sloViolated, scalingActions });
}
