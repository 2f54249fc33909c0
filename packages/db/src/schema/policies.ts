import type { Behavior, PolicyMode, StrategyName } from "@proxyscale/core";
import { POLICY_MODES, STRATEGY_NAMES } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import {
  check,
  doublePrecision,
  integer,
  jsonb,
  type PgColumn,
  pgTable,
  text,
  uuid,
} from "drizzle-orm/pg-core";
import { createdAt, oneOf, updatedAt } from "./columns.ts";
import { proxies } from "./proxies.ts";

/**
 * A policy is stored as the seed's columns (queryable, checked by the database) plus `strategy` and `mode`,
 * with HPA's `behavior` and every other setting of the policy (step sizes, target tracking targets,
 * step scaling, metrics max age) as jsonb. Reading assembles the parts and parses them with core's schema.
 */
function policyColumns() {
  return {
    minReplicas: integer("min_replicas").notNull(),
    maxReplicas: integer("max_replicas").notNull(),
    targetCpuPercent: doublePrecision("target_cpu_percent").notNull(),
    targetMemoryPercent: doublePrecision("target_memory_percent").notNull(),
    targetRequestRate: doublePrecision("target_request_rate").notNull(),
    scaleUpThreshold: doublePrecision("scale_up_threshold").notNull(),
    scaleDownThreshold: doublePrecision("scale_down_threshold").notNull(),
    scaleUpCooldownSeconds: integer("scale_up_cooldown_seconds").notNull(),
    scaleDownCooldownSeconds: integer("scale_down_cooldown_seconds").notNull(),
    strategy: text("strategy").$type<StrategyName>().notNull(),
    mode: text("mode").$type<PolicyMode>().notNull(),
    behavior: jsonb("behavior").$type<Behavior>().notNull(),
    strategySettings: jsonb("strategy_settings").$type<Record<string, unknown>>().notNull(),
    createdBy: text("created_by").notNull(),
    updatedBy: text("updated_by").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  };
}

interface PolicyColumnRefs {
  minReplicas: PgColumn;
  maxReplicas: PgColumn;
  targetCpuPercent: PgColumn;
  targetMemoryPercent: PgColumn;
  targetRequestRate: PgColumn;
  scaleUpThreshold: PgColumn;
  scaleDownThreshold: PgColumn;
  scaleUpCooldownSeconds: PgColumn;
  scaleDownCooldownSeconds: PgColumn;
  strategy: PgColumn;
  mode: PgColumn;
}

/** The rules core's schema checks, repeated in the database so no writer can bypass them. */
function policyChecks(prefix: string, t: PolicyColumnRefs) {
  return [
    check(`${prefix}_min_replicas_non_negative`, sql`${t.minReplicas} >= 0`),
    check(`${prefix}_max_replicas_positive`, sql`${t.maxReplicas} >= 1`),
    check(`${prefix}_min_le_max`, sql`${t.minReplicas} <= ${t.maxReplicas}`),
    check(
      `${prefix}_percents_valid`,
      sql`${t.targetCpuPercent} > 0 and ${t.targetCpuPercent} <= 100 and ${t.targetMemoryPercent} > 0 and ${t.targetMemoryPercent} <= 100 and ${t.scaleUpThreshold} > 0 and ${t.scaleUpThreshold} <= 100 and ${t.scaleDownThreshold} > 0 and ${t.scaleDownThreshold} <= 100`,
    ),
    check(`${prefix}_thresholds_ordered`, sql`${t.scaleDownThreshold} < ${t.scaleUpThreshold}`),
    check(`${prefix}_target_request_rate_positive`, sql`${t.targetRequestRate} > 0`),
    check(
      `${prefix}_cooldowns_non_negative`,
      sql`${t.scaleUpCooldownSeconds} >= 0 and ${t.scaleDownCooldownSeconds} >= 0`,
    ),
    check(`${prefix}_strategy_valid`, oneOf(t.strategy, STRATEGY_NAMES)),
    check(`${prefix}_mode_valid`, oneOf(t.mode, POLICY_MODES)),
  ];
}

/** The seed's table: one policy per proxy. */
export const proxyScalingPolicies = pgTable(
  "proxy_scaling_policies",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    proxyId: uuid("proxy_id")
      .notNull()
      .unique("proxy_scaling_policies_proxy_unique")
      .references(() => proxies.id, { onDelete: "cascade" }),
    ownerId: text("owner_id").notNull(),
    ...policyColumns(),
  },
  (t) => policyChecks("proxy_scaling_policies", t),
);

/** The default policy of an environment, used by proxies of that environment without a policy of their own. */
export const environmentScalingPolicies = pgTable(
  "environment_scaling_policies",
  {
    environment: text("environment").primaryKey(),
    ...policyColumns(),
  },
  (t) => [
    check("environment_scaling_policies_environment_not_blank", sql`length(trim(${t.environment})) > 0`),
    ...policyChecks("environment_scaling_policies", t),
  ],
);
