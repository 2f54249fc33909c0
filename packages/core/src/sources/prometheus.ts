import { z } from "zod";
import type { ScrapeReading } from "./mapping.ts";
import type { SourceField } from "./schema.ts";

/**
 * The instance a `prometheus` source's sample is stored under when no query keeps an `instance` label: its
 * queries aggregate the fleet (a scalar, or one series), so the one sample stands for the fleet's average.
 */
export const PROMETHEUS_FLEET_INSTANCE = "fleet";

const sampleValue = z.tuple([z.number(), z.string()]);

/** A Prometheus HTTP API answer to `/api/v1/query` (https://prometheus.io/docs/prometheus/latest/querying/api/). */
export const prometheusQueryResponseSchema = z.union([
  z.object({
    status: z.literal("success"),
    data: z.discriminatedUnion("resultType", [
      z.object({
        resultType: z.literal("vector"),
        result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: sampleValue })),
      }),
      z.object({ resultType: z.literal("scalar"), result: sampleValue }),
      z.object({ resultType: z.literal("matrix"), result: z.array(z.unknown()) }),
      z.object({ resultType: z.literal("string"), result: z.unknown() }),
    ]),
  }),
  z.object({ status: z.literal("error"), errorType: z.string().optional(), error: z.string() }),
]);
export type PrometheusQueryResponse = z.output<typeof prometheusQueryResponseSchema>;

/** One query's numbers: per replica (`instance` label), or one for the fleet (`instance: null`). */
export type PrometheusQueryValues =
  | { ok: true; values: Array<{ instance: string | null; value: number }>; series: number }
  | { ok: false; reason: string };

/**
 * Reads one query's successful answer. A vector gives one value per series, keyed by its `instance` label; a
 * scalar, or a single series without that label, is the fleet's value. Several series that cannot be told apart
 * (no `instance`, or the same one twice) are refused, since summing or averaging them is the query's job. A
 * NaN or infinite value is left out: that replica's field is missing, never 0.
 */
export function prometheusQueryValues(response: PrometheusQueryResponse): PrometheusQueryValues {
  if (response.status === "error") {
    return {
      ok: false,
      reason: `Prometheus refused the query: ${response.errorType ?? "error"}: ${response.error}`,
    };
  }
  const { data } = response;
  if (data.resultType === "scalar") {
    const value = Number(data.result[1]);
    return { ok: true, series: 1, values: Number.isFinite(value) ? [{ instance: null, value }] : [] };
  }
  if (data.resultType !== "vector") {
    return {
      ok: false,
      reason: `the query gives a ${data.resultType}: it must give an instant vector or a scalar`,
    };
  }
  const seen = new Set<string | null>();
  const values: Array<{ instance: string | null; value: number }> = [];
  for (const series of data.result) {
    const instance = series.metric.instance ?? null;
    if (seen.has(instance) || (data.result.length > 1 && instance === null)) {
      return {
        ok: false,
        reason:
          instance === null
            ? `the query gives ${data.result.length} series without an instance label: aggregate them (sum, avg) or keep instance`
            : `the query gives several series for instance ${instance}: aggregate them by (instance)`,
      };
    }
    seen.add(instance);
    const value = Number(series.value[1]);
    if (Number.isFinite(value)) values.push({ instance, value });
  }
  return { ok: true, series: data.result.length, values };
}

/**
 * Each replica's reading from one round of queries: the replicas are the `instance` labels the queries give
 * (or the fleet alone when none gives one). A replica's field is its own series' value, else the query's fleet
 * value; a query that failed, or gave nothing for that replica, leaves the field missing, so scrapedSample
 * stores no sample for it.
 */
export function prometheusReadings(
  // The source's fields, checked by sourceFieldSchema (which types them as plain strings).
  queries: ReadonlyArray<{ field: string; result: PrometheusQueryValues }>,
): Map<string, ScrapeReading> {
  const instances = new Set<string>();
  for (const { result } of queries) {
    if (!result.ok) continue;
    for (const { instance } of result.values) if (instance !== null) instances.add(instance);
  }
  if (instances.size === 0) instances.add(PROMETHEUS_FLEET_INSTANCE);
  const readings = new Map<string, ScrapeReading>();
  for (const instance of instances) {
    const reading: ScrapeReading = { values: {}, missing: [], restarted: false };
    for (const { result, ...query } of queries) {
      const field = query.field as SourceField;
      const values = result.ok ? result.values : [];
      const value = (values.find((v) => v.instance === instance) ?? values.find((v) => v.instance === null))
        ?.value;
      if (value === undefined) reading.missing.push(field);
      else reading.values[field] = value;
    }
    readings.set(instance, reading);
  }
  return readings;
}
