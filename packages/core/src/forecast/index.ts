export type { HoltWintersModel, HoltWintersOptions } from "./holt-winters.ts";
export {
  bucketize,
  DEFAULT_BUCKET_MINUTES,
  fitHoltWinters,
  forecastCurve,
  forecastDemand,
  MINUTES_PER_DAY,
  oneStepForecasts,
} from "./holt-winters.ts";
export type { DemandForecast } from "./overlay.ts";
export {
  DEFAULT_OVERLAY_HOURS_AHEAD,
  DEFAULT_OVERLAY_HOURS_BACK,
  demandForecastOverlay,
  demandForecastPointSchema,
  demandForecastSchema,
  MAX_OVERLAY_HOURS_AHEAD,
  MAX_OVERLAY_HOURS_BACK,
} from "./overlay.ts";
