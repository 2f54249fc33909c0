import type { MetricSample } from "./metrics.ts";
import type { FleetMetrics } from "./observe.ts";
import type { StrategyName } from "./policy.ts";
import type { StrategyBasis } from "./strategies/index.ts";

export type ScaleDirection = "scale_up" | "scale_down";
export type ScalingAction = ScaleDirection | "none";

/** A scale that happened (or is in flight), as cooldowns and rate policies need it. Times in epoch ms. */
export interface ScaleEventRecord {
  at: number;
  fromReplicas: number;
  toReplicas: number;
}

/** A past recommendation, kept for HPA stabilization windows. */
export interface RecommendationRecord {
  at: number;
  replicas: number;
}

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
}

/** One metric's proposal (target tracking) or reading (threshold, step). */
export interface MetricProposal {
  metric: string;
  value: number;
  target: number;
  ratio: number;
  proposedReplicas: number;
  withinTolerance: boolean;
}

/** Every limit that changed (or held) the number, with the values involved. */
export type Limit =
  /** No live sample at all, or (with `metric`) none carrying that metric. */
  | { kind: "noMetrics"; liveSamples: number; maxAgeSeconds: number; metric?: string }
  | { kind: "tolerance"; direction: ScaleDirection; tolerance: number; ratio: number; metric?: string }
  | {
      kind: "cooldown";
      direction: ScaleDirection;
      cooldownSeconds: number;
      remainingSeconds: number;
      lastScaleAt: number;
    }
  | { kind: "stabilization"; direction: ScaleDirection; windowSeconds: number; from: number; to: number }
  | {
      kind: "ratePolicy";
      direction: ScaleDirection;
      selectPolicy: "Max" | "Min" | "Disabled";
      policy?: { type: "Pods" | "Percent"; value: number; periodSeconds: number };
      from: number;
      to: number;
    }
  | { kind: "minReplicas"; value: number; from: number; to: number }
  | { kind: "maxReplicas"; value: number; from: number; to: number }
  | { kind: "tierCap"; value: number; from: number; to: number }
  | { kind: "budget"; value: number; from: number; to: number }
  /** `loadFactor`: how much a fleet-average reading was raised to put unhealthy replicas' share on serving ones. */
  | { kind: "health"; unhealthyReplicas: number; servingReplicas: number; loadFactor?: number }
  | { kind: "minAdjustmentMagnitude"; value: number; from: number; to: number }
  /**
   * KEDA's fallback: metrics missed `missedIntervals` ≥ `failureThreshold` reconcile intervals in a row;
   * `replicas` is the policy's fallback count (absent: hold).
   */
  | {
      kind: "fallback";
      missedIntervals: number;
      failureThreshold: number;
      replicas?: number;
      from: number;
      to: number;
    }
  /** A scale of this proxy was already in flight, so this one is held until it ends. */
  | { kind: "inFlight"; eventId: string; toReplicas: number; from: number; to: number }
  /**
   * The policy's mode: `dryRun` records the decision and does not execute it (the count is kept, to show what
   * would happen); `off` pauses scaling, so the count is held at the current one.
   */
  | { kind: "mode"; mode: "dryRun" | "off"; from: number; to: number };

export type LimitKind = Limit["kind"];

export interface Decision {
  strategy: StrategyName;
  action: ScalingAction;
  currentReplicas: number;
  /** What the strategy proposed, before behavior and limits. */
  recommendedReplicas: number;
  /** What the proxy should run after every limit. */
  desiredReplicas: number;
  /** The seed's composite score of the live samples' averages (health-adjusted), when there are any. */
  loadScore: number | null;
  /** Per metric: the reading, its target (or threshold) and what it proposed. */
  metrics: MetricProposal[];
  /** The averaged live samples as reported (null without live samples). */
  averages?: FleetMetrics | null;
  /** The facts the strategy based its recommendation on (null without live samples). */
  basis?: StrategyBasis | null;
  limits: Limit[];
  /** One sentence a person can read. */
  explanation: string;
  /** Append to `ObservedState.recommendations` for the next decision's stabilization window. */
  recommendation: RecommendationRecord;
  evaluatedAt: number;
}
