import { z } from "zod";
import { REDACTED } from "../actuators.ts";
import { BUILTIN_METRICS } from "../metrics.ts";
import { storable, storableInteger, storableText } from "../storable.ts";

/**
 * A proxy's metrics source (docs/metrics-sources.md): how its load reaches ProxyScale. `push` (the default) is
 * the REST/SDK push; `scrape` has ProxyScale read each replica's Prometheus exposition endpoint; `prometheus`
 * queries a Prometheus server with PromQL. Every source feeds the same storage and the same control loop.
 */
export const METRICS_SOURCE_KINDS = ["push", "scrape", "prometheus"] as const;
export type MetricsSourceKind = (typeof METRICS_SOURCE_KINDS)[number];

/** The built-in scrape mappings: one per proxy's own exporter. */
export const SCRAPE_MAPPING_NAMES = ["haproxy", "nginx", "envoy"] as const;
export type ScrapeMappingName = (typeof SCRAPE_MAPPING_NAMES)[number];

/** A sample field a source can fill: the built-in metrics, `connections` (stored as custom.connections), or `custom.<name>`. */
export const SOURCE_BUILTIN_FIELDS = [...BUILTIN_METRICS, "connections"] as const;
export type SourceBuiltinField = (typeof SOURCE_BUILTIN_FIELDS)[number];
export type SourceField = SourceBuiltinField | `custom.${string}`;

const CUSTOM_FIELD = /^custom\.[a-zA-Z_][a-zA-Z0-9_.:-]{0,99}$/;
export const sourceFieldSchema = z
  .string()
  .refine(
    (field) => (SOURCE_BUILTIN_FIELDS as readonly string[]).includes(field) || CUSTOM_FIELD.test(field),
    {
      message: `must be one of ${SOURCE_BUILTIN_FIELDS.join(", ")} or custom.<name> (a letter or _, then letters, digits, _ . : -)`,
    },
  );

/** Prometheus' own rules for metric and label names. */
const seriesNameSchema = z
  .string()
  .max(200, { message: "must be at most 200 characters" })
  .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, {
    message: "must be a Prometheus metric name: a letter, _ or :, then letters, digits, _ or :",
  });
const labelNameSchema = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,99}$/, {
  message: "must be a Prometheus label name: a letter or _, then letters, digits or _",
});

const httpUrl = storable(z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }));
const intervalSeconds = z
  .number()
  .int({ message: "must be a whole number of seconds" })
  .min(1, { message: "must be at least 1 second" })
  .max(3_600, { message: "must be at most 3600 (an hour)" });
const timeoutMs = z
  .number()
  .int({ message: "must be a whole number of milliseconds" })
  .min(1, { message: "must be at least 1 ms" })
  .max(60_000, { message: "must be at most 60000 ms" });

/**
 * One series of a user-defined mapping: the series matching `series` and every label of `labels` (equality),
 * summed, fill `field`. `gauge` reads the value as it is; `rate` is the counter's increase per second between two
 * scrapes (a reset gives no rate for that interval).
 */
export const customSeriesMappingSchema = z.strictObject({
  series: seriesNameSchema,
  labels: z
    .record(labelNameSchema, storableText().max(1_000, { message: "must be at most 1000 characters" }))
    .refine((labels) => Object.keys(labels).length <= 20, { message: "must select on at most 20 labels" })
    .optional(),
  field: sourceFieldSchema,
  as: z.enum(["gauge", "rate"], { message: "must be gauge or rate" }),
});
export type CustomSeriesMapping = z.output<typeof customSeriesMappingSchema>;

export const scrapeMappingSchema = z.union(
  [
    z.enum(SCRAPE_MAPPING_NAMES),
    z.strictObject({
      custom: z
        .array(customSeriesMappingSchema)
        .min(1, { message: "must map at least one series" })
        .max(50, { message: "must map at most 50 series" })
        .superRefine((entries, ctx) => {
          const seen = new Set<string>();
          entries.forEach((entry, index) => {
            if (seen.has(entry.field)) {
              ctx.addIssue({
                code: "custom",
                path: [index, "field"],
                message: `must be mapped once: ${entry.field} is already filled by an earlier entry`,
              });
            }
            seen.add(entry.field);
          });
        }),
    }),
  ],
  { message: `must be one of ${SCRAPE_MAPPING_NAMES.join(", ")}, or { custom: [...] }` },
);
export type ScrapeMapping = z.output<typeof scrapeMappingSchema>;

