import type { ScalingPolicy } from "./policy.ts";

/** The readings the seed's composite score weighs. */
export interface ScoreInputs {
  cpuPercent: number;
  memoryPercent: number;
  requestRate: number;
  errorRatePercent: number;
}

/** The seed's weights: they are requirements, not tuning knobs. */
export const LOAD_SCORE_WEIGHTS = { cpu: 0.4, memory: 0.3, requestRate: 0.2, errorRate: 0.1 } as const;

/**
 * The seed's composite load score in [0, 100]:
 * 0.4·cpu + 0.3·memory + 0.2·min(100, requestRate / targetRequestRate · 100) + 0.1·errorRate, capped at 100.
 */
export function computeLoadScore(
  metrics: ScoreInputs,
  policy: Pick<ScalingPolicy, "targetRequestRate">,
): number {
  const requestShare = Math.min(100, (metrics.requestRate / policy.targetRequestRate) * 100);
  const score =
    LOAD_SCORE_WEIGHTS.cpu * metrics.cpuPercent +
    LOAD_SCORE_WEIGHTS.memory * metrics.memoryPercent +
    LOAD_SCORE_WEIGHTS.requestRate * requestShare +
    LOAD_SCORE_WEIGHTS.errorRate * metrics.errorRatePercent;
  // NaN-safe clamp: a reading outside the schema (never parsed) must not leak outside [0, 100].
  if (!(score > 0)) return 0;
  return Math.min(score, 100);
}
