import type { Limit, MetricProposal } from "../decision.ts";
import type { FleetMetrics, FleetObservation } from "../observe.ts";
import type { ScalingPolicy, StrategyName } from "../policy.ts";
import type { DemandHistory } from "./predictive.ts";

/** What every strategy sees: the policy and the fleet as the engine prepared it. */
export interface StrategyInput {
  policy: ScalingPolicy;
  currentReplicas: number;
  /** Replicas reported unhealthy (at most currentReplicas). */
  unhealthyReplicas: number;
  /** currentReplicas − unhealthyReplicas. */
  servingReplicas: number;
  /** Serving replicas the per-replica readings stand for (HPA's ready pods with metrics). */
  readyWithMetrics: number;
  /** Serving replicas without a reading (HPA's missing pods). */
  missingReplicas: number;
  /** Per serving replica: the averages, with a fleet average's share of unhealthy replicas moved to serving ones. */
  metrics: FleetMetrics;
  /** The seed's score of `metrics`; 100 when no replica is serving. */
  loadScore: number;
  observation: FleetObservation;
  /** The decision time (epoch ms). */
  now: number;
  /** The fleet's per-minute demand history (predictive only). */
  demand?: DemandHistory | undefined;
}

/** What a strategy proposes before cooldowns, behavior and bounds. */
export interface Proposal<Basis extends { strategy: StrategyName }> {
  recommendedReplicas: number;
  metrics: MetricProposal[];
  /** Limits the strategy itself applied (tolerance, minAdjustmentMagnitude, a missing metric). */
  limits: Limit[];
  /** The facts the explanation cites. */
  basis: Basis;
}

/**
 * A scaling strategy. Adding one: a file in this folder, its name in STRATEGY_NAMES (policy.ts), its entry in
 * the registry (index.ts).
 */
export interface Strategy<Basis extends { strategy: StrategyName } = { strategy: StrategyName }> {
  readonly name: Basis["strategy"];
  /** Whether the seed's cooldowns (scaleUp/scaleDownCooldownSeconds) gate this strategy's moves. */
  readonly usesCooldowns: boolean;
  propose(input: StrategyInput): Proposal<Basis>;
  /** The reasoning half of the explanation, e.g. "cpu 78% vs target 50% → 5 replicas". */
  describe(basis: Basis): string;
}
