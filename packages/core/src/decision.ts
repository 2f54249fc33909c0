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
   * Added by the control loop, not by `decide`: metrics missed `missedIntervals` ≥ `failureThreshold`
   * reconcile intervals; `replicas` is the policy's fallback count (absent: hold).
   */
  | {
      kind: "fallback";
      missedIntervals: number;
      failureThreshold: number;
      replicas?: number;
      from: number;
      to: number;
    }
  /** Added by the control loop: a scale of this proxy was already in flight, so this one was skipped. */
  | { kind: "inFlight"; eventId: string; toReplicas: number; from: number; to: number }
  /** Added by the control loop: the policy's mode is dryRun, so the decision was recorded and not executed. */
  | { kind: "dryRun" };

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
