/**
 * The simulate request as the API, the SDK and the CLI take it (one schema, one runner): a trace (CSV text or
 * counts), named policies, a capacity model and a loop model, bounded so that one request cannot occupy the
 * server; and the result as they return it: per row (policies, HPA's defaults, the oracle) the elasticity
 * metrics, and downsampled demand/supply series for charts. Pure.
 */
import { z } from "zod";
import { type ScalingPolicy, scalingPolicySchema } from "../policy.ts";
import { type CapacityModel, DEFAULT_SERVICE_MS, linearCapacityModel } from "./capacity.ts";
import { COMPARED_METRICS, type ComparedMetric, compare } from "./compare.ts";
import type { LoopModel } from "./simulate.ts";
import { parseTrace, type Trace, TraceFormatError } from "./trace.ts";

/** 30 days at 60 s steps: the benchmark's size, well under a second per policy. */
export const MAX_SIMULATION_STEPS = 43_200;
export const MAX_SIMULATION_POLICIES = 4;
export const DEFAULT_SERIES_POINTS = 500;
export const MAX_SERIES_POINTS = 2_000;
/** A replay's window: at most 30 days of per-minute rollups (MAX_SIMULATION_STEPS minutes). */
export const MAX_REPLAY_WINDOW_MS = MAX_SIMULATION_STEPS * 60_000;

const nonNegative = z.number().nonnegative();

export const capacityModelSchema = z
  .strictObject({
    kind: z.literal("linear").default("linear"),
    // Bounded so that demand in replicas and the elasticity metrics stay finite numbers.
    perReplicaRps: z
      .number({ message: "perReplicaRps must be a number" })
      .min(0.001, { message: "must be at least 0.001 req/s" })
      .max(1e9, { message: "must be at most 1e9 req/s" }),
    baseCpuPercent: z.number().min(0).max(100).optional(),
    baseMemoryPercent: z.number().min(0).max(100).optional(),
    memoryPercentPerRps: nonNegative.optional(),
    serviceMs: z.number().positive().optional(),
    maxLatencyMs: z.number().positive().optional(),
    sloLatencyMs: z.number().positive().optional(),
    sloErrorRatePercent: z.number().min(0).max(100).optional(),
  })
  .superRefine((capacity, ctx) => {
    // The model's own rule (linearCapacityModel), with its defaults: an SLO at or under the service time is
    // never met, even by an idle replica.
    const serviceMs = capacity.serviceMs ?? DEFAULT_SERVICE_MS;
    const sloLatencyMs = capacity.sloLatencyMs ?? 5 * serviceMs;
    if (!(sloLatencyMs > serviceMs)) {
      ctx.addIssue({
        code: "custom",
        path: ["sloLatencyMs"],
        message: `must be above serviceMs (${serviceMs} ms): no replica meets an SLO at or under its service time`,
      });
    }
  });
export type CapacityModelInput = z.input<typeof capacityModelSchema>;

const seconds = (max: number) => z.number().positive().max(max);
export const loopModelSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("push"),
    reportIntervalSeconds: seconds(3600).optional(),
    metricDelaySeconds: z.number().min(0).max(3600).optional(),
    reconcileSeconds: seconds(3600).optional(),
  }),
  z.strictObject({
    kind: z.literal("sync"),
    periodSeconds: seconds(3600).optional(),
    reportIntervalSeconds: seconds(3600).optional(),
    metricDelaySeconds: z.number().min(0).max(3600).optional(),
  }),
]);

export const namedPolicySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  policy: scalingPolicySchema,
});

/** What every simulation takes besides the trace and the policies. */
export const simulationOptionsSchema = z.strictObject({
  capacity: capacityModelSchema.optional(),
  loop: loopModelSchema.optional(),
  initialReplicas: z.number().int().min(0).max(10_000).optional(),
  warmupSeconds: z.number().min(0).max(3600).default(0),
  drainSeconds: z.number().min(0).max(3600).default(0),
  hpaDefaults: z.boolean().default(true),
  seriesPoints: z.number().int().min(2).max(MAX_SERIES_POINTS).default(DEFAULT_SERIES_POINTS),
});

