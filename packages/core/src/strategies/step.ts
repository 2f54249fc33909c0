/**
 * AWS step scaling (EC2 Auto Scaling / Application Auto Scaling): a scale-out alarm and a scale-in alarm,
 * each with step adjustments keyed on the breach (metric − threshold).
 * - Above the threshold a step's lower bound is inclusive and its upper bound exclusive; below it, the lower
 *   bound is exclusive and the upper bound inclusive (AWS StepAdjustment docs).
 * - PercentChangeInCapacity rounds: > 1 down, (0, 1) to 1, (−1, 0) to −1, < −1 up; MinAdjustmentMagnitude
 *   raises a smaller percent change to that many replicas.
 * - When both alarms fire (misconfigured thresholds) scale-out wins, as AWS prefers the larger capacity.
 */
import { z } from "zod";
import type { Limit } from "../decision.ts";
import { formatNumber, replicas } from "../format.ts";
import { BUILTIN_METRICS } from "../metrics.ts";
import { STEP_ADJUSTMENT_TYPES, type StepAdjustment } from "../policy.ts";
import { metricLabel } from "./target-tracking.ts";
import type { Strategy, StrategyInput } from "./types.ts";

export const stepBasisSchema = z.object({
  strategy: z.literal("step"),
  metric: z.string(),
  /** The metric's value per serving replica; null when it has no live reading. */
  value: z.number().nullable(),
  /** The alarm in breach, if any. */
  alarm: z.enum(["scaleOut", "scaleIn"]).nullable(),
  scaleOutThreshold: z.number(),
  scaleInThreshold: z.number(),
  adjustmentType: z.enum(STEP_ADJUSTMENT_TYPES),
  /** The matching step's scalingAdjustment; null when no alarm fired or no step matched. */
  scalingAdjustment: z.number().int().nullable(),
  /** Replicas added (negative: removed) after rounding and MinAdjustmentMagnitude. */
  change: z.number().int(),
  recommendedReplicas: z.number().int(),
});
export type StepBasis = z.output<typeof stepBasisSchema>;

function metricValue(input: StrategyInput, metric: string): number | undefined {
  if (metric === "loadScore") return input.loadScore;
  if (metric.startsWith("custom.")) return input.metrics.custom?.[metric.slice(7)];
  if ((BUILTIN_METRICS as readonly string[]).includes(metric)) {
    return input.metrics[metric as (typeof BUILTIN_METRICS)[number]];
  }
  return undefined;
}

/**
 * The step whose interval holds the breach. For the scale-out alarm (metric at or above its threshold) a lower
 * bound is inclusive and an upper bound exclusive; for the scale-in alarm the other way round.
 */
export function matchStep(
  steps: readonly StepAdjustment[],
  breach: number,
  alarm: "scaleOut" | "scaleIn",
): StepAdjustment | undefined {
  const above = alarm === "scaleOut";
  for (const step of steps) {
    const lower = step.metricIntervalLowerBound ?? Number.NEGATIVE_INFINITY;
    const upper = step.metricIntervalUpperBound ?? Number.POSITIVE_INFINITY;
    const inside = above ? lower <= breach && breach < upper : lower < breach && breach <= upper;
    if (inside) return step;
  }
  return undefined;
}

/** AWS rounding of a non-integer PercentChangeInCapacity result. */
export function roundPercentChange(raw: number): number {
  if (raw >= 1) return Math.floor(raw);
  if (raw > 0) return 1;
  if (raw <= -1) return Math.ceil(raw);
  if (raw < 0) return -1;
  return 0;
}

export const stepStrategy: Strategy<StepBasis> = {
  name: "step",
  usesCooldowns: false,
  propose(input) {
    const { policy, currentReplicas } = input;
    const config = policy.stepScaling;
    const limits: Limit[] = [];
    const value = metricValue(input, config.metric);
    let alarm: StepBasis["alarm"] = null;
    let step: StepAdjustment | undefined;
    let change = 0;
    let recommended = currentReplicas;

    if (value === undefined) {
      limits.push({
        kind: "noMetrics",
        liveSamples: input.observation.liveSamples,
        maxAgeSeconds: policy.metricsMaxAgeSeconds,
        metric: config.metric,
      });
    } else {
      if (value >= config.scaleOut.threshold) {
        alarm = "scaleOut";
        step = matchStep(config.scaleOut.stepAdjustments, value - config.scaleOut.threshold, alarm);
      } else if (value <= config.scaleIn.threshold) {
        alarm = "scaleIn";
        step = matchStep(config.scaleIn.stepAdjustments, value - config.scaleIn.threshold, alarm);
      }
      if (step !== undefined) {
        const adjustment = step.scalingAdjustment;
        if (config.adjustmentType === "ExactCapacity") {
          change = adjustment - currentReplicas;
        } else if (config.adjustmentType === "ChangeInCapacity") {
          change = adjustment;
        } else {
          change = roundPercentChange((currentReplicas * adjustment) / 100);
          const magnitude = config.minAdjustmentMagnitude;
          if (magnitude !== undefined && adjustment !== 0 && Math.abs(change) < magnitude) {
            const raised = Math.sign(adjustment) * magnitude;
            limits.push({
              kind: "minAdjustmentMagnitude",
              value: magnitude,
              from: currentReplicas + change,
              to: currentReplicas + raised,
            });
            change = raised;
          }
        }
        recommended = Math.max(0, currentReplicas + change);
        change = recommended - currentReplicas;
      }
    }

    const threshold = alarm === "scaleIn" ? config.scaleIn.threshold : config.scaleOut.threshold;
    return {
      recommendedReplicas: recommended,
      metrics:
        value === undefined
          ? []
          : [
              {
                metric: config.metric,
                value,
                target: threshold,
                ratio: value / threshold,
                proposedReplicas: recommended,
                withinTolerance: alarm === null,
              },
            ],
      limits,
      basis: {
        strategy: "step",
        metric: config.metric,
        value: value ?? null,
        alarm,
        scaleOutThreshold: config.scaleOut.threshold,
        scaleInThreshold: config.scaleIn.threshold,
        adjustmentType: config.adjustmentType,
        scalingAdjustment: step?.scalingAdjustment ?? null,
        change,
        recommendedReplicas: recommended,
      },
    };
  },
  describe(basis) {
    const to = replicas(basis.recommendedReplicas);
    if (basis.value === null) return `no live ${basis.metric} reading → ${to}`;
    const reading = metricLabel(basis.metric, basis.value);
    if (basis.alarm === null) {
      return `${reading} between scale-in ${basis.scaleInThreshold} and scale-out ${basis.scaleOutThreshold} → ${to}`;
    }
    const threshold = basis.alarm === "scaleOut" ? basis.scaleOutThreshold : basis.scaleInThreshold;
    const breach = basis.value - threshold;
    const side =
      basis.alarm === "scaleOut"
        ? `≥ scale-out threshold ${threshold} (+${formatNumber(breach)})`
        : `≤ scale-in threshold ${threshold} (${formatNumber(breach)})`;
    if (basis.scalingAdjustment === null) return `${reading} ${side}, no step adjustment matches → ${to}`;
    const signed = (n: number) => (n >= 0 ? `+${n}` : String(n));
    const step =
      basis.adjustmentType === "ExactCapacity"
        ? `exact ${basis.scalingAdjustment}`
        : basis.adjustmentType === "PercentChangeInCapacity"
          ? `step ${signed(basis.scalingAdjustment)}% (${signed(basis.change)})`
          : `step ${signed(basis.scalingAdjustment)}`;
    return `${reading} ${side} → ${step} → ${to}`;
  },
};
