import { sql } from "drizzle-orm";
import {
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  type PgColumn,
  pgTable,
  primaryKey,
  text,
  uuid,
} from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";
import { proxies } from "./proxies.ts";

/** `instance_id` of a sample that has none (a fleet-average report); core's schema never allows "" as an id. */
export const FLEET_INSTANCE_ID = "";

function sampleColumns() {
  return {
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    instanceId: text("instance_id").notNull().default(FLEET_INSTANCE_ID),
    recordedAt: ts("recorded_at").notNull(),
    cpuPercent: doublePrecision("cpu_percent").notNull(),
    memoryPercent: doublePrecision("memory_percent").notNull(),
    requestRate: doublePrecision("request_rate").notNull(),
    avgLatencyMs: doublePrecision("avg_latency_ms").notNull(),
    errorRatePercent: doublePrecision("error_rate_percent").notNull(),
    loadScore: doublePrecision("load_score").notNull(),
    /** The proxy's replica count when the sample was stored: what summaries average. */
    replicas: integer("replicas"),
    unhealthyReplicas: integer("unhealthy_replicas"),
    custom: jsonb("custom").$type<Record<string, number>>(),
  };
}

interface SampleColumnRefs {
  cpuPercent: PgColumn;
  memoryPercent: PgColumn;
  requestRate: PgColumn;
  avgLatencyMs: PgColumn;
  errorRatePercent: PgColumn;
  loadScore: PgColumn;
  replicas: PgColumn;
  unhealthyReplicas: PgColumn;
}

function sampleChecks(prefix: string, t: SampleColumnRefs) {
  return [
    check(
      `${prefix}_percents_valid`,
      sql`${t.cpuPercent} between 0 and 100 and ${t.memoryPercent} between 0 and 100 and ${t.errorRatePercent} between 0 and 100`,
    ),
    check(`${prefix}_rates_non_negative`, sql`${t.requestRate} >= 0 and ${t.avgLatencyMs} >= 0`),
    check(`${prefix}_load_score_valid`, sql`${t.loadScore} between 0 and 100`),
    check(
      `${prefix}_replicas_non_negative`,
      sql`coalesce(${t.replicas}, 0) >= 0 and coalesce(${t.unhealthyReplicas}, 0) >= 0`,
    ),
  ];
}

/**
 * The seed's raw samples. No surrogate key: nothing references a single sample, and every index costs ingest.
 * The BRIN index serves retention and rollups (time-ordered appends keep it tiny).
 */
export const proxyLoadMetrics = pgTable("proxy_load_metrics", sampleColumns(), (t) => [
  index("proxy_load_metrics_proxy_time_idx").on(t.proxyId, t.recordedAt.desc().nullsFirst()),
  index("proxy_load_metrics_time_brin").using("brin", t.recordedAt),
  ...sampleChecks("proxy_load_metrics", t),
]);

/** The latest sample of each (proxy, instance), upserted by the statement that inserts the samples. */
export const proxyLatestMetrics = pgTable("proxy_latest_metrics", sampleColumns(), (t) => [
  primaryKey({ name: "proxy_latest_metrics_pk", columns: [t.proxyId, t.instanceId] }),
  ...sampleChecks("proxy_latest_metrics", t),
]);

/** Per-minute rollups of the raw samples, kept longer than the samples (default 90 days). */
export const proxyLoadMetrics1m = pgTable(
  "proxy_load_metrics_1m",
  {
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    bucket: ts("bucket").notNull(),
    samples: integer("samples").notNull(),
    cpuPercentAvg: doublePrecision("cpu_percent_avg").notNull(),
    cpuPercentMax: doublePrecision("cpu_percent_max").notNull(),
    memoryPercentAvg: doublePrecision("memory_percent_avg").notNull(),
    memoryPercentMax: doublePrecision("memory_percent_max").notNull(),
    requestRateAvg: doublePrecision("request_rate_avg").notNull(),
    requestRateMax: doublePrecision("request_rate_max").notNull(),
    avgLatencyMsAvg: doublePrecision("avg_latency_ms_avg").notNull(),
    avgLatencyMsMax: doublePrecision("avg_latency_ms_max").notNull(),
    errorRatePercentAvg: doublePrecision("error_rate_percent_avg").notNull(),
    errorRatePercentMax: doublePrecision("error_rate_percent_max").notNull(),
    loadScoreAvg: doublePrecision("load_score_avg").notNull(),
    loadScoreMax: doublePrecision("load_score_max").notNull(),
    /** Samples that carried a replica count, and their average and max. */
    replicaSamples: integer("replica_samples").notNull(),
    replicasAvg: doublePrecision("replicas_avg"),
    replicasMax: integer("replicas_max"),
  },
  (t) => [
    primaryKey({ name: "proxy_load_metrics_1m_pk", columns: [t.proxyId, t.bucket] }),
    index("proxy_load_metrics_1m_bucket_idx").on(t.bucket),
    check("proxy_load_metrics_1m_samples_positive", sql`${t.samples} > 0`),
    check("proxy_load_metrics_1m_bucket_minute", sql`${t.bucket} = date_trunc('minute', ${t.bucket}, 'UTC')`),
  ],
);

/** How far the rollup has run: every minute before `rolled_up_to` is in `proxy_load_metrics_1m`. */
export const metricRollupState = pgTable("metric_rollup_state", {
  name: text("name").primaryKey(),
  rolledUpTo: ts("rolled_up_to").notNull(),
});
