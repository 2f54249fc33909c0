import {
  ACTUATOR_KINDS,
  decisionSchema,
  metricSampleSchema,
  SCALING_TRIGGERS,
  TIERS,
  TREND_DIRECTIONS,
} from "@proxyscale/core";
import { createSelectSchema } from "drizzle-zod";
import { z } from "zod";
import {
  auditLog,
  PROXY_HEALTH,
  proxies,
  proxyLatestMetrics,
  proxyScalingEvents,
  SCALING_EVENT_STATUSES,
  SCALING_EVENT_TYPES,
  scalingDecisions,
} from "./schema/index.ts";

/**
 * The records the queries return, as zod schemas derived from the Drizzle tables (drizzle-zod): each record's
 * TypeScript type is inferred from its schema, and the API's output schemas (so the OpenAPI document) reuse
 * them. Text columns typed with `$type<…>()` get their enum here, from the same constants as the table.
 */

/**
 * A timestamp column is a `Date` in code and, in every JSON response (REST and tRPC alike: no transformer),
 * `Date.toJSON`'s ISO 8601 string, which is what the OpenAPI document says.
 */
const timestamp = (column: z.ZodDate) => column.meta({ override: { type: "string", format: "date-time" } });

const count = z.number().int().min(0);

/** Where a proxy's effective policy comes from: its own, its environment's default, or the global default. */
export const policySourceSchema = z.enum(["proxy", "environment", "default"]);
export type PolicySource = z.output<typeof policySourceSchema>;

