/**
 * Predictive scaling: the fleet's request rate at now + warm-up, forecast as the current rate times the change
 * a Holt-Winters daily curve (forecast/holt-winters.ts) expects over the warm-up (anchored: the curve's level
 * is a typical day's, the current rate is today's), plus an optional headroom (predictive.headroomQuantile:
 * that quantile of the model's last day of per-minute errors), turned into replicas by target tracking's own
 * calculator against targetRequestRate, and combined with the reactive target-tracking proposal by max, so a
 * forecast only ever adds replicas: it never scales in on its own. Under a day of history (or none) it says so
 * and acts as target tracking.
 */
import { z } from "zod";
import type { HoltWintersModel } from "../forecast/holt-winters.ts";
import {
  fitHoltWinters,
  forecastCurve,
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
  perMinute: ArrayLike<number>;
  /** End of the last minute in `perMinute` (epoch ms). */
  endsAt: number;
  /** A model already fitted on `perMinute` (the control loop and simulator cache it); fitted here when absent. */
  model?: HoltWintersModel;
  /** The model's recent per-minute errors (req/s, recentErrors), ascending; computed here when absent. */
  recentErrors?: readonly number[];
}

/**
 * The last day's per-minute errors, ascending: each minute's demand minus the one-step forecast of its bucket.
 * They are what acting on a forecast of the mean misses: the minutes swing around it, and the mean is itself
 * forecast with an error. Empty when the model has no one-step forecasts.
 */
export function recentErrors(model: HoltWintersModel, perMinute: ArrayLike<number>): number[] {
  const predicted = oneStepForecasts(model, perMinute);
  const bucket = model.bucketMinutes;
  const errors: number[] = [];
  const end = predicted.length * bucket;
  for (let i = Math.max(0, end - MINUTES_PER_DAY); i < end; i++) {
    const forecast = predicted[Math.floor(i / bucket)];
    if (forecast !== null && forecast !== undefined) errors.push((perMinute[i] ?? 0) - forecast);
  }
  return errors.sort((a, b) => a - b);
}

/**
 * The q-quantile of ascending errors, nearest rank below (0 with none). Skewed errors (rare large spikes, the
 * forecast above the actual most minutes) are why a quantile rather than k standard deviations: k·σ pays for
 * the spikes in every bucket (docs/backtest.md, "Why it falls short": for as much τ_U the quantile cost less).
 */
export function errorQuantile(errors: readonly number[], q: number): number {
  return errors.length === 0 ? 0 : (errors[Math.floor(q * (errors.length - 1))] ?? 0);
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

/**
 * The history with its fitted model, for the control loop's and the simulator's caches. The recent errors are
 * worked out on first use, once per fit: only a policy with a headroom reads them, and computing them at every
 * refit doubled a 30-day predictive simulation.
 */
export function fitDemand(perMinute: ArrayLike<number>, endsAt: number): DemandHistory {
  const model = perMinute.length >= MINUTES_PER_DAY ? fitHoltWinters(perMinute) : undefined;
  if (!model) return { perMinute, endsAt };
  let errors: number[] | undefined;
  return {
    perMinute,
    endsAt,
    model,
    get recentErrors() {
      errors ??= recentErrors(model, perMinute);
      return errors;
    },
  };
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
      /**
       * What the forecast is anchored on: the fleet's request rate now, scaled by the daily curve's relative
       * change from now to `at` (0.05: +5%). Absent without a reading (or with the curve at 0 now): the forecast
       * is the curve's own value.
       */
      anchor: z.object({ requestRate: z.number(), curveChange: z.number() }).optional(),
      /** For requestRate + headroom. */
      replicas: z.number().int(),
      /** req/s added to the forecast (negative: taken off): that quantile of the recent per-minute errors. */
      headroom: z.number().optional(),
      /** The policy's predictive.headroomQuantile (absent with the headroom: none). */
      headroomQuantile: z.number().optional(),
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

const formatRate = (rate: number) => Math.round(rate).toLocaleString("en-US");

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

/**
 * The model's curve at time `at` (epoch ms). The curve counts from the end of the last full bucket, up to a
 * bucket before the history's end.
 */
function curveAt(model: HoltWintersModel, demand: DemandHistory, at: number): number {
  const unbucketedMinutes = demand.perMinute.length - (model.lastBucket + 1) * model.bucketMinutes;
  return forecastCurve(model, (at - demand.endsAt) / MINUTE_MS + unbucketedMinutes);
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
    const curveNow = curveAt(model, demand, input.now);
    const anchorRate =
      input.readyWithMetrics > 0 && curveNow > 0
        ? input.metrics.requestRate * input.servingReplicas
        : undefined;
    const forecastAt = (curve: number) =>
      anchorRate === undefined ? curve : (anchorRate * curve) / curveNow;
    const at = input.now + input.policy.predictive.warmupSeconds * 1000;
    const curveThen = curveAt(model, demand, at);
    const requestRate = forecastAt(curveThen);
    const anchor =
      anchorRate === undefined
        ? undefined
        : { requestRate: anchorRate, curveChange: curveThen / curveNow - 1 };
    const { headroomQuantile } = input.policy.predictive;
    const headroom =
      headroomQuantile === undefined
        ? undefined
        : errorQuantile(demand.recentErrors ?? recentErrors(model, demand.perMinute), headroomQuantile);
    const forecastReplicas = replicasForRate(input, Math.max(0, requestRate + (headroom ?? 0)));
    const series = [];
    for (let m = 0; m <= FORECAST_SERIES_MINUTES; m += FORECAST_SERIES_STEP_MINUTES) {
      const pointAt = input.now + m * MINUTE_MS;
      series.push({ at: pointAt, requestRate: forecastAt(curveAt(model, demand, pointAt)) });
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
          ...(anchor === undefined ? {} : { anchor }),
          replicas: forecastReplicas,
          ...(headroom === undefined ? {} : { headroom, headroomQuantile }),
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
    const { headroom, headroomQuantile } = basis.forecast;
    const withHeadroom =
      headroom === undefined
        ? ""
        : ` ${headroom < 0 ? "−" : "+"} p${formatNumber((headroomQuantile ?? 0) * 100, 1)} headroom ${formatNumber(Math.abs(headroom), 1)} req/s`;
    const { anchor } = basis.forecast;
    const anchored =
      anchor === undefined
        ? ""
        : ` (${formatRate(anchor.requestRate)} req/s now, the daily curve ${anchor.curveChange < 0 ? "−" : "+"}${formatNumber(Math.abs(anchor.curveChange) * 100, 1)}%)`;
    const forecast = `forecast ${formatRate(basis.forecast.requestRate)} req/s at ${time}${anchored}${withHeadroom} → ${replicas(basis.forecast.replicas)}`;
    return basis.source === "forecast"
      ? `${forecast} (reactive: ${reactive})`
      : `${reactive} (${forecast}; a forecast never scales in on its own)`;
  },
};