const uniqueNames = (policies: ReadonlyArray<{ name: string }>, ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  policies.forEach((entry, index) => {
    if (seen.has(entry.name) || entry.name === "oracle" || entry.name === "hpa-defaults")
      ctx.addIssue({
        code: "custom",
        path: [index, "name"],
        message: `must be unique and not "oracle" or "hpa-defaults"`,
      });
    seen.add(entry.name);
  });
};

export const policiesSchema = z
  .array(namedPolicySchema)
  .min(1, { message: "at least one policy" })
  .max(MAX_SIMULATION_POLICIES, { message: `at most ${MAX_SIMULATION_POLICIES} policies` })
  .superRefine(uniqueNames);

/** The largest request count of one step: far past any fleet, and small enough that every metric stays finite. */
export const MAX_STEP_REQUESTS = 1e12;

const pointsSchema = z
  .array(
    z
      .number()
      .nonnegative({ message: "a request count must be ≥ 0" })
      .max(MAX_STEP_REQUESTS, { message: `a request count must be at most ${MAX_STEP_REQUESTS}` }),
  )
  .min(1, { message: "at least one point" })
  .max(MAX_SIMULATION_STEPS, { message: `at most ${MAX_SIMULATION_STEPS} steps` });

/** The CSV text of `../shared/traces/` (`t_seconds,requests`), checked here so a bad one is a 400 on `trace`. */
const traceTextSchema = z.string().superRefine((text, ctx) => {
  try {
    const trace = parseTrace(text);
    if (trace.requests.length > MAX_SIMULATION_STEPS)
      ctx.addIssue({ code: "custom", message: `at most ${MAX_SIMULATION_STEPS} steps` });
  } catch (error) {
    if (!(error instanceof TraceFormatError)) throw error;
    ctx.addIssue({ code: "custom", message: error.message });
  }
});

/** The trace is `trace` (CSV text) or `points` (request counts) with `stepSeconds`: exactly one of the two. */
export const simulateRequestSchema = simulationOptionsSchema
  .extend({
    trace: traceTextSchema.optional(),
    points: pointsSchema.optional(),
    stepSeconds: z.number().positive().max(86_400).optional(),
    policies: policiesSchema,
  })
  .superRefine((value, ctx) => {
    if ((value.trace === undefined) === (value.points === undefined))
      ctx.addIssue({
        code: "custom",
        path: ["trace"],
        message:
          "give the trace as CSV text (trace) or as request counts (points with stepSeconds), not both",
      });
    else if (value.points !== undefined && value.stepSeconds === undefined)
      ctx.addIssue({ code: "custom", path: ["stepSeconds"], message: "required with points" });
  });
export type SimulateRequest = z.output<typeof simulateRequestSchema>;
export type SimulateRequestInput = z.input<typeof simulateRequestSchema>;
export type SimulationOptions = z.output<typeof simulationOptionsSchema>;

/** The replay window and candidates; the trace comes from the proxy's rollups. */
export const replayRequestSchema = simulationOptionsSchema
  .extend({
    from: z.number().int().nonnegative({ message: "must be epoch milliseconds" }),
    to: z.number().int().nonnegative({ message: "must be epoch milliseconds" }),
    /** Default: the proxy's current policy, named "current". */
    policies: policiesSchema.optional(),
  })
  .superRefine((value, ctx) => {
    if (value.to <= value.from) ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
    else if (value.to - value.from > MAX_REPLAY_WINDOW_MS)
      ctx.addIssue({
        code: "custom",
        path: ["to"],
        message: `the window is at most ${MAX_REPLAY_WINDOW_MS / 86_400_000} days`,
      });
  });
export type ReplayRequest = z.output<typeof replayRequestSchema>;

