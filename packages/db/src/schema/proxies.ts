import { ACTUATOR_KINDS, type ActuatorKind, METRICS_SOURCE_KINDS, TIERS, type Tier } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { check, index, integer, jsonb, pgTable, text, unique, uuid } from "drizzle-orm/pg-core";
import { createdAt, oneOf, updatedAt } from "./columns.ts";

export const PROXY_HEALTH = ["healthy", "degraded", "unhealthy"] as const;
export type ProxyHealth = (typeof PROXY_HEALTH)[number];

export const proxies = pgTable(
  "proxies",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ownerId: text("owner_id").notNull(),
    /** The owner's tier: caps this proxy's replicas (manual scales, evaluations, the control loop). */
    ownerTier: text("owner_tier").$type<Tier>().notNull().default("free"),
    name: text("name").notNull(),
    environment: text("environment").notNull().default("production"),
    region: text("region"),
    actuatorKind: text("actuator_kind").$type<ActuatorKind>().notNull().default("none"),
    actuatorConfig: jsonb("actuator_config").$type<Record<string, unknown>>().notNull().default({}),
    /** How the proxy's load reaches ProxyScale: core's metricsSourceSchema, as given (secrets included). */
    metricsSource: jsonb("metrics_source")
      .$type<Record<string, unknown>>()
      .notNull()
      .default({ kind: "push" }),
    currentReplicas: integer("current_replicas").notNull().default(0),
    desiredReplicas: integer("desired_replicas").notNull().default(0),
    health: text("health").$type<ProxyHealth>().notNull().default("healthy"),
    unhealthyReplicas: integer("unhealthy_replicas").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique("proxies_owner_name_unique").on(t.ownerId, t.name),
    index("proxies_owner_created_idx").on(
      t.ownerId,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    index("proxies_created_idx").on(t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    check("proxies_name_not_blank", sql`length(trim(${t.name})) > 0`),
    check("proxies_environment_not_blank", sql`length(trim(${t.environment})) > 0`),
    check("proxies_actuator_kind_valid", oneOf(t.actuatorKind, ACTUATOR_KINDS)),
    check("proxies_health_valid", oneOf(t.health, PROXY_HEALTH)),
    check(
      "proxies_metrics_source_kind_valid",
      sql`${t.metricsSource}->>'kind' in (${sql.raw(METRICS_SOURCE_KINDS.map((kind) => `'${kind}'`).join(", "))})`,
    ),
    check("proxies_owner_tier_valid", oneOf(t.ownerTier, TIERS)),
    check("proxies_current_replicas_non_negative", sql`${t.currentReplicas} >= 0`),
    check("proxies_desired_replicas_non_negative", sql`${t.desiredReplicas} >= 0`),
    check("proxies_unhealthy_replicas_non_negative", sql`${t.unhealthyReplicas} >= 0`),
  ],
);
