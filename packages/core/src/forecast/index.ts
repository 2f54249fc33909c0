export type { HoltWintersModel, HoltWintersOptions } from "./holt-winters.ts";
export { bucketize, fitHoltWinters, forecastDemand, MINUTES_PER_DAY } from "./holt-winters.ts";
