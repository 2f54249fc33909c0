/**
 * Additive Holt-Winters (triple exponential smoothing) with a daily season, fitted on a per-minute demand
 * series (request rate, req/s) averaged into coarser buckets for speed.
 *
 * Model, per bucket t with season length m (1440 / bucketMinutes):
 *   level_t  = α (x_t − season_{t−m}) + (1 − α)(level_{t−1} + trend_{t−1})
 *   trend_t  = β (level_t − level_{t−1}) + (1 − β) trend_{t−1}
 *   season_t = γ (x_t − level_t) + (1 − γ) season_{t−m}
 *   forecast_{t+h} = level_t + h·trend_t + season_{t−m+1+((h−1) mod m)}
 * Initialisation: level = mean of the first season, trend = (mean of season 2 − mean of season 1) / m when two
 * seasons exist (else 0), season_i = x_i − level. α, β, γ are chosen from a small grid by the least sum of
 * squared one-step errors, so the fit adapts to noisy or smooth traffic without a numerical optimiser.
 */

export const MINUTES_PER_DAY = 1440;
export const DEFAULT_BUCKET_MINUTES = 15;

export interface HoltWintersOptions {
  /** Minutes averaged into one bucket; must divide 1440. Default 15 (96 buckets a day). */
  bucketMinutes?: number;
}

export interface HoltWintersModel {
  bucketMinutes: number;
  /** Buckets per season (one day). */
  seasonLength: number;
  alpha: number;
  beta: number;
  gamma: number;
  level: number;
  trend: number;
  /** Seasonal offsets, indexed by bucket-of-day (the bucket's index modulo seasonLength). */
  season: number[];
  /** Index (in buckets, from the series' start) of the last bucket the model has seen. */
  lastBucket: number;
  /** Root mean squared one-step error of the chosen parameters, in req/s. */
  rmse: number;
}

const ALPHAS = [0.05, 0.2, 0.5];
const BETAS = [0, 0.01, 0.1];
const GAMMAS = [0.05, 0.2, 0.5];

/** Means of consecutive `bucketMinutes`-minute buckets; a trailing partial bucket is dropped. */
export function bucketize(perMinute: ArrayLike<number>, bucketMinutes: number): number[] {
  const buckets: number[] = [];
  for (let start = 0; start + bucketMinutes <= perMinute.length; start += bucketMinutes) {
    let sum = 0;
    for (let i = start; i < start + bucketMinutes; i++) sum += perMinute[i] ?? 0;
    buckets.push(sum / bucketMinutes);
  }
  return buckets;
}

interface Run {
  level: number;
  trend: number;
  season: number[];
  sse: number;
}

/** The state the first season initialises: the same for every parameter set, so a grid computes it once. */
interface Initial {
  /** The level at the first season's end. */
  level: number;
  trend: number;
  season: number[];
}

function initialise(x: readonly number[], m: number): Initial {
  let level = 0;
  for (let i = 0; i < m; i++) level += x[i] ?? 0;
  level /= m;
  let trend = 0;
  if (x.length >= 2 * m) {
    let second = 0;
    for (let i = m; i < 2 * m; i++) second += x[i] ?? 0;
    trend = (second / m - level) / m;
  }
  // A plain loop: Array.from with a mapper was most of a grid fit's time.
  const season: number[] = [];
  for (let i = 0; i < m; i++) season.push((x[i] ?? 0) - level);
  // The first season only initialises; smoothing (and the error) starts after it, with the level at its end.
  return { level: level + trend * (m - 1), trend, season };
}

/** One pass of the smoothing; `predictions`, when given, receives each bucket's one-step forecast (from bucket m). */
function run(
  x: readonly number[],
  m: number,
  initial: Initial,
  alpha: number,
  beta: number,
  gamma: number,
  predictions?: number[],
): Run {
  let { level, trend } = initial;
  const season = initial.season.slice();
  let sse = 0;
  for (let t = m; t < x.length; t++) {
    const value = x[t] ?? 0;
    const s = season[t % m] ?? 0;
    const predicted = level + trend + s;
    sse += (value - predicted) ** 2;
    predictions?.push(predicted);
    const previousLevel = level;
    level = alpha * (value - s) + (1 - alpha) * (level + trend);
    trend = beta * (level - previousLevel) + (1 - beta) * trend;
    season[t % m] = gamma * (value - level) + (1 - gamma) * s;
  }
  return { level, trend, season, sse };
}

