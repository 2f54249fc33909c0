import { z } from "zod";
import { formatNumber, replicas } from "../format.ts";
import type { Strategy } from "./types.ts";

export const thresholdBasisSchema = z.object({
  strategy: z.literal("threshold"),
  loadScore: z.number(),
  scaleUpThreshold: z.number(),
  scaleDownThreshold: z.number(),
  /** Where the score lies: above scaleUpThreshold, below scaleDownThreshold, or between them. */
  verdict: z.enum(["above", "below", "within"]),
  recommendedReplicas: z.number().int(),
});
export type ThresholdBasis = z.output<typeof thresholdBasisSchema>;

/**
 * The seed's algorithm: one step up when the load score is above scaleUpThreshold, one step down when below
 * scaleDownThreshold. Bounds and cooldowns are applied by the engine so that each shows up as a limit.
 */
export const thresholdStrategy: Strategy<ThresholdBasis> = {
  name: "threshold",
  usesCooldowns: true,
  propose({ policy, currentReplicas, loadScore }) {
    let verdict: ThresholdBasis["verdict"] = "within";
    let recommended = currentReplicas;
    let target = policy.scaleUpThreshold;
    if (loadScore > policy.scaleUpThreshold) {
      verdict = "above";
      recommended = currentReplicas + policy.scaleUpStep;
    } else if (loadScore < policy.scaleDownThreshold) {
      verdict = "below";
      target = policy.scaleDownThreshold;
      recommended = Math.max(0, currentReplicas - policy.scaleDownStep);
    }
    return {
      recommendedReplicas: recommended,
      metrics: [
        {
          metric: "loadScore",
          value: loadScore,
          target,
          ratio: loadScore / target,
          proposedReplicas: recommended,
          withinTolerance: verdict === "within",
        },
      ],
      limits: [],
      basis: {
        strategy: "threshold",
        loadScore,
        scaleUpThreshold: policy.scaleUpThreshold,
        scaleDownThreshold: policy.scaleDownThreshold,
        verdict,
        recommendedReplicas: recommended,
      },
    };
  },
  describe(basis) {
    const score = formatNumber(basis.loadScore);
    const to = replicas(basis.recommendedReplicas);
    if (basis.verdict === "above")
      return `load score ${score} > scale-up threshold ${basis.scaleUpThreshold} → ${to}`;
    if (basis.verdict === "below") {
      return `load score ${score} < scale-down threshold ${basis.scaleDownThreshold} → ${to}`;
    }
    return `load score ${score} within ${basis.scaleDownThreshold}–${basis.scaleUpThreshold} → ${to}`;
  },
};
