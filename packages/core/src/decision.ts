import { z } from "zod";
import type { MetricSample } from "./metrics.ts";
import { fleetMetricsSchema } from "./observe.ts";
import { HPA_POLICY_TYPES, SELECT_POLICIES, STRATEGY_NAMES } from "./policy.ts";
import { strategyBasisSchema } from "./strategies/index.ts";
import type { DemandHistory } from "./strategies/predictive.ts";

/**
 * A decision as zod schemas: the engine's TypeScript types are inferred from them, and the API's output
 * schemas (and so the OpenAPI document) reuse them, so the shape is written once.
 */

export const SCALE_DIRECTIONS = ["scale_up", "scale_down"] as const;
export const scaleDirectionSchema = z.enum(SCALE_DIRECTIONS);
export type ScaleDirection = z.output<typeof scaleDirectionSchema>;
export const scalingActionSchema = z.enum([...SCALE_DIRECTIONS, "none"]);
export type ScalingAction = z.output<typeof scalingActionSchema>;

/** A scale that happened (or is in flight), as cooldowns and rate policies need it. Times in epoch ms. */
export interface ScaleEventRecord {
  at: number;
  fromReplicas: number;
  toReplicas: number;
}

const replicaCount = z.number().int().min(0);
const epochMs = z.number().int().min(0);

/** A past recommendation, kept for HPA stabilization windows. */
export const recommendationRecordSchema = z.object({ at: epochMs, replicas: replicaCount });
export type RecommendationRecord = z.output<typeof recommendationRecordSchema>;

/** The proxy's scaling event in flight (pending or in progress): there is at most one. */
export interface ActiveEventRecord {
  id: string;
  status: "pending" | "in_progress";
  fromReplicas: number;
  toReplicas: number;
}

/** What the engine knows of a proxy at `now`. Everything is passed in: the engine reads no clock and no store. */
export interface ObservedState {
  currentReplicas: number;
  /** Replicas reported unhealthy: they do not count as serving capacity. */
  unhealthyReplicas: number;
  /** The latest sample of each instance (and possibly one fleet-average sample without `instanceId`). */
  samples: MetricSample[];
  /** Recent scale events, any order. */
  recentEvents: ScaleEventRecord[];
  /** Recent recommendations, any order; the decision returns the one to append. */
  recommendations: RecommendationRecord[];
  /** Caps from outside the policy: the owner's tier, a budget. */
  caps?: { tierMaxReplicas?: number; budgetMaxReplicas?: number };
  /** The newest sample of any instance, however old (epoch ms); null when the proxy never reported. */
  lastSampleAt: number | null;
  /** When the proxy was registered (epoch ms): one that never reported misses intervals from then on. */
  createdAt: number;
  /** The scale in flight: a decision that would scale while one runs is held (the `inFlight` limit). */
  activeEvent: ActiveEventRecord | null;
  /** How often every proxy is reconciled: fallback counts missed intervals of this length. */
  reconcileIntervalMs: number;
  /** Replica-hours run so far this calendar month (policy time zone): the budget's input. */
  replicaHoursThisMonth?: number;
  /** The fleet's per-minute request rate history: loaded only for a predictive policy. */
  demand?: DemandHistory;
  /**
   * The newest stored sample that counted requests (requestRate > 0) within the scale-to-zero grace period, from
   * every server's samples (epoch ms; null: none). Loaded only for a policy that allows 0 replicas; without it the
   * latest samples are read instead.
   */
  lastRequestAt?: number | null;
  /** Requests the proxy's front holds while the fleet is at 0 (a `local` proxy): demand that activates it. */
  heldRequests?: number;
  /**
   * KEDA's activation threshold, from the proxy's metrics source: at 0 replicas, a live request rate above it
   * (requests/s, the whole fleet's) scales to 1. Default 0: any request.
   */
  activationThreshold?: number;
}

/** One metric's proposal (target tracking) or reading (threshold, step). */
export const metricProposalSchema = z.object({
  metric: z.string(),
  value: z.number(),
  target: z.number(),
  ratio: z.number(),
  proposedReplicas: replicaCount,
  withinTolerance: z.boolean(),
});
export type MetricProposal = z.output<typeof metricProposalSchema>;

/** A limit that moved the count `from` one number `to` another. */
const bound = <Kind extends string>(kind: Kind) =>
  z.object({ kind: z.literal(kind), value: replicaCount, from: replicaCount, to: replicaCount });