/**
 * Fits the model on a per-minute series (oldest first). Needs at least one full day; returns undefined with
 * less, so the caller falls back to a reactive strategy.
 */
export function fitHoltWinters(
  perMinute: ArrayLike<number>,
  options: HoltWintersOptions = {},
): HoltWintersModel | undefined {
  const bucketMinutes = options.bucketMinutes ?? DEFAULT_BUCKET_MINUTES;
  if (!Number.isInteger(bucketMinutes) || bucketMinutes <= 0 || MINUTES_PER_DAY % bucketMinutes !== 0) {
    throw new RangeError(`bucketMinutes must divide ${MINUTES_PER_DAY}, got ${bucketMinutes}`);
  }
  const m = MINUTES_PER_DAY / bucketMinutes;
  const x = bucketize(perMinute, bucketMinutes);
  if (x.length < m) return undefined;
  const initial = initialise(x, m);
  let best: Run | undefined;
  let chosen = { alpha: 0, beta: 0, gamma: 0 };
  for (const alpha of ALPHAS) {
    for (const beta of BETAS) {
      for (const gamma of GAMMAS) {
        const fitted = run(x, m, initial, alpha, beta, gamma);
        if (!best || fitted.sse < best.sse) {
          best = fitted;
          chosen = { alpha, beta, gamma };
        }
      }
    }
  }
  if (!best) return undefined;
  const steps = Math.max(1, x.length - m);
  return {
    bucketMinutes,
    seasonLength: m,
    ...chosen,
    level: best.level,
    trend: best.trend,
    season: best.season,
    lastBucket: x.length - 1,
    rmse: Math.sqrt(best.sse / steps),
  };
}

/**
 * The forecast demand (req/s, never negative) `minutesAhead` minutes after the end of the fitted series.
 * The end of the series is the end of its last full bucket.
 */
export function forecastDemand(model: HoltWintersModel, minutesAhead: number): number {
  const h = Math.max(1, Math.ceil(minutesAhead / model.bucketMinutes));
  const bucket = model.lastBucket + h;
  const seasonal = model.season[bucket % model.seasonLength] ?? 0;
  return Math.max(0, model.level + h * model.trend + seasonal);
}

/**
 * The model's daily curve as a continuous function: its value `minutesAhead` minutes after the end of the last
 * full bucket (negative: inside the last bucket), linear between bucket centres, where bucket h (h ≥ 0; 0 the
 * last one fitted, smoothed) is level + h·trend + its season. The predictive strategy reads its change over a
 * lead, which a step per bucket would make zero inside a bucket and a jump at its edge.
 */
export function forecastCurve(model: HoltWintersModel, minutesAhead: number): number {
  const position = Math.max(0, minutesAhead / model.bucketMinutes + 0.5);
  const h = Math.floor(position);
  const low = bucketValue(model, h);
  return Math.max(0, low + (position - h) * (bucketValue(model, h + 1) - low));
}

/** Bucket h after the last fitted one (0: that one), unclamped. A plain function: the curve is read per decision. */
function bucketValue(model: HoltWintersModel, h: number): number {
  return model.level + h * model.trend + (model.season[(model.lastBucket + h) % model.seasonLength] ?? 0);
}

/**
 * The model's in-sample one-step forecasts (req/s, never negative): for each bucket of `perMinute` (the series
 * the model was fitted on), what the fit predicted for it from the buckets before. The first season only
 * initialises the model, so its buckets have none (null).
 */
export function oneStepForecasts(model: HoltWintersModel, perMinute: ArrayLike<number>): (number | null)[] {
  const x = bucketize(perMinute, model.bucketMinutes);
  const predictions: number[] = [];
  const m = model.seasonLength;
  run(x, m, initialise(x, m), model.alpha, model.beta, model.gamma, predictions);
  return x.map((_, t) =>
    t < model.seasonLength ? null : Math.max(0, predictions[t - model.seasonLength] ?? 0),
  );
}