const instanceSchema = storableText()
  .min(1, { message: "must not be empty" })
  .max(200, { message: "must be at most 200 characters" });

/** Where the replicas' endpoints come from: the proxy's actuator (its replicas' addresses), or a fixed list. */
export const scrapeTargetsSchema = z.union(
  [
    z.strictObject({
      from: z.literal("actuator"),
      /** The exposition path on each replica, when the actuator gives an address rather than a URL. */
      path: storableText()
        .max(1_000)
        .regex(/^\//, { message: "must be a path starting with /" })
        .default("/metrics"),
      /** The exporter's port, when it is not the port the actuator gives (an exporter beside the proxy). */
      port: storableInteger(1, 65_535).optional(),
    }),
    z.strictObject({
      static: z
        .array(z.strictObject({ instance: instanceSchema, url: httpUrl }))
        .min(1, { message: "must list at least one target" })
        .max(500, { message: "must list at most 500 targets" })
        .superRefine((targets, ctx) => {
          const seen = new Set<string>();
          targets.forEach((target, index) => {
            if (seen.has(target.instance)) {
              ctx.addIssue({
                code: "custom",
                path: [index, "instance"],
                message: `must be unique: ${target.instance} is listed twice`,
              });
            }
            seen.add(target.instance);
          });
        }),
    }),
  ],
  { message: 'must be { from: "actuator" } or { static: [{ instance, url }] }' },
);
export type ScrapeTargets = z.output<typeof scrapeTargetsSchema>;

/**
 * KEDA's activationThreshold: a fleet at 0 replicas (minReplicas 0) is scaled to 1 once its live request rate,
 * requests/s over the whole fleet, is above it. Default 0: any request (docs/metrics-sources.md, "Scale to zero").
 */
const activationThreshold = z.number().min(0, { message: "must not be negative" }).optional();

export const pushSourceSchema = z.strictObject({ kind: z.literal("push"), activationThreshold });

export const scrapeSourceSchema = z
  .strictObject({
    kind: z.literal("scrape"),
    intervalSeconds: intervalSeconds.default(15),
    timeoutMs: timeoutMs.default(5_000),
    targets: scrapeTargetsSchema.default({ from: "actuator", path: "/metrics" }),
    mapping: scrapeMappingSchema,
    activationThreshold,
  })
  .superRefine((source, ctx) => {
    // A scrape still running when the next is due would pile up on a slow target.
    if (source.timeoutMs > source.intervalSeconds * 1_000) {
      ctx.addIssue({
        code: "custom",
        path: ["timeoutMs"],
        message: `must be at most intervalSeconds × 1000 (${source.intervalSeconds * 1_000} ms): a scrape ends before the next one starts`,
      });
    }
  });
export type ScrapeSource = z.output<typeof scrapeSourceSchema>;

export const prometheusQuerySchema = z.strictObject({
  field: sourceFieldSchema,
  promql: storableText("multiline")
    .min(1, { message: "must not be empty" })
    .max(10_000, { message: "must be at most 10000 characters" }),
});

const bearerTokenSchema = storableText()
  .min(1, { message: "must not be empty" })
  .max(4_096, { message: "must be at most 4096 characters" });

/** KEDA's Prometheus scaler: each query's result feeds one field (docs/metrics-sources.md). */
export const prometheusSourceSchema = z.strictObject({
  kind: z.literal("prometheus"),
  url: httpUrl,
  /** Sent as `Authorization: Bearer …`. A secret: redacted on output. */
  bearerToken: bearerTokenSchema.optional(),
  timeoutMs: timeoutMs.default(5_000),
  intervalSeconds: intervalSeconds.default(15),
  activationThreshold,
  queries: z
    .array(prometheusQuerySchema)
    .min(1, { message: "must have at least one query" })
    .max(50, { message: "must have at most 50 queries" })
    .superRefine((queries, ctx) => {
      const seen = new Set<string>();
      queries.forEach((query, index) => {
        if (seen.has(query.field)) {
          ctx.addIssue({
            code: "custom",
            path: [index, "field"],
            message: `must be queried once: ${query.field} is already filled by an earlier query`,
          });
        }
        seen.add(query.field);
      });
    }),
});
export type PrometheusSource = z.output<typeof prometheusSourceSchema>;

export const metricsSourceSchema = z.discriminatedUnion("kind", [
  pushSourceSchema,
  scrapeSourceSchema,
  prometheusSourceSchema,
]);
export type MetricsSource = z.output<typeof metricsSourceSchema>;
export type MetricsSourceInput = z.input<typeof metricsSourceSchema>;

export const DEFAULT_METRICS_SOURCE: MetricsSource = { kind: "push" };

/** A metrics source as API responses show it (redactMetricsSource's result): the bearer token replaced. */
export const redactedMetricsSourceSchema = z
  .discriminatedUnion("kind", [
    pushSourceSchema,
    scrapeSourceSchema,
    prometheusSourceSchema.extend({ bearerToken: z.literal(REDACTED).optional() }),
  ])
  .meta({ id: "RedactedMetricsSource" });
export type RedactedMetricsSource = z.output<typeof redactedMetricsSourceSchema>;

/** A copy fit for API responses and logs: the secret replaced, as redactActuatorConfig does for actuators. */
export function redactMetricsSource(source: MetricsSource): RedactedMetricsSource {
  if (source.kind !== "prometheus") return source;
  const { bearerToken, ...rest } = source;
  return bearerToken === undefined ? rest : { ...rest, bearerToken: REDACTED };
}

/** One scrape target's last scrape, as the server that scrapes it saw it. */
export const scrapeTargetHealthSchema = z.object({
  instance: z.string(),
  url: z.string(),
  /** When its last scrape started, epoch ms. */
  scrapedAt: z.number(),
  durationMs: z.number(),
  /** The scrape answered with an exposition that parsed. */
  ok: z.boolean(),
  /** A sample was stored for the replica from it. */
  sampled: z.boolean(),
  /** Why the scrape failed, or why it gave no sample (a first scrape has no rates yet). */
  error: z.string().nullable(),
});
export type ScrapeTargetHealth = z.output<typeof scrapeTargetHealthSchema>;

const roundHealthFields = {
  /** When the last round started (of scrapes, or of queries), epoch ms. */
  lastScrapeAt: z.number(),
  /** The targets could not be listed (the actuator failed): no round ran. */
  error: z.string().nullable(),
  /** Per replica: for `prometheus`, each `instance` the queries gave (its url is the Prometheus server's). */
  targets: z.array(scrapeTargetHealthSchema),
};

/** One PromQL query's last run. */
export const prometheusQueryHealthSchema = z.object({
  field: z.string(),
  promql: z.string(),
  queriedAt: z.number(),
  durationMs: z.number(),
  /** Prometheus answered it with an instant vector or a scalar. */
  ok: z.boolean(),
  /** How many series (or 1 for a scalar) it gave. */
  series: z.number(),
  /** Why it failed, or why it gave no value (no series, NaN). */
  error: z.string().nullable(),
});
export type PrometheusQueryHealth = z.output<typeof prometheusQueryHealthSchema>;

/** A pulled proxy's last round: in the memory of the server that owns the proxy (docs/metrics-sources.md). */
export const metricsSourceHealthSchema = z
  .discriminatedUnion("kind", [
    z.object({ kind: z.literal("scrape"), ...roundHealthFields }),
    z.object({
      kind: z.literal("prometheus"),
      ...roundHealthFields,
      queries: z.array(prometheusQueryHealthSchema),
    }),
  ])
  .meta({ id: "MetricsSourceHealth" });
export type MetricsSourceHealth = z.output<typeof metricsSourceHealthSchema>;
