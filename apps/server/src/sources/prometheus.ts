import {
  type LoadMetrics,
  type MetricsSourceHealth,
  type PrometheusQueryHealth,
  type PrometheusQueryValues,
  type PrometheusSource,
  prometheusQueryResponseSchema,
  prometheusQueryValues,
  prometheusReadings,
  scrapedSample,
} from "@proxyscale/core";
import { errorMessage } from "../actuators/types.ts";

/**
 * One round of a `prometheus` source (docs/metrics-sources.md): every query run at once against the server's
 * `/api/v1/query` at the round's time, read by core's prometheusReadings into one reading per replica, and
 * each complete reading made a sample by scrapedSample, as a scrape's is. Run by the Scraper's per-proxy timers.
 */
export async function queryPrometheusRound(
  source: PrometheusSource,
  startedAt: number,
): Promise<{ health: MetricsSourceHealth & { kind: "prometheus" }; reports: LoadMetrics[] }> {
  const queried = await Promise.all(
    source.queries.map(async (query) => {
      const began = performance.now();
      let result: PrometheusQueryValues;
      try {
        result = prometheusQueryValues(await runQuery(source, query.promql, startedAt));
      } catch (error) {
        result = { ok: false, reason: errorMessage(error) };
      }
      const health: PrometheusQueryHealth = {
        field: query.field,
        promql: query.promql,
        queriedAt: startedAt,
        durationMs: Math.round(performance.now() - began),
        ok: result.ok,
        series: result.ok ? result.series : 0,
        error: result.ok
          ? result.values.length === 0
            ? "no value: no series, or NaN"
            : null
          : result.reason,
      };
      return { field: query.field, result, health };
    }),
  );
  const reports: LoadMetrics[] = [];
  const targets = [...prometheusReadings(queried)].map(([instance, reading]) => {
    const sample = scrapedSample(reading, { instanceId: instance, at: startedAt });
    if (sample.ok) reports.push(sample.metrics);
    return {
      instance,
      url: source.url,
      scrapedAt: startedAt,
      durationMs: Math.max(0, ...queried.map((query) => query.health.durationMs)),
      ok: queried.every((query) => query.result.ok),
      sampled: sample.ok,
      error: sample.ok ? null : sample.reason,
    };
  });
  return {
    health: {
      kind: "prometheus",
      lastScrapeAt: startedAt,
      error: null,
      targets,
      queries: queried.map((query) => query.health),
    },
    reports,
  };
}

/** One instant query within the source's timeout. The bearer token goes in the header only, never the URL. */
async function runQuery(source: PrometheusSource, promql: string, at: number) {
  const url = new URL("api/v1/query", source.url.endsWith("/") ? source.url : `${source.url}/`);
  url.search = new URLSearchParams({ query: promql, time: (at / 1_000).toFixed(3) }).toString();
  const signal = AbortSignal.timeout(source.timeoutMs);
  try {
    const response = await fetch(url, {
      signal,
      headers: {
        accept: "application/json",
        ...(source.bearerToken === undefined ? {} : { authorization: `Bearer ${source.bearerToken}` }),
      },
      // A redirect could carry the token elsewhere.
      redirect: "error",
    });
    // Prometheus answers a bad query with 400 or 422 and an error body worth showing.
    const body: unknown = await response.json().catch(() => null);
    const parsed = prometheusQueryResponseSchema.safeParse(body);
    if (!parsed.success) throw new Error(`answered HTTP ${response.status} without a Prometheus API answer`);
    return parsed.data;
  } catch (error) {
    throw signal.aborted ? new Error(`no answer within ${source.timeoutMs} ms`) : error;
  }
}
