import type { ScaleDirection } from "./decision.ts";

/** A scaling event as the summary needs it. Times in epoch ms. */
export interface SummaryEvent {
  at: number;
  action: ScaleDirection;
  fromReplicas: number;
  toReplicas: number;
  status: string;
  durationMs?: number | null;
}

/** One load-score reading over time. */
export interface LoadPoint {
  at: number;
  loadScore: number;
}

export type TrendDirection = "rising" | "falling" | "steady";

export interface ScalingSummary {
  hoursBack: number;
  /** Events in the window, newest first. */
  events: SummaryEvent[];
  totals: {
    events: number;
    scaleUps: number;
    scaleDowns: number;
    completed: number;
    failed: number;
    /** Net replicas added by completed events. */
    netReplicaChange: number;
    avgDurationMs: number | null;
  };
  load: { samples: number; avg: number; min: number; max: number; latest: number } | null;
  /** Least-squares slope of the load score; null with fewer than two points. */
  trend: { direction: TrendDirection; slopePerHour: number } | null;
}

/** A fitted change across the window below this many score points is "steady". */
export const STEADY_TREND_POINTS = 5;

/** Direction and slope (score points per hour) of the least-squares line through the points. */
export function loadTrend(points: readonly LoadPoint[]): ScalingSummary["trend"] {
  if (points.length < 2) return null;
  let sumT = 0;
  let sumY = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const p of points) {
    sumT += p.at;
    sumY += p.loadScore;
    if (p.at < first) first = p.at;
    if (p.at > last) last = p.at;
  }
  const n = points.length;
  const meanT = sumT / n;
  const meanY = sumY / n;
  let covariance = 0;
  let variance = 0;
  for (const p of points) {
    covariance += (p.at - meanT) * (p.loadScore - meanY);
    variance += (p.at - meanT) ** 2;
  }
  if (variance === 0) return { direction: "steady", slopePerHour: 0 };
  const slopePerHour = (covariance / variance) * 3_600_000;
  const change = (slopePerHour * (last - first)) / 3_600_000;
  const direction: TrendDirection =
    Math.abs(change) < STEADY_TREND_POINTS ? "steady" : change > 0 ? "rising" : "falling";
  return { direction, slopePerHour };
}

/** The seed's getScalingSummary, pure: events and load over the last `hoursBack` hours before `now`. */
export function summarizeScaling(input: {
  events: readonly SummaryEvent[];
  loadPoints: readonly LoadPoint[];
  now: number;
  hoursBack: number;
}): ScalingSummary {
  const since = input.now - input.hoursBack * 3_600_000;
  const events = input.events.filter((e) => e.at >= since && e.at <= input.now).sort((a, b) => b.at - a.at);
  let scaleUps = 0;
  let completed = 0;
  let failed = 0;
  let netReplicaChange = 0;
  let durationSum = 0;
  let durations = 0;
  for (const e of events) {
    if (e.action === "scale_up") scaleUps++;
    if (e.status === "completed") {
      completed++;
      netReplicaChange += e.toReplicas - e.fromReplicas;
    }
    if (e.status === "failed") failed++;
    if (e.durationMs !== undefined && e.durationMs !== null) {
      durationSum += e.durationMs;
      durations++;
    }
  }
  const points = input.loadPoints.filter((p) => p.at >= since && p.at <= input.now);
  let load: ScalingSummary["load"] = null;
  if (points.length > 0) {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    let latest = points[0]!;
    for (const p of points) {
      sum += p.loadScore;
      if (p.loadScore < min) min = p.loadScore;
      if (p.loadScore > max) max = p.loadScore;
      if (p.at > latest.at) latest = p;
    }
    load = { samples: points.length, avg: sum / points.length, min, max, latest: latest.loadScore };
  }
  return {
    hoursBack: input.hoursBack,
    events,
    totals: {
      events: events.length,
      scaleUps,
      scaleDowns: events.length - scaleUps,
      completed,
      failed,
      netReplicaChange,
      avgDurationMs: durations === 0 ? null : durationSum / durations,
    },
    load,
    trend: loadTrend(points),
  };
}
