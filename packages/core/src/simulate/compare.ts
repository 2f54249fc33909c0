/**
 * The oracle (the limit any policy could reach) and `compare`, which runs named policies, HPA's defaults and
 * the oracle over one trace and reports each one's metrics and its distance from the oracle and from HPA.
 */
import { parsePolicy, type ScalingPolicy } from "../policy.ts";
import type { CapacityModel } from "./capacity.ts";
import type { ElasticityMetrics } from "./elasticity.ts";
import { Fleet } from "./fleet.ts";
import {
  closeStep,
  DEFAULT_SIMULATION_START,
  HPA_LIKE_LOOP,
  type LoopModel,
  metricsOfSteps,
  type SimulationInput,
  type SimulationResult,
  type SimulationStep,
  simulate,
} from "./simulate.ts";
import type { Trace } from "./trace.ts";

export interface OracleInput {
  trace: Trace | readonly number[];
  capacity: CapacityModel;
  stepSeconds?: number;
  warmupSeconds?: number;
  drainSeconds?: number;
  /** Bounds on the oracle's count. Default [0, ∞): the limit, whatever a policy allows. */
  minReplicas?: number;
  maxReplicas?: number;
  startAt?: number;
}

export interface OracleResult {
  capacity: string;
  stepSeconds: number;
  warmupSeconds: number;
  drainSeconds: number;
  steps: SimulationStep[];
  scalingActions: number;
  metrics: ElasticityMetrics;
}

function seriesOf(input: { trace: Trace | readonly number[]; stepSeconds?: number }): {
  requests: readonly number[];
  stepSeconds: number;
  startSeconds: number;
} {
  if (Array.isArray(input.trace)) {
    if (!(input.stepSeconds !== undefined && input.stepSeconds > 0))
      throw new RangeError("stepSeconds: required (> 0) with a plain count series");
    return { requests: input.trace, stepSeconds: input.stepSeconds, startSeconds: 0 };
  }
  const trace = input.trace as Trace;
  return { requests: trace.requests, stepSeconds: trace.stepSeconds, startSeconds: trace.startSeconds };
}

/**
 * The oracle knows the whole trace. At each step boundary t it runs max(need[u]) for u in [t, t + ⌈W/Δt⌉]
 * steps, need[u] being the capacity model's fewest replicas for step u's demand (within the bounds): so every
 * replica a step needs was started at least the warm-up W before it, and none is kept once no step within the
 * warm-up horizon needs it. It runs through the same fleet model as `simulate` (warm-up, drain), starting warm
 * at its first count. It never under-provisions; it over-provisions only by what warm-up forces.
 */
export function oracle(input: OracleInput): OracleResult {
  const { capacity } = input;
  const { requests, stepSeconds, startSeconds } = seriesOf(input);
  const warmupSeconds = input.warmupSeconds ?? 0;
  const drainSeconds = input.drainSeconds ?? 0;
  const min = input.minReplicas ?? 0;
  const max = input.maxReplicas ?? Infinity;
  const start = input.startAt ?? DEFAULT_SIMULATION_START;
  const n = requests.length;
  const stepMs = stepSeconds * 1000;
  const need = requests.map((count) =>
    Math.min(max, Math.max(min, capacity.requiredReplicas(count / stepSeconds))),
  );
  const ahead = Math.ceil(warmupSeconds / stepSeconds - 1e-9);
  // Sliding maximum of need over [t, t + ahead] (a monotonic deque: O(n)).
  const plan = new Array<number>(n);
  const deque: number[] = [];
  let pushed = 0;
  for (let t = 0; t < n; t++) {
    const last = Math.min(n - 1, t + ahead);
    while (pushed <= last) {
      while (deque.length > 0 && need[deque[deque.length - 1]!]! <= need[pushed]!) deque.pop();
      deque.push(pushed++);
    }
    while (deque[0]! < t) deque.shift();
    plan[t] = need[deque[0]!]!;
  }

  const fleet = new Fleet(
    n > 0 ? plan[0]! : 0,
    Math.round(warmupSeconds * 1000),
    Math.round(drainSeconds * 1000),
    start,
  );
  let scalingActions = 0;
  const steps: SimulationStep[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const stepStart = start + i * stepMs;
    fleet.advanceTo(stepStart);
    if (plan[i] !== fleet.current) {
      fleet.scaleTo(plan[i]!);
      scalingActions++;
    }
    steps[i] = closeStep(
      fleet,
      capacity,
      { index: i, startMs: stepStart, stepMs, t: startSeconds + i * stepSeconds, requests: requests[i]! },
      { kept: null, decisions: 0 },
    );
  }
  return {
    capacity: capacity.description,
    stepSeconds,
    warmupSeconds,
    drainSeconds,
    steps,
    scalingActions,
    metrics: metricsOfSteps(steps, stepSeconds, scalingActions),
  };
}

/**
 * HPA's defaults as a policy: target tracking on CPU at 80% (kubectl autoscale's default), HPA's default
 * behavior and tolerance (the policy schema's defaults); memory and request rate effectively off.
 */
export function hpaDefaultPolicy(bounds: { minReplicas: number; maxReplicas: number }): ScalingPolicy {
  return parsePolicy({
    strategy: "targetTracking",
    targetCpuPercent: 80,
    targetMemoryPercent: 100,
    targetRequestRate: 1e12,
    minReplicas: bounds.minReplicas,
    maxReplicas: bounds.maxReplicas,
  });
}

/**
 * The metrics every comparison reports, as numbers (the nested unnormalised forms are in `metrics`), in the order
 * of `proxyscale simulate --json`.
 */