export const simulationMetricsSchema = z.object(
  Object.fromEntries(COMPARED_METRICS.map((key) => [key, z.number()])) as Record<ComparedMetric, z.ZodNumber>,
);
export type SimulationMetrics = z.output<typeof simulationMetricsSchema>;

export const simulationRowSchema = z.object({
  name: z.string(),
  kind: z.enum(["policy", "hpa", "oracle"]),
  metrics: simulationMetricsSchema,
  /** The unnormalised forms (replica-hours, minutes, adaptations). */
  unnormalized: z.record(z.string(), z.number()),
  /** This row minus the oracle, per metric. */
  fromOracle: simulationMetricsSchema,
});

export const simulationResultSchema = z.object({
  /** The capacity model, stated in every report. */
  capacity: z.string(),
  stepSeconds: z.number(),
  steps: z.number().int(),
  durationMinutes: z.number(),
  rows: z.array(simulationRowSchema),
  /** Downsampled (bucket means) for charts: `at` epoch ms, demand req/s, each row's supply req/s and replicas. */
  series: z.object({
    at: z.array(z.number()),
    demandRps: z.array(z.number()),
    supplyRps: z.record(z.string(), z.array(z.number())),
    replicas: z.record(z.string(), z.array(z.number())),
  }),
});
export type SimulationReport = z.output<typeof simulationResultSchema>;

/** The trace a request names, parsed (the schema has already checked it). */
export function traceOfRequest(request: Pick<SimulateRequest, "trace" | "points" | "stepSeconds">): Trace {
  if (request.trace !== undefined) return parseTrace(request.trace);
  return { startSeconds: 0, stepSeconds: request.stepSeconds!, requests: [...request.points!] };
}

/**
 * The capacity model: the given one, else one scaled to the trace as the backtest scales it: the peak step's
 * rate needs 80% of the first policy's maxReplicas at the SLO's utilisation (0.8 with the default latency SLO).
 */
export function capacityOf(
  input: SimulateRequest["capacity"],
  trace: Trace,
  policies: readonly ScalingPolicy[],
): CapacityModel {
  if (input) {
    const { kind: _kind, ...options } = input;
    return linearCapacityModel(options);
  }
  let peak = 0;
  for (const count of trace.requests) if (count > peak) peak = count;
  const peakReplicas = Math.max(1, Math.round(0.8 * (policies[0]?.maxReplicas ?? 10)));
  return linearCapacityModel({
    perReplicaRps: Math.max(peak / trace.stepSeconds / (peakReplicas * 0.8), 1e-6),
  });
}

/** Bucket means of `values` over `points` equal index ranges (all of them when shorter). */
function downsample(values: readonly number[], points: number): number[] {
  const n = values.length;
  if (n <= points) return [...values];
  const out = new Array<number>(points);
  for (let b = 0; b < points; b++) {
    const lo = Math.floor((b * n) / points);
    const hi = Math.floor(((b + 1) * n) / points);
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += values[i]!;
    out[b] = sum / Math.max(1, hi - lo);
  }
  return out;
}

function pick(metrics: Record<ComparedMetric, number>): SimulationMetrics {
  const out = {} as SimulationMetrics;
  for (const key of COMPARED_METRICS) out[key] = metrics[key];
  return out;
}

/** What runSimulation takes: the options, the parsed trace and the named policies. */
export type RunSimulationInput = SimulationOptions & {
  trace: Trace;
  policies: ReadonlyArray<{ name: string; policy: ScalingPolicy }>;
  /** Epoch ms of the trace's first step (a replay's window start). */
  startAt?: number;
};

/**
 * Runs a parsed request: compare() per policy (the first also runs HPA's defaults, with its bounds; the oracle
 * is the same for all), reported for charts. `onProgress` is told after each policy.
 */
