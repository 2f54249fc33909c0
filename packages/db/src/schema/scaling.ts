import type { Decision, MetricSample, ScaleDirection, ScalingTrigger, StrategyName } from "@proxyscale/core";
import { COMPLETION_STATUSES, SCALING_TRIGGERS, STRATEGY_NAMES } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import {
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { createdAt, oneOf, ts } from "./columns.ts";
import { proxies } from "./proxies.ts";

export const SCALING_EVENT_TYPES = ["scale_up", "scale_down"] as const satisfies readonly ScaleDirection[];
export type ScalingEventType = ScaleDirection;

/** An event is active until it reaches one of core's completion statuses. */
export const ACTIVE_EVENT_STATUSES = ["pending", "in_progress"] as const;
export const SCALING_EVENT_STATUSES = [...ACTIVE_EVENT_STATUSES, ...COMPLETION_STATUSES] as const;
export type ScalingEventStatus = (typeof SCALING_EVENT_STATUSES)[number];

export const DECISION_ACTIONS = ["scale_up", "scale_down", "none"] as const;

/** Every evaluation, including the ones that changed nothing, with core's structured explanation. */
export const scalingDecisions = pgTable(
  "scaling_decisions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    evaluatedAt: ts("evaluated_at").notNull(),
    triggeredBy: text("triggered_by").$type<ScalingTrigger>().notNull(),
    strategy: text("strategy").$type<StrategyName>().notNull(),
    action: text("action").$type<Decision["action"]>().notNull(),
    currentReplicas: integer("current_replicas").notNull(),
    recommendedReplicas: integer("recommended_replicas").notNull(),
    desiredReplicas: integer("desired_replicas").notNull(),
    loadScore: doublePrecision("load_score"),
    explanation: text("explanation").notNull(),
    /** The decision's recommendation as columns: stabilization windows read thousands of them per tick. */
    recommendationAt: ts("recommendation_at").notNull(),
    recommendationReplicas: integer("recommendation_replicas").notNull(),
    decision: jsonb("decision").$type<Decision>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index("scaling_decisions_proxy_time_idx").on(
      t.proxyId,
      t.evaluatedAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    index("scaling_decisions_time_brin").using("brin", t.evaluatedAt),
    check("scaling_decisions_triggered_by_valid", oneOf(t.triggeredBy, SCALING_TRIGGERS)),
    check("scaling_decisions_strategy_valid", oneOf(t.strategy, STRATEGY_NAMES)),
    check("scaling_decisions_action_valid", oneOf(t.action, DECISION_ACTIONS)),
    check(
      "scaling_decisions_replicas_non_negative",
      sql`${t.currentReplicas} >= 0 and ${t.recommendedReplicas} >= 0 and ${t.desiredReplicas} >= 0 and ${t.recommendationReplicas} >= 0`,
    ),
  ],
);

/**
 * For each proxy and replica count, when it was last recommended. HPA's stabilization takes the max (or min) of
 * the recommendations in a window ending now, and the newest one of each count decides that exactly; so reading
 * this is a handful of rows per proxy, where reading scaling_decisions grows with every evaluation in the window.
 * Kept by recordDecisions in the statement that stores the decisions.
 */
export const scalingRecommendations = pgTable(
  "scaling_recommendations",
  {
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    replicas: integer("replicas").notNull(),
    recommendedAt: ts("recommended_at").notNull(),
  },
  (t) => [
    primaryKey({ name: "scaling_recommendations_pk", columns: [t.proxyId, t.replicas] }),
    check("scaling_recommendations_replicas_non_negative", sql`${t.replicas} >= 0`),
  ],
);

/** The seed's scaling operations: a state machine pending → in_progress → completed | failed | cancelled. */
export const proxyScalingEvents = pgTable(
  "proxy_scaling_events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    eventType: text("event_type").$type<ScalingEventType>().notNull(),
    previousReplicas: integer("previous_replicas").notNull(),
    newReplicas: integer("new_replicas").notNull(),
    triggeredBy: text("triggered_by").$type<ScalingTrigger>().notNull(),
    status: text("status").$type<ScalingEventStatus>().notNull().default("pending"),
    reason: text("reason").notNull().default(""),
    error: text("error"),
    decisionId: uuid("decision_id").references(() => scalingDecisions.id, { onDelete: "set null" }),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    completedAt: ts("completed_at"),
    durationMs: integer("duration_ms"),
  },
  (t) => [
    index("proxy_scaling_events_proxy_time_idx").on(
      t.proxyId,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    /** At most one event in flight per proxy: a second scale while one runs is refused by the database. */
    uniqueIndex("proxy_scaling_events_one_active_per_proxy")
      .on(t.proxyId)
      .where(sql`${t.status} in ('pending', 'in_progress')`),
    check("proxy_scaling_events_event_type_valid", oneOf(t.eventType, SCALING_EVENT_TYPES)),
    check("proxy_scaling_events_triggered_by_valid", oneOf(t.triggeredBy, SCALING_TRIGGERS)),
    check("proxy_scaling_events_status_valid", oneOf(t.status, SCALING_EVENT_STATUSES)),
    check(
      "proxy_scaling_events_replicas_non_negative",
      sql`${t.previousReplicas} >= 0 and ${t.newReplicas} >= 0`,
    ),
    check(
      "proxy_scaling_events_direction_matches_type",
      sql`(${t.eventType} = 'scale_up' and ${t.newReplicas} > ${t.previousReplicas}) or (${t.eventType} = 'scale_down' and ${t.newReplicas} < ${t.previousReplicas})`,
    ),
    check(
      "proxy_scaling_events_started_when_running",
      sql`${t.status} <> 'in_progress' or ${t.startedAt} is not null`,
    ),
    check(
      "proxy_scaling_events_completed_when_finished",
      sql`(${t.status} in ('completed', 'failed', 'cancelled')) = (${t.completedAt} is not null)`,
    ),
    check("proxy_scaling_events_error_when_failed", sql`(${t.status} = 'failed') = (${t.error} is not null)`),
    check("proxy_scaling_events_duration_non_negative", sql`coalesce(${t.durationMs}, 0) >= 0`),
  ],
);

/** What the history snapshot keeps of the metrics when the event was created. */
export interface HistorySnapshot {
  loadScore: number | null;
  samples: MetricSample[];
  decision?: Decision | null;
}

/** The seed's history: a time-stamped snapshot of the metrics and the decision, linked to its event. */
export const proxyScalingHistory = pgTable(
  "proxy_scaling_history",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventId: uuid("event_id")
      .notNull()
      .references(() => proxyScalingEvents.id, { onDelete: "cascade" }),
    proxyId: uuid("proxy_id")
      .notNull()
      .references(() => proxies.id, { onDelete: "cascade" }),
    recordedAt: ts("recorded_at").notNull().defaultNow(),
    previousReplicas: integer("previous_replicas").notNull(),
    newReplicas: integer("new_replicas").notNull(),
    loadScore: doublePrecision("load_score"),
    metrics: jsonb("metrics").$type<MetricSample[]>().notNull().default([]),
    decision: jsonb("decision").$type<Decision>(),
  },
  (t) => [
    index("proxy_scaling_history_proxy_time_idx").on(t.proxyId, t.recordedAt.desc().nullsFirst()),
    index("proxy_scaling_history_event_idx").on(t.eventId),
    check(
      "proxy_scaling_history_replicas_non_negative",
      sql`${t.previousReplicas} >= 0 and ${t.newReplicas} >= 0`,
    ),
  ],
);
