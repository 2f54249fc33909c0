import { BUILTIN_METRICS, type LoadMetrics, loadMetricsSchema } from "../metrics.ts";
import type { ScrapeMapping, ScrapeMappingName, SourceField } from "./schema.ts";

/**
 * One series of a scrape as the text format writes it: a histogram is its `_bucket`, `_sum` and `_count` series,
 * a summary its quantile, `_sum` and `_count` series.
 */
export interface ScrapedSeries {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** One parsed scrape of one replica and when it was taken (epoch ms). */
export interface Scrape {
  at: number;
  series: readonly ScrapedSeries[];
}

/** What a mapping read from a replica's scrape: the fields it filled, and the ones it reads but got no value for. */
export interface ScrapeReading {
  values: Partial<Record<SourceField, number>>;
  missing: SourceField[];
  /** The replica restarted (or its counters reset) since the previous scrape: no rate for this interval. */
  restarted: boolean;
}

type LabelMatch = (labels: Readonly<Record<string, string>>) => boolean;
const anyLabels: LabelMatch = () => true;

function withLabels(selector: Readonly<Record<string, string>> | undefined): LabelMatch {
  if (!selector) return anyLabels;
  const pairs = Object.entries(selector);
  return (labels) => pairs.every(([name, value]) => labels[name] === value);
}

function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function matching(scrape: Scrape, name: string, match: LabelMatch): ScrapedSeries[] {
  return scrape.series.filter((series) => series.name === name && match(series.labels));
}

/** The sum of the matching series now; undefined when none matches or one is not a finite number. */
export function gaugeValue(scrape: Scrape, name: string, match: LabelMatch = anyLabels): number | undefined {
  const found = matching(scrape, name, match);
  if (found.length === 0 || found.some((series) => !Number.isFinite(series.value))) return undefined;
  return found.reduce((sum, series) => sum + series.value, 0);
}

/**
 * How much the matching counters grew from `previous` to `current`, summed over the series present in both (a
 * series new in `current` has no increase yet, as in Prometheus' rate). Undefined when no series is in both, or
 * when any of them went down: a counter reset, so this interval has no increase rather than a negative or a
 * made-up one.
 */
export function counterIncrease(
  previous: Scrape,
  current: Scrape,
  name: string,
  match: LabelMatch = anyLabels,
): number | undefined {
  const before = new Map(matching(previous, name, match).map((series) => [seriesKey(series.labels), series]));
  let increase = 0;
  let paired = 0;
  for (const series of matching(current, name, match)) {
    const earlier = before.get(seriesKey(series.labels));
    if (!earlier) continue;
    if (!Number.isFinite(series.value) || !Number.isFinite(earlier.value)) return undefined;
    if (series.value < earlier.value) return undefined;
    increase += series.value - earlier.value;
    paired += 1;
  }
  return paired === 0 ? undefined : increase;
}

/** counterIncrease per second of the interval between the scrapes. */
export function counterRate(
  previous: Scrape,
  current: Scrape,
  name: string,
  match: LabelMatch = anyLabels,
): number | undefined {
  const seconds = (current.at - previous.at) / 1_000;
  if (!(seconds > 0)) return undefined;
  const increase = counterIncrease(previous, current, name, match);
  return increase === undefined ? undefined : increase / seconds;
}

/**
 * `part` of `whole` in percent over the interval. No request in it (a whole of 0) is 0 %: nothing failed, which
 * is a reading, not a gap.
 */
function percentOf(part: number | undefined, whole: number | undefined): number | undefined {
  if (part === undefined || whole === undefined) return undefined;
  if (whole === 0) return 0;
  return Math.min(100, (part / whole) * 100);
}

type Values = Partial<Record<SourceField, number>>;

interface MappingDefinition {
  /** The fields this mapping fills; every other built-in metric is not provided by the source. */
  provides: readonly SourceField[];
  /** Whether the replica restarted between the two scrapes, by a series its exporter keeps for that. */
  restarted?(previous: Scrape, current: Scrape): boolean;
  /** `previous` is null on a replica's first scrape and after a restart: rates are then missing. */
  read(previous: Scrape | null, current: Scrape): Values;
}

/**
 * HAProxy's built-in exporter (`http-request use-service prometheus-exporter`, HAProxy ≥ 2.0; series as 2.6
 * names them). Every frontend counts, the one serving the exporter included (one request per scrape).
 */
const HAPROXY: MappingDefinition = {
  provides: ["cpuPercent", "requestRate", "avgLatencyMs", "errorRatePercent", "connections"],
  restarted: (previous, current) =>
    gaugeValue(previous, "haproxy_process_start_time_seconds") !==
    gaugeValue(current, "haproxy_process_start_time_seconds"),
  read(previous, current) {
    const idle = gaugeValue(current, "haproxy_process_idle_time_percent");
    const values: Values = {
      cpuPercent: idle === undefined ? undefined : Math.min(100, Math.max(0, 100 - idle)),
      connections: gaugeValue(current, "haproxy_frontend_current_sessions"),
    };
    if (!previous) return values;
    values.requestRate = counterRate(previous, current, "haproxy_frontend_http_requests_total");
    values.errorRatePercent = percentOf(
      counterIncrease(
        previous,
        current,
        "haproxy_frontend_http_responses_total",
        withLabels({ code: "5xx" }),
      ),
      counterIncrease(previous, current, "haproxy_frontend_http_responses_total"),
    );
    values.avgLatencyMs = haproxyResponseTimeMs(previous, current);
    return values;
  },
};

/**
 * HAProxy keeps each backend's average response time over its last 1024 requests: the backends that served
 * requests in the interval are averaged, weighted by how many each served. None served: 0 (nothing waited).
 */
function haproxyResponseTimeMs(previous: Scrape, current: Scrape): number | undefined {
  const averages = matching(current, "haproxy_backend_response_time_average_seconds", anyLabels);
  if (averages.length === 0) return undefined;
  let weighted = 0;
  let served = 0;
  for (const average of averages) {
    const backend = withLabels({ proxy: average.labels.proxy ?? "" });
    const requests = counterIncrease(previous, current, "haproxy_backend_http_requests_total", backend);
    if (requests === undefined) return undefined;
    if (!Number.isFinite(average.value)) return undefined;
    weighted += average.value * 1_000 * requests;
    served += requests;
  }
  return served === 0 ? 0 : weighted / served;
}

/**
 * prometheus-nginx-exporter over nginx's stub_status. stub_status has no latency, no status codes and no CPU, so
 * this mapping gives the request rate and connections only. `nginx_up` 0 (the exporter could not read nginx) is
 * a failed scrape. The exporter's own reads of stub_status count as requests (one per scrape of the exporter).
 */
const NGINX: MappingDefinition = {
  provides: ["requestRate", "connections"],
  read(previous, current) {
    if (gaugeValue(current, "nginx_up") !== 1) return {};
    return {
      connections: gaugeValue(current, "nginx_connections_active"),
      requestRate: previous ? counterRate(previous, current, "nginx_http_requests_total") : undefined,
    };
  },
};

/**
 * Envoy's `/stats/prometheus`, over every HTTP connection manager but the admin listener's (whose requests are
 * the scrapes themselves). Request times are in milliseconds.
 */
const notAdmin: LabelMatch = (labels) => labels.envoy_http_conn_manager_prefix !== "admin";
const ENVOY: MappingDefinition = {
  provides: ["requestRate", "avgLatencyMs", "errorRatePercent", "connections"],
  restarted: (previous, current) => {
    const before = gaugeValue(previous, "envoy_server_uptime");
    const now = gaugeValue(current, "envoy_server_uptime");
    return before !== undefined && now !== undefined && now < before;
  },
  read(previous, current) {
    const values: Values = { connections: gaugeValue(current, "envoy_http_downstream_cx_active", notAdmin) };
    if (!previous) return values;
    const requests = counterIncrease(previous, current, "envoy_http_downstream_rq_total", notAdmin);
    values.requestRate = counterRate(previous, current, "envoy_http_downstream_rq_total", notAdmin);
    values.errorRatePercent = percentOf(
      counterIncrease(
        previous,
        current,
        "envoy_http_downstream_rq_xx",
        (labels) => notAdmin(labels) && labels.envoy_response_code_class === "5",
      ),
      requests,
    );
    const timeSum = counterIncrease(previous, current, "envoy_http_downstream_rq_time_sum", notAdmin);
    const timeCount = counterIncrease(previous, current, "envoy_http_downstream_rq_time_count", notAdmin);
    values.avgLatencyMs =
      timeSum === undefined || timeCount === undefined
        ? undefined
        : timeCount === 0
          ? 0
          : timeSum / timeCount;
    return values;
  },
};

const BUILTIN_MAPPINGS: Record<ScrapeMappingName, MappingDefinition> = {
  haproxy: HAPROXY,
  nginx: NGINX,
  envoy: ENVOY,
};

function customDefinition(entries: Extract<ScrapeMapping, { custom: unknown }>["custom"]): MappingDefinition {
  return {
    provides: entries.map((entry) => entry.field as SourceField),
    read(previous, current) {
      const values: Values = {};
      for (const entry of entries) {
        const match = withLabels(entry.labels);
        values[entry.field as SourceField] =
          entry.as === "gauge"
            ? gaugeValue(current, entry.series, match)
            : previous
              ? counterRate(previous, current, entry.series, match)
              : undefined;
      }
      return values;
    },
  };
}

function definitionOf(mapping: ScrapeMapping): MappingDefinition {
  return typeof mapping === "string" ? BUILTIN_MAPPINGS[mapping] : customDefinition(mapping.custom);
}

/** The fields a mapping fills (the rest of the built-in metrics are not provided by that source). */
export function mappingFields(mapping: ScrapeMapping): readonly SourceField[] {
  return definitionOf(mapping).provides;
}

/**
 * Reads one replica's scrape through a mapping. Rates need the replica's previous scrape: without one (its first
 * scrape), after a restart, or when the clock did not advance, every rate is missing for this interval. A series
 * the mapping reads that is absent leaves its field missing, never 0.
 */
export function readScrape(mapping: ScrapeMapping, previous: Scrape | null, current: Scrape): ScrapeReading {
  const definition = definitionOf(mapping);
  const restarted =
    previous !== null && (definition.restarted?.(previous, current) ?? false) && current.at > previous.at;
  const comparable = previous !== null && !restarted && current.at > previous.at ? previous : null;
  const read = definition.read(comparable, current);
  const values: Values = {};
  const missing: SourceField[] = [];
  for (const field of definition.provides) {
    const value = read[field];
    if (value === undefined || !Number.isFinite(value)) missing.push(field);
    else values[field] = value;
  }
  return { values, missing, restarted };
}

export type ScrapedSampleResult = { ok: true; metrics: LoadMetrics } | { ok: false; reason: string };

/**
 * The sample a replica's reading makes: only a complete reading makes one. A field the mapping reads but got no
 * value for leaves the replica without a sample for this interval (missing, so the stale-metrics fallback
 * applies), for the samples' columns hold numbers only and a 0 in its place would read as a real idle. The
 * built-in metrics the source does not provide at all (nginx has no latency) are 0, as docs/metrics-sources.md
 * says per mapping. `connections` and `custom.<name>` go to the sample's custom metrics.
 */
export function scrapedSample(
  reading: ScrapeReading,
  sample: { instanceId: string; at: number },
): ScrapedSampleResult {
  if (reading.missing.length > 0) {
    const why = reading.restarted ? " (the replica restarted: no rate for this interval)" : "";
    return { ok: false, reason: `no value for ${reading.missing.join(", ")}${why}` };
  }
  const builtins = Object.fromEntries(
    BUILTIN_METRICS.map((metric) => [metric, reading.values[metric] ?? 0] as const),
  );
  const custom: Record<string, number> = {};
  for (const [field, value] of Object.entries(reading.values)) {
    if (value === undefined) continue;
    if (field === "connections") custom.connections = value;
    else if (field.startsWith("custom.")) custom[field.slice("custom.".length)] = value;
  }
  const parsed = loadMetricsSchema.safeParse({
    ...builtins,
    ...(Object.keys(custom).length > 0 ? { custom } : {}),
    instanceId: sample.instanceId,
    recordedAt: sample.at,
  });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    return { ok: false, reason: `mapped values out of bounds: ${issues.join("; ")}` };
  }
  return { ok: true, metrics: parsed.data };
}
