/**
 * Predictive scaling: a Holt-Winters forecast of the fleet's request rate (forecast/holt-winters.ts) at
 * now + warm-up, plus an optional headroom of predictive.headroomSigmas × the model's recent per-minute error,
 * turned into replicas by target tracking's own calculator against targetRequestRate, and
 * combined with the reactive target-tracking proposal by max, so a forecast only ever adds replicas: it never
 * scales in on its own. Under a day of history (or none) it says so and acts as target tracking.
 */
import { z } from "zod";
import type { HoltWintersModel } from "../forecast/holt-winters.ts";
import {
  fitHoltWinters,
  forecastDemand,
  MINUTES_PER_DAY,
  oneStepForecasts,
} from "../forecast/holt-winters.ts";
import { formatClockTime, formatNumber, replicas } from "../format.ts";
import { PG_INTEGER_MAX } from "../storable.ts";
import {
  hpaReplicasForMetric,
  targetTrackingBasisSchema,
  targetTrackingStrategy,
} from "./target-tracking.ts";
import type { Strategy, StrategyInput } from "./types.ts";

const MINUTE_MS = 60_000;
/** How far the basis' forecast series reaches past now, and its step: small enough for every decision row. */
export const FORECAST_SERIES_MINUTES = 60;
export const FORECAST_SERIES_STEP_MINUTES = 15;

/** The fleet's per-minute demand the predictive strategy forecasts from (ObservedState.demand). */
export interface DemandHistory {
  /** Fleet request rate (req/s) per minute, oldest first, the last minute ending at `endsAt`. */
  perMinute: readonly number[];
  /** End of the last minute in `perMinute` (epoch ms). */
  endsAt: number;
  /** A model already fitted on `perMinute` (the control loop and simulator cache it); fitted here when absent. */
  model?: HoltWintersModel;
  /** The model's recent per-minute error (req/s, residualSpread); computed here from the model when absent. */
  residualSpread?: number;
}

/**
 * The root mean square of the last day's per-minute errors: each minute's demand against the one-step forecast
 * of its bucket. It measures what acting on a bucket's mean misses: the minutes inside a bucket swing around
 * it, and the bucket's mean is itself forecast with an error. Zero when the model has no one-step forecasts.
 */
export function residualSpread(model: HoltWintersModel, perMinute: readonly number[]): number {
  const predicted = oneStepForecasts(model, perMinute);
  const bucket = model.bucketMinutes;
  const from = Math.max(0, predicted.length * bucket - MINUTES_PER_DAY);
  let sum = 0;
  let count = 0;
  for (let i = from; i < predicted.length * bucket; i++) {
    const forecast = predicted[Math.floor(i / bucket)];
    if (forecast === null || forecast === undefined) continue;
    const error = (perMinute[i] ?? 0) - forecast;
    sum += error * error;
    count++;
  }
  return count === 0 ? 0 : Math.sqrt(sum / count);
}

/**
 * How much history the forecast is fitted on (a week: every weekday's cycle once), and how often a cached fit is
 * redone: once a 15-minute bucket, since a fit only changes when a new bucket completes. Between refits the
 * model forecasts further past the end of its history, which is exactly as correct.
 */
export const PREDICTIVE_HISTORY_DAYS = 7;
export const PREDICTIVE_REFIT_MINUTES = 15;

/**
 * Whether a cached fit made at `fittedAt` (undefined: none yet) is due for a refit at `now`: after
 * PREDICTIVE_REFIT_MINUTES, or when the clock went back past it. The control loop and the simulator both ask.
 */
export function demandRefitDue(fittedAt: number | undefined, now: number): boolean {
  return fittedAt === undefined || now - fittedAt >= PREDICTIVE_REFIT_MINUTES * MINUTE_MS || now < fittedAt;
}

/** The history with its fitted model, for the control loop's and the simulator's caches. */
export function fitDemand(perMinute: readonly number[], endsAt: number): DemandHistory {
  const model = perMinute.length >= MINUTES_PER_DAY ? fitHoltWinters(perMinute) : undefined;
  return model
    ? { perMinute, endsAt, model, residualSpread: residualSpread(model, perMinute) }
    : { perMinute, endsAt };
}

const forecastPointSchema = z.object({ at: z.number(), requestRate: z.number() });

export const predictiveBasisSchema = z.object({
  strategy: z.literal("predictive"),
  /** Minutes of demand history the forecast had. */
  historyMinutes: z.number().int(),
  /** Null under a day of history: the decision is target tracking's. */
  forecast: z
    .object({
      /** now + warm-up. */
      at: z.number(),
      requestRate: z.number(),
      /** For requestRate + headroom. */
      replicas: z.number().int(),
      /** req/s added to the forecast: headroomSigmas × the model's recent per-minute error (absent: none). */
      headroom: z.number().optional(),
      headroomSigmas: z.number().optional(),
      /** The forecast from now to FORECAST_SERIES_MINUTES ahead, for the proxy page's overlay. */
      series: z.array(forecastPointSchema),
      /** The policy's time zone, in which the sentence gives the forecast's time (absent: decisions before it). */
      timeZone: z.string().optional(),
    })
    .nullable(),
  /** The reactive half: target tracking's basis. */
  reactive: targetTrackingBasisSchema,
  /** Which half set the count (the forecast only when it asked for more). */
  source: z.enum(["forecast", "reactive"]),
  recommendedReplicas: z.number().int(),
});
export type PredictiveBasis = z.output<typeof predictiveBasisSchema>;