export function runSimulation(
  request: RunSimulationInput,
  onProgress?: (done: number, total: number) => void,
): SimulationReport {
  const { trace } = request;
  const capacity = capacityOf(
    request.capacity,
    trace,
    request.policies.map((entry) => entry.policy),
  );
  const first = request.policies[0]!.policy;
  const comparisons = request.policies.map((entry, index) => {
    const comparison = compare({
      trace,
      capacity,
      initialReplicas: request.initialReplicas ?? first.minReplicas,
      candidates: [{ name: entry.name, policy: entry.policy }],
      ...(request.loop === undefined ? {} : { loop: request.loop as LoopModel }),
      warmupSeconds: request.warmupSeconds,
      drainSeconds: request.drainSeconds,
      hpaDefaults: request.hpaDefaults && index === 0,
      ...(request.hpaDefaults ? { hpaBounds: first } : {}),
      keepDecisions: "none",
      ...(request.startAt === undefined ? {} : { startAt: request.startAt }),
    });
    onProgress?.(index + 1, request.policies.length);
    return comparison;
  });
  const head = comparisons[0]!;
  const rows = [
    ...comparisons.map((comparison) => comparison.rows[0]!),
    ...head.rows.filter((row) => row.kind !== "policy"),
  ];
  const points = request.seriesPoints;
  const oracleSteps = head.oracle.steps;
  const supplyRps: Record<string, number[]> = {};
  const replicas: Record<string, number[]> = {};
  for (const row of rows) {
    const steps = row.simulation?.steps ?? oracleSteps;
    supplyRps[row.name] = downsample(
      steps.map((step) => step.supplyRps),
      points,
    );
    replicas[row.name] = downsample(
      steps.map((step) => step.servingReplicas),
      points,
    );
  }
  return {
    capacity: head.capacity,
    stepSeconds: head.stepSeconds,
    steps: trace.requests.length,
    durationMinutes: head.oracle.metrics.durationMinutes,
    rows: rows.map((row) => ({
      name: row.name,
      kind: row.kind,
      metrics: pick(row.metrics),
      unnormalized: { ...row.metrics.unnormalized },
      fromOracle: pick(row.fromOracle),
    })),
    series: {
      at: downsample(
        oracleSteps.map((step) => step.at),
        points,
      ).map(Math.round),
      demandRps: downsample(
        oracleSteps.map((step) => step.demandRps),
        points,
      ),
      supplyRps,
      replicas,
    },
  };
}

/** Runs a request as the schema parsed it (the API's and the CLI's entry). */
export function runSimulateRequest(
  request: SimulateRequest,
  onProgress?: (done: number, total: number) => void,
): SimulationReport {
  return runSimulation({ ...request, trace: traceOfRequest(request) }, onProgress);
}

/** One per-minute rollup as a replay reads it: the per-replica mean rate and the mean replica count. */
export interface RollupLoad {
  bucket: number;
  requestRateAvg: number;
  replicasAvg: number | null;
}

/**
 * The proxy's demand per minute over [from, to) as a trace of request counts (60 s steps): a rollup's fleet
 * rate is its per-replica mean rate × its mean replica count (`fallbackReplicas` where no sample carried
 * one). A minute without a rollup (no reports) repeats the last known minute (0 before the first); `gapMinutes`
 * says how many were filled.
 */
export function traceFromRollups(
  rollups: readonly RollupLoad[],
  window: { from: number; to: number; fallbackReplicas: number },
): { trace: Trace; gapMinutes: number; startAt: number } {
  const start = Math.ceil(window.from / 60_000) * 60_000;
  const n = Math.max(0, Math.ceil((window.to - start) / 60_000));
  const byMinute = new Map<number, number>();
  for (const rollup of rollups)
    byMinute.set(rollup.bucket, rollup.requestRateAvg * (rollup.replicasAvg ?? window.fallbackReplicas) * 60);
  const requests = new Array<number>(n);
  let last = 0;
  let gapMinutes = 0;
  for (let i = 0; i < n; i++) {
    const count = byMinute.get(start + i * 60_000);
    if (count === undefined) gapMinutes++;
    else last = count;
    requests[i] = last;
  }
  return { trace: { startSeconds: 0, stepSeconds: 60, requests }, gapMinutes, startAt: start };
}
