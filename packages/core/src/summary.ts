/** The load-score trend of a scaling summary (the summary itself is computed in SQL by the db package). */
export const TREND_DIRECTIONS = ["rising", "falling", "steady"] as const;
export type TrendDirection = (typeof TREND_DIRECTIONS)[number];

/** A fitted change across the window below this many score points is "steady". */
export const STEADY_TREND_POINTS = 5;

/**
 * The direction of a least-squares load-score trend: its slope (score points per hour; null when there are
 * fewer than two points) times the hours its samples span, against STEADY_TREND_POINTS.
 */
export function trendDirection(slopePerHour: number | null, spanHours: number): TrendDirection {
  const change = (slopePerHour ?? 0) * spanHours;
  if (Math.abs(change) < STEADY_TREND_POINTS) return "steady";
  return change > 0 ? "rising" : "falling";
}
