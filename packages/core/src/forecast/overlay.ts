/**
 * The proxy page's forecast overlay: a proxy's fleet request rate per forecast bucket, actual next to forecast,
 * over a past window and into the future, from the same demand history and Holt-Winters fit the predictive
 * strategy decides on. Past buckets carry the fit's one-step forecast (what it predicted for the bucket from
 * the buckets before), future buckets its forecast from the end of the history.
 */
import { z } from "zod";
import {
  type DemandHistory,
  fitDemand,
  missingHistoryReason,
  PREDICTIVE_HISTORY_DAYS,
} from "../strategies/predictive.ts";
import { bucketize, DEFAULT_BUCKET_MINUTES, forecastDemand, oneStepForecasts } from "./holt-winters.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export const DEFAULT_OVERLAY_HOURS_BACK = 24;
/** The overlay's past reaches at most as far as the history the strategy fits on. */
export const MAX_OVERLAY_HOURS_BACK = PREDICTIVE_HISTORY_DAYS * 24;
export const DEFAULT_OVERLAY_HOURS_AHEAD = 6;
export const MAX_OVERLAY_HOURS_AHEAD = 24;

export const demandForecastPointSchema = z.object({
  /** Start of the bucket (epoch ms). */
  at: z.number(),
  /** Mean fleet request rate (req/s) over the bucket; null for buckets not (fully) observed yet. */
  actual: z.number().nullable(),
  /** The forecast for the bucket (req/s); null without a model and for the history's first day. */
  forecast: z.number().nullable(),
});

export const demandForecastSchema = z.object({
  /** The overlay's "now" (epoch ms): past buckets start before it, future ones after. */
  now: z.number(),
  bucketMinutes: z.number().int(),
  /** Minutes of demand history the fit had. */
  historyMinutes: z.number().int(),
  /** Null when there is a forecast; otherwise why not (under a day of history). */
  unavailableReason: z.string().nullable(),
  /** Buckets oldest first, from now − hoursBack to now + hoursAhead. */
  points: z.array(demandForecastPointSchema),
});
export type DemandForecast = z.output<typeof demandForecastSchema>;

/**
 * The overlay for a proxy's demand history (as the rollups give it; fitted here unless `history.model` is
 * set) at `now`: buckets starting in [now − hoursBack, now + hoursAhead).
 */
export function demandForecastOverlay(
  history: DemandHistory,
  args: { now: number; hoursBack?: number; hoursAhead?: number },
): DemandForecast {
  const from = args.now - (args.hoursBack ?? DEFAULT_OVERLAY_HOURS_BACK) * HOUR_MS;
  const until = args.now + (args.hoursAhead ?? DEFAULT_OVERLAY_HOURS_AHEAD) * HOUR_MS;
  const model = history.model ?? fitDemand(history.perMinute, history.endsAt).model;
  const bucketMinutes = model?.bucketMinutes ?? DEFAULT_BUCKET_MINUTES;
  const bucketMs = bucketMinutes * MINUTE_MS;
  // Buckets count from the history's first minute, as the fit's do.
  const startsAt = history.endsAt - history.perMinute.length * MINUTE_MS;
  const actuals = bucketize(history.perMinute, bucketMinutes);
  const fitted = model ? oneStepForecasts(model, history.perMinute) : [];
  const points: DemandForecast["points"] = [];
  const first = Math.max(0, Math.ceil((from - startsAt) / bucketMs));
  for (let bucket = first; startsAt + bucket * bucketMs < until; bucket++) {
    if (bucket >= actuals.length && !model) break;
    const ahead = model ? bucket - model.lastBucket : 0;
    points.push({
      at: startsAt + bucket * bucketMs,
      actual: actuals[bucket] ?? null,
      forecast: model && ahead > 0 ? forecastDemand(model, ahead * bucketMinutes) : (fitted[bucket] ?? null),
    });
  }
  return {
    now: args.now,
    bucketMinutes,
    historyMinutes: history.perMinute.length,
    unavailableReason: model ? null : missingHistoryReason(history.perMinute.length),
    points,
  };
}
