import { z } from "zod";
import type { StrategyName } from "../policy.ts";
import { predictiveBasisSchema, predictiveStrategy } from "./predictive.ts";
import { stepBasisSchema, stepStrategy } from "./step.ts";
import { targetTrackingBasisSchema, targetTrackingStrategy } from "./target-tracking.ts";
import { thresholdBasisSchema, thresholdStrategy } from "./threshold.ts";
import type { Strategy } from "./types.ts";

export type { DemandHistory, PredictiveBasis } from "./predictive.ts";
export {
  demandRefitDue,
  errorQuantile,
  FORECAST_SERIES_MINUTES,
  FORECAST_SERIES_STEP_MINUTES,
  fitDemand,
  PREDICTIVE_HISTORY_DAYS,
  PREDICTIVE_REFIT_MINUTES,
  predictiveBasisSchema,
  predictiveStrategy,
} from "./predictive.ts";
export type { StepBasis } from "./step.ts";
export { matchStep, roundPercentChange, stepBasisSchema, stepStrategy } from "./step.ts";
export type { MetricReplicaInput, MetricReplicaResult, TargetTrackingBasis } from "./target-tracking.ts";
export {
  hpaReplicasForMetric,
  metricLabel,
  targetTrackingBasisSchema,
  targetTrackingStrategy,
} from "./target-tracking.ts";
export type { ThresholdBasis } from "./threshold.ts";
export { thresholdBasisSchema, thresholdStrategy } from "./threshold.ts";
export type { Proposal, Strategy, StrategyInput } from "./types.ts";

/**
 * The strategy registry: one entry per name in STRATEGY_NAMES. Each strategy proposes its own member of
 * strategyBasisSchema, so a strategy without one fails to compile.
 */
export const strategies = {
  threshold: thresholdStrategy,
  targetTracking: targetTrackingStrategy,
  step: stepStrategy,
  predictive: predictiveStrategy,
} as const satisfies { [Name in StrategyName]: Strategy<Extract<StrategyBasis, { strategy: Name }>> };

/** What each strategy's decision is based on, discriminated by `strategy`: one member per strategy. */
export const strategyBasisSchema = z
  .discriminatedUnion("strategy", [
    thresholdBasisSchema,
    targetTrackingBasisSchema,
    stepBasisSchema,
    predictiveBasisSchema,
  ])
  .meta({ id: "StrategyBasis" });
export type StrategyBasis = z.output<typeof strategyBasisSchema>;