/** Every limit that changed (or held) the number, with the values involved. */
export const decisionLimitSchema = z
  .discriminatedUnion("kind", [
    /** No live sample at all, or (with `metric`) none carrying that metric. */
    z.object({
      kind: z.literal("noMetrics"),
      liveSamples: z.number().int().min(0),
      maxAgeSeconds: z.number(),
      metric: z.string().optional(),
    }),
    z.object({
      kind: z.literal("tolerance"),
      direction: scaleDirectionSchema,
      tolerance: z.number(),
      ratio: z.number(),
      metric: z.string().optional(),
    }),
    z.object({
      kind: z.literal("cooldown"),
      direction: scaleDirectionSchema,
      cooldownSeconds: z.number(),
      remainingSeconds: z.number(),
      lastScaleAt: epochMs,
    }),
    z.object({
      kind: z.literal("stabilization"),
      direction: scaleDirectionSchema,
      windowSeconds: z.number(),
      from: replicaCount,
      to: replicaCount,
    }),
    z.object({
      kind: z.literal("ratePolicy"),
      direction: scaleDirectionSchema,
      selectPolicy: z.enum(SELECT_POLICIES),
      policy: z
        .object({ type: z.enum(HPA_POLICY_TYPES), value: z.number(), periodSeconds: z.number() })
        .optional(),
      from: replicaCount,
      to: replicaCount,
    }),
    bound("minReplicas"),
    bound("maxReplicas"),
    bound("tierCap"),
    /** With `monthlyBudget`: the budget, not the load, set the number (`spent` so far, `remainingHours` left). */
    bound("budget").extend({
      monthlyBudget: z.number().optional(),
      spent: z.number().optional(),
      remainingHours: z.number().optional(),
    }),
    /**
     * Scheduled capacity: the windows active now set the bounds [minReplicas, maxReplicas] in place of the
     * policy's; `from`→`to` is the count the bounds moved (equal when they did not bind).
     */
    z.object({
      kind: z.literal("schedule"),
      windows: z.array(z.object({ name: z.string(), endsAt: epochMs })),
      timeZone: z.string(),
      minReplicas: replicaCount,
      maxReplicas: replicaCount,
      from: replicaCount,
      to: replicaCount,
    }),
    /** `loadFactor`: how much a fleet-average reading was raised to put unhealthy replicas' share on serving ones. */
    z.object({
      kind: z.literal("health"),
      unhealthyReplicas: replicaCount,
      servingReplicas: replicaCount,
      loadFactor: z.number().optional(),
    }),
    bound("minAdjustmentMagnitude"),
    /**
     * KEDA's fallback: metrics missed `missedIntervals` ≥ `failureThreshold` reconcile intervals in a row;
     * `replicas` is the policy's fallback count (absent: hold).
     */
    z.object({
      kind: z.literal("fallback"),
      missedIntervals: z.number().int().min(0),
      failureThreshold: z.number().int(),
      replicas: replicaCount.optional(),
      from: replicaCount,
      to: replicaCount,
    }),
    /**
     * Scale to zero (minReplicas 0): `to` 0 once no request was seen for `gracePeriodSeconds`; a proposal of 0
     * held at 1 while the last request is younger than that (`idleSeconds` since it).
     */
    z.object({
      kind: z.literal("scaleToZero"),
      idleSeconds: z.number().min(0),
      gracePeriodSeconds: z.number(),
      from: replicaCount,
      to: replicaCount,
    }),
    /**
     * A fleet at 0: `front` (requests held at the front) or `metrics` (a live request rate above the metric source's
     * activation threshold) brought it to `to` ≥ 1; `none`: no demand, held at 0.
     */
    z.object({
      kind: z.literal("activation"),
      source: z.enum(["front", "metrics", "none"]),
      heldRequests: z.number().int().min(0),
      requestRate: z.number(),
      threshold: z.number(),
      from: replicaCount,
      to: replicaCount,
    }),
    /** A scale of this proxy was already in flight, so this one is held until it ends. */
    z.object({
      kind: z.literal("inFlight"),
      eventId: z.string(),
      toReplicas: replicaCount,
      from: replicaCount,
      to: replicaCount,
    }),
    /**
     * The policy's mode: `dryRun` records the decision and does not execute it (the count is kept, to show what
     * would happen); `off` pauses scaling, so the count is held at the current one.
     */
    z.object({
      kind: z.literal("mode"),
      mode: z.enum(["dryRun", "forecastOnly", "off"]),
      from: replicaCount,
      to: replicaCount,
    }),
  ])
  .meta({ id: "DecisionLimit" });
export type Limit = z.output<typeof decisionLimitSchema>;

export type LimitKind = Limit["kind"];

export const decisionSchema = z
  .object({
    strategy: z.enum(STRATEGY_NAMES),
    action: scalingActionSchema,
    currentReplicas: replicaCount,
    /** What the strategy proposed, before behavior and limits. */
    recommendedReplicas: replicaCount,
    /** What the proxy should run after every limit. */
    desiredReplicas: replicaCount,
    /** The seed's composite score of the live samples' averages (health-adjusted), when there are any. */
    loadScore: z.number().nullable(),
    /** Per metric: the reading, its target (or threshold) and what it proposed. */
    metrics: z.array(metricProposalSchema),
    /** The averaged live samples as reported (null without live samples). */
    averages: fleetMetricsSchema.nullish(),
    /** The facts the strategy based its recommendation on (null without live samples). */
    basis: strategyBasisSchema.nullish(),
    limits: z.array(decisionLimitSchema),
    /** One sentence a person can read. */
    explanation: z.string(),
    /** Append to `ObservedState.recommendations` for the next decision's stabilization window. */
    recommendation: recommendationRecordSchema,
    evaluatedAt: epochMs,
  })
  .meta({ id: "Decision" });
export type Decision = z.output<typeof decisionSchema>;
