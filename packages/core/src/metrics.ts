import { z } from "zod";
import {
  storableEpochMs,
  storableInteger,
  storableIsoTime,
  storableMeasurement,
  storableText,
} from "./storable.ts";

const nonNegative = z.number().min(0, { message: "must not be negative" });
const measurement = storableMeasurement();
const percentValue = nonNegative.max(100, { message: "must be a percent: at most 100" });

export const metricNameSchema = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,99}$/, {
  message: "must be a metric name: a letter or _, then letters, digits, _ . : -",
});

export const customMetricsSchema = z.record(metricNameSchema, measurement);

/**
 * One load report. Values describe one replica: a sample with `instanceId` comes from that replica,
 * one without is the fleet's average.
 */
export const loadMetricsSchema = z.strictObject({
  cpuPercent: percentValue,
  memoryPercent: percentValue,
  requestRate: measurement,
  avgLatencyMs: measurement,
  errorRatePercent: percentValue,
  custom: customMetricsSchema.optional(),
  instanceId: storableText().min(1).max(200).optional(),
  /** Replicas the reporter sees, for proxies whose replicas are managed elsewhere. */
  replicas: storableInteger(0).optional(),
  /** Replicas the reporter knows to be unhealthy. */
  unhealthyReplicas: storableInteger(0).optional(),
  /** When the sample was taken (epoch ms or ISO 8601); the receive time when absent. */
  recordedAt: z.union([storableEpochMs(), storableIsoTime()]).optional(),
});
export type LoadMetrics = z.infer<typeof loadMetricsSchema>;
export type LoadMetricsInput = z.input<typeof loadMetricsSchema>;

/** A stored sample as the engine sees it: the reported metrics plus the time, in epoch ms. */
export const metricSampleSchema = loadMetricsSchema
  .pick({
    instanceId: true,
    cpuPercent: true,
    memoryPercent: true,
    requestRate: true,
    avgLatencyMs: true,
    errorRatePercent: true,
    custom: true,
  })
  // What is stored is read as it is: rows written before today's input bounds (a rate of 1e308, an id with a
  // control character) must still read, so the output keeps the bounds of the columns alone.
  .extend({
    instanceId: z.string().min(1).optional(),
    requestRate: nonNegative,
    avgLatencyMs: nonNegative,
    custom: z.record(metricNameSchema, nonNegative).optional(),
    at: z.number().int().min(0).meta({ description: "When the sample was taken, epoch ms" }),
  })
  .meta({ id: "MetricSample" });
export type MetricSample = z.output<typeof metricSampleSchema>;

/** How far ahead of the server's clock a sample's `recordedAt` may be, by default (PROXYSCALE_MAX_CLOCK_SKEW_SECONDS). */
export const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 60;

/** When a report was taken, epoch ms: its `recordedAt` (epoch ms or ISO 8601), else `receivedAt`. */
export function reportedAtMs(recordedAt: LoadMetrics["recordedAt"], receivedAt: number): number {
  if (recordedAt === undefined) return receivedAt;
  return typeof recordedAt === "number" ? recordedAt : Date.parse(recordedAt);
}

/**
 * The clock-skew rule: a sample taken more than `maxSkewSeconds` after `now` (the server's clock) is refused, for a
 * reporter's clock that runs ahead must not plant samples that stay the newest for hours (or, at 2^53 ms, for
 * ever). Returns the refusal's message, or null when the sample is acceptable. Samples from the past are fine.
 */
export function futureSampleRefusal(at: number, now: number, maxSkewSeconds: number): string | null {
  const aheadMs = at - now;
  if (!(aheadMs > maxSkewSeconds * 1000)) return null;
  return `must not be more than ${maxSkewSeconds} s ahead of the server's clock (the clock-skew allowance, PROXYSCALE_MAX_CLOCK_SKEW_SECONDS); it is ${Math.ceil(aheadMs / 1000)} s ahead`;
}

export const BUILTIN_METRICS = [
  "cpuPercent",
  "memoryPercent",
  "requestRate",
  "avgLatencyMs",
  "errorRatePercent",
] as const;
export type BuiltinMetric = (typeof BUILTIN_METRICS)[number];