export const COMPARED_METRICS = [
  "underProvisioningTimeshare",
  "overProvisioningTimeshare",
  "underProvisioningAccuracy",
  "overProvisioningAccuracy",
  "instability",
  "jitter",
  "scalingActions",
  "replicaHours",
  "sloViolationMinutes",
] as const;
export type ComparedMetric = (typeof COMPARED_METRICS)[number];

export interface Candidate {
  name: string;
  policy: ScalingPolicy;
  /** Default: the comparison's loop. */
  loop?: LoopModel;
}

export interface CompareInput {
  trace: Trace | readonly number[];
  capacity: CapacityModel;
  stepSeconds?: number;
  initialReplicas: number;
  candidates: readonly Candidate[];
  loop?: LoopModel;
  warmupSeconds?: number;
  drainSeconds?: number;
  startAt?: number;
  /** Add HPA's defaults (hpaDefaultPolicy on HPA's 15 s sync chain) as a row named "hpa-defaults". Default true. */
  hpaDefaults?: boolean;
  /** Passed to every simulation (default "every"); a backtest over months passes "none" (metrics only). */
  keepDecisions?: SimulationInput["keepDecisions"];
  /** Bounds of the HPA row (default: the first candidate's) and of the oracle (default [0, ∞)). */
  hpaBounds?: { minReplicas: number; maxReplicas: number };
  oracleBounds?: { minReplicas?: number; maxReplicas?: number };
}

export interface ComparisonRow {
  name: string;
  kind: "policy" | "hpa" | "oracle";
  metrics: ElasticityMetrics;
  /** This row's value minus the oracle's, per metric (replicaHours also as a ratio in `replicaHoursRatio`). */
  fromOracle: Record<ComparedMetric, number> & { replicaHoursRatio: number };
  /** This row's value minus HPA's defaults', per metric (absent without the HPA row). */
  fromHpa?: Record<ComparedMetric, number>;
  /** The simulation (null for the oracle row). */
  simulation: SimulationResult | null;
}

export interface Comparison {
  /** The capacity model, stated in every report. */
  capacity: string;
  stepSeconds: number;
  warmupSeconds: number;
  drainSeconds: number;
  rows: ComparisonRow[];
  oracle: OracleResult;
}

function difference(a: ElasticityMetrics, b: ElasticityMetrics): Record<ComparedMetric, number> {
  const out = {} as Record<ComparedMetric, number>;
  for (const key of COMPARED_METRICS) out[key] = a[key] - b[key];
  return out;
}

/** Runs every candidate (+ HPA's defaults, + the oracle) over one trace with one capacity model. */
export function compare(input: CompareInput): Comparison {
  const stepSeconds = seriesOf(input).stepSeconds;
  const warmupSeconds = input.warmupSeconds ?? 0;
  const drainSeconds = input.drainSeconds ?? 0;
  const shared = {
    trace: input.trace,
    capacity: input.capacity,
    stepSeconds,
    initialReplicas: input.initialReplicas,
    warmupSeconds,
    drainSeconds,
    ...(input.startAt === undefined ? {} : { startAt: input.startAt }),
    ...(input.keepDecisions === undefined ? {} : { keepDecisions: input.keepDecisions }),
  };
  const runs: Array<{ name: string; kind: ComparisonRow["kind"]; simulation: SimulationResult }> = [];
  for (const candidate of input.candidates) {
    const loop = candidate.loop ?? input.loop;
    runs.push({
      name: candidate.name,
      kind: "policy",
      simulation: simulate({ ...shared, policy: candidate.policy, ...(loop === undefined ? {} : { loop }) }),
    });
  }
  if (input.hpaDefaults ?? true) {
    const first = input.candidates[0]?.policy;
    const bounds = input.hpaBounds ?? {
      minReplicas: first?.minReplicas ?? 1,
      maxReplicas: first?.maxReplicas ?? 10,
    };
    runs.push({
      name: "hpa-defaults",
      kind: "hpa",
      simulation: simulate({ ...shared, policy: hpaDefaultPolicy(bounds), loop: HPA_LIKE_LOOP }),
    });
  }
  const best = oracle({
    trace: input.trace,
    capacity: input.capacity,
    stepSeconds,
    warmupSeconds,
    drainSeconds,
    ...(input.oracleBounds?.minReplicas === undefined ? {} : { minReplicas: input.oracleBounds.minReplicas }),
    ...(input.oracleBounds?.maxReplicas === undefined ? {} : { maxReplicas: input.oracleBounds.maxReplicas }),
    ...(input.startAt === undefined ? {} : { startAt: input.startAt }),
  });
  const hpa = runs.find((run) => run.kind === "hpa")?.simulation.metrics;
  const rowOf = (
    name: string,
    kind: ComparisonRow["kind"],
    metrics: ElasticityMetrics,
    simulation: SimulationResult | null,
  ): ComparisonRow => {
    const row: ComparisonRow = {
      name,
      kind,
      metrics,
      fromOracle: {
        ...difference(metrics, best.metrics),
        replicaHoursRatio:
          best.metrics.replicaHours > 0 ? metrics.replicaHours / best.metrics.replicaHours : Number.NaN,
      },
      simulation,
    };
    if (hpa !== undefined) row.fromHpa = difference(metrics, hpa);
    return row;
  };
  const rows = runs.map((run) => rowOf(run.name, run.kind, run.simulation.metrics, run.simulation));
  rows.push(rowOf("oracle", "oracle", best.metrics, null));
  return {
    capacity: input.capacity.description,
    stepSeconds,
    warmupSeconds,
    drainSeconds,
    rows,
    oracle: best,
  };
}