const proxyRowSchema = createSelectSchema(proxies, {
  ownerTier: z.enum(TIERS).meta({ description: "The owner's tier, whose caps bound this proxy's replicas" }),
  actuatorKind: z.enum(ACTUATOR_KINDS),
  actuatorConfig: z.record(z.string(), z.unknown()),
  health: z.enum(PROXY_HEALTH),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** The stored actuator: its kind and its config as stored (secrets included: never an API output as is). */
export const proxyActuatorSchema = z.object({
  kind: proxyRowSchema.shape.actuatorKind,
  config: proxyRowSchema.shape.actuatorConfig,
});
export type ProxyActuator = z.output<typeof proxyActuatorSchema>;

/** A proxies row with its actuator's two columns as one object. */
export const proxyRecordSchema = proxyRowSchema
  .omit({ actuatorKind: true, actuatorConfig: true })
  .extend({ actuator: proxyActuatorSchema });
export type ProxyRecord = z.output<typeof proxyRecordSchema>;

export const scalingEventRecordSchema = createSelectSchema(proxyScalingEvents, {
  eventType: z.enum(SCALING_EVENT_TYPES),
  triggeredBy: z.enum(SCALING_TRIGGERS),
  status: z.enum(SCALING_EVENT_STATUSES),
  createdAt: timestamp,
  startedAt: timestamp,
  completedAt: timestamp,
}).meta({ id: "ScalingEvent" });
export type ScalingEventRecord = z.output<typeof scalingEventRecordSchema>;

/** A stored decision: core's decision (the jsonb column) with the row's id, proxy, trigger and times. */
export const decisionRecordSchema = createSelectSchema(scalingDecisions, {
  triggeredBy: z.enum(SCALING_TRIGGERS),
  evaluatedAt: timestamp,
  createdAt: timestamp,
  decision: decisionSchema,
})
  .pick({ id: true, proxyId: true, triggeredBy: true, evaluatedAt: true, decision: true, createdAt: true })
  .meta({ id: "StoredDecision" });
export type DecisionRecord = z.output<typeof decisionRecordSchema>;

/** An audit entry: the entity before and after are whatever was written (any JSON, or null). */
export const auditEntrySchema = createSelectSchema(auditLog, {
  before: z.unknown(),
  after: z.unknown(),
  createdAt: timestamp,
}).meta({ id: "AuditEntry" });
export type AuditEntry = z.output<typeof auditEntrySchema>;

/** A stored latest sample with what was stored beside it. */
export const latestSampleSchema = metricSampleSchema.extend(
  createSelectSchema(proxyLatestMetrics).pick({ loadScore: true, replicas: true, unhealthyReplicas: true })
    .shape,
);
export type LatestSample = z.output<typeof latestSampleSchema>;

const values = z.array(z.number());
/** The range's value columns, one array each: their names are the `fields` a range may ask for. */
const metricsRangeValues = {
  cpuPercent: values,
  memoryPercent: values,
  requestRate: values,
  avgLatencyMs: values,
  errorRatePercent: values,
  loadScore: values,
  loadScoreMax: values,
  /** Average replica count of the samples that carried one (null: none did). */
  replicas: z.array(z.number().nullable()),
};
export type MetricsRangeField = keyof typeof metricsRangeValues;
/** The value columns' names, in the order of `MetricsColumns`. */
export const METRICS_RANGE_FIELDS = Object.keys(metricsRangeValues) as [
  MetricsRangeField,
  ...MetricsRangeField[],
];
/**
 * A downsampled range, one array per field (index i of every array is the i-th interval that holds samples):
 * a tenth of the bytes of one object per interval, and the column layout charts draw from. Each interval has
 * the sample-weighted averages of the metrics, the max load score and the sample count; values are rounded to
 * 0.001. A range asked for some `fields` has only their value arrays (`at` and `samples` always).
 */
export const metricsColumnsSchema = z
  .object({
    /** Start of each interval, epoch ms (intervals are equal fractions of the range). */
    at: values,
    samples: z.array(count),
    ...z.object(metricsRangeValues).partial().shape,
  })
  .meta({ id: "MetricsColumns" });
export type MetricsColumns = z.output<typeof metricsColumnsSchema>;
/** The columns of a range asked for the fields `F` (default: every one), each of their arrays there. */
export type MetricsRangeColumns<F extends MetricsRangeField = MetricsRangeField> = Pick<
  Required<MetricsColumns>,
  "at" | "samples" | F
>;

const minMax = z.object({ avg: z.number().nullable(), max: z.number().nullable() });

/** The seed's scaling summary; event counts are keyed by the events table's own types and statuses. */
export const scalingSummarySchema = z
  .object({
    proxyId: z.uuid(),
    hoursBack: z.number(),
    from: timestamp(z.date()),
    to: timestamp(z.date()),
    events: z.object({
      total: count,
      byType: z.record(scalingEventRecordSchema.shape.eventType, count),
      byStatus: z.record(scalingEventRecordSchema.shape.status, count),
    }),
    loadScore: minMax,
    replicas: minMax,
    /** Over completed events. */
    avgScalingDurationMs: z.number().nullable(),
    /**
     * Least-squares slope of the load score (points per hour) and core's reading of it: "steady" when the fitted
     * change across the samples' span is under core's STEADY_TREND_POINTS. slopePerHour is null with fewer than
     * two points.
     */
    trend: z.object({ slopePerHour: z.number().nullable(), direction: z.enum(TREND_DIRECTIONS) }),
    samples: count,
  })
  .meta({ id: "ScalingSummary" });
export type ScalingSummary = z.output<typeof scalingSummarySchema>;

/** This calendar month's spend (policy time zone): replica-hours × costPerReplicaHour, and its projection. */
export const monthSpendSchema = z
  .object({
    timeZone: z.string(),
    monthStart: timestamp(z.date()),
    monthEnd: timestamp(z.date()),
    costPerReplicaHour: z.number(),
    replicaHours: z.number(),
    /** Spent so far this month. */
    spent: z.number(),
    /** `spent` plus the current replicas running to the month's end. */
    projected: z.number(),
    monthlyBudget: z.number().nullable(),
  })
  .meta({ id: "MonthSpend" });
export type MonthSpendRecord = z.output<typeof monthSpendSchema>;

/** The summary as the API serves it: with the month's spend, null when the policy has no costPerReplicaHour. */
export const scalingSummaryWithSpendSchema = scalingSummarySchema
  .extend({ spend: monthSpendSchema.nullable() })
  .meta({ id: "ScalingSummaryWithSpend" });

/** A page of a keyset-paginated list. */
export function pageSchema<Item extends z.ZodType>(item: Item) {
  return z.object({
    items: z.array(item),
    nextCursor: z
      .string()
      .nullable()
      .meta({ description: "Pass back as `cursor` for the next page; null on the last page" }),
  });
}
export type Page<T> = z.output<ReturnType<typeof pageSchema<z.ZodType<T>>>>;