/** Why there is no forecast: under a day of history (the strategy's explanation and the proxy page's note). */
export function missingHistoryReason(historyMinutes: number): string {
  return `not enough history for a forecast (${formatNumber(historyMinutes / 60, 1)} h of 24 h)`;
}

function modelFor(demand: DemandHistory | undefined): HoltWintersModel | undefined {
  if (!demand || demand.perMinute.length < MINUTES_PER_DAY) return undefined;
  return demand.model ?? fitHoltWinters(demand.perMinute);
}

/**
 * Replicas for a fleet request rate, by target tracking's calculator (value per serving replica vs target),
 * without tolerance: the tolerance damps noise in readings, and holding the count within it would keep the
 * fleet a tolerance short of every rise the forecast sees coming.
 */
function replicasForRate(input: StrategyInput, fleetRate: number): number {
  const serving = Math.max(1, input.servingReplicas);
  const result = hpaReplicasForMetric({
    currentReplicas: input.currentReplicas,
    readyWithMetrics: serving,
    missingReplicas: 0,
    unreadyReplicas: 0,
    value: fleetRate / serving,
    target: input.policy.targetRequestRate,
    missingValueOnScaleDown: input.policy.targetRequestRate,
    tolerance: { scaleUp: 0, scaleDown: 0 },
  });
  return Math.min(result.replicas, PG_INTEGER_MAX);
}

export const predictiveStrategy: Strategy<PredictiveBasis> = {
  name: "predictive",
  usesCooldowns: false,
  propose(input: StrategyInput) {
    const reactive = targetTrackingStrategy.propose(input);
    const demand = input.demand;
    const model = modelFor(demand);
    const historyMinutes = demand?.perMinute.length ?? 0;
    if (!demand || !model) {
      return {
        ...reactive,
        basis: {
          strategy: "predictive",
          historyMinutes,
          forecast: null,
          reactive: reactive.basis,
          source: "reactive",
          recommendedReplicas: reactive.recommendedReplicas,
        },
      };
    }
    const minutesAfterHistory = (at: number) => (at - demand.endsAt) / MINUTE_MS;
    const at = input.now + input.policy.predictive.warmupSeconds * 1000;
    const requestRate = forecastDemand(model, minutesAfterHistory(at));
    const { headroomSigmas } = input.policy.predictive;
    const headroom =
      headroomSigmas > 0
        ? headroomSigmas * (demand.residualSpread ?? residualSpread(model, demand.perMinute))
        : 0;
    const forecastReplicas = replicasForRate(input, requestRate + headroom);
    const series = [];
    for (let m = 0; m <= FORECAST_SERIES_MINUTES; m += FORECAST_SERIES_STEP_MINUTES) {
      const pointAt = input.now + m * MINUTE_MS;
      series.push({ at: pointAt, requestRate: forecastDemand(model, minutesAfterHistory(pointAt)) });
    }
    const forecastWins = forecastReplicas > reactive.recommendedReplicas;
    const recommended = forecastWins ? forecastReplicas : reactive.recommendedReplicas;
    return {
      recommendedReplicas: recommended,
      metrics: reactive.metrics,
      // The reactive half's tolerance limits say why it held; they do not apply once the forecast raised it.
      limits: forecastWins ? [] : reactive.limits,
      basis: {
        strategy: "predictive",
        historyMinutes,
        forecast: {
          at,
          requestRate,
          replicas: forecastReplicas,
          ...(headroom > 0 ? { headroom, headroomSigmas } : {}),
          series,
          timeZone: input.policy.timeZone ?? "UTC",
        },
        reactive: reactive.basis,
        source: forecastWins ? "forecast" : "reactive",
        recommendedReplicas: recommended,
      },
    };
  },
  describe(basis) {
    const reactive = targetTrackingStrategy.describe(basis.reactive);
    if (basis.forecast === null)
      return `${missingHistoryReason(basis.historyMinutes)}: target tracking, ${reactive}`;
    const time = formatClockTime(basis.forecast.at, basis.forecast.timeZone ?? "UTC");
    const { headroom, headroomSigmas } = basis.forecast;
    const withHeadroom =
      headroom === undefined
        ? ""
        : ` + ${formatNumber(headroomSigmas ?? 0, 2)}σ headroom ${formatNumber(headroom, 1)} req/s`;
    const forecast = `forecast ${Math.round(basis.forecast.requestRate).toLocaleString("en-US")} req/s at ${time}${withHeadroom} → ${replicas(basis.forecast.replicas)}`;
    return basis.source === "forecast"
      ? `${forecast} (reactive: ${reactive})`
      : `${reactive} (${forecast}; a forecast never scales in on its own)`;
  },
};
