import type { StrategyName } from "../policy.ts";
import { stepStrategy } from "./step.ts";
import { targetTrackingStrategy } from "./target-tracking.ts";
import { thresholdStrategy } from "./threshold.ts";
import type { Strategy } from "./types.ts";

export type { StepBasis } from "./step.ts";
export { matchStep, roundPercentChange, stepStrategy } from "./step.ts";
export type { MetricReplicaInput, MetricReplicaResult, TargetTrackingBasis } from "./target-tracking.ts";
export { hpaReplicasForMetric, metricLabel, targetTrackingStrategy } from "./target-tracking.ts";
export type { ThresholdBasis } from "./threshold.ts";
export { thresholdStrategy } from "./threshold.ts";
export type { Proposal, Strategy, StrategyInput } from "./types.ts";

/** The strategy registry: one entry per name in STRATEGY_NAMES. */
export const strategies = {
  threshold: thresholdStrategy,
  targetTracking: targetTrackingStrategy,
  step: stepStrategy,
} as const satisfies { [Name in StrategyName]: Strategy<{ strategy: Name }> };

/** What each strategy's decision is based on, discriminated by `strategy`. */
export type StrategyBasis = ReturnType<(typeof strategies)[StrategyName]["propose"]>["basis"];
