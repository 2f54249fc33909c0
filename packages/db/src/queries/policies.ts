import {
  DEFAULT_POLICY,
  parsePolicy,
  parseStoredPolicy,
  type ScalingPolicy,
  type Tier,
} from "@proxyscale/core";
import { eq, getTableName, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import { type Db, isUuid, queryPreparedRows, withTransaction } from "../db.ts";
import { NotFoundError } from "../errors.ts";
import type { PolicySource } from "../records.ts";
import { environmentScalingPolicies, proxies, proxyScalingPolicies } from "../schema/index.ts";
import { writeAudit } from "./audit.ts";
import { aliased } from "./names.ts";
import { inList } from "./pg-array.ts";
import { lockProxy } from "./proxies.ts";

export type { PolicySource } from "../records.ts";

/** The policy fields stored as their own columns; every other field (but `behavior`) goes to `strategy_settings`. */
const COLUMN_FIELDS = [
  "minReplicas",
  "maxReplicas",
  "targetCpuPercent",
  "targetMemoryPercent",
  "targetRequestRate",
  "scaleUpThreshold",
  "scaleDownThreshold",
  "scaleUpCooldownSeconds",
  "scaleDownCooldownSeconds",
  "strategy",
  "mode",
] as const satisfies readonly (keyof ScalingPolicy)[];

type PolicyColumnValues = Pick<ScalingPolicy, (typeof COLUMN_FIELDS)[number] | "behavior"> & {
  strategySettings: Record<string, unknown>;
};

/** Splits a parsed policy into the table's columns. */
export function policyToColumns(policy: ScalingPolicy): PolicyColumnValues {
  const strategySettings: Record<string, unknown> = {};
  const columns: Record<string, unknown> = { behavior: policy.behavior };
  for (const [key, value] of Object.entries(policy)) {
    if ((COLUMN_FIELDS as readonly string[]).includes(key)) columns[key] = value;
    else if (key !== "behavior") strategySettings[key] = value;
  }
  return { ...(columns as Omit<PolicyColumnValues, "strategySettings">), strategySettings };
}

/**
 * Reassembles a stored policy and parses it with core's schema, which fills the defaults of any field added to
 * core after the row was written, and reads a value past a bound added since (a huge metricsMaxAgeSeconds) as
 * the bound (core's parseStoredPolicy).
 */
export function columnsToPolicy(row: PolicyColumnValues): ScalingPolicy {
  const policy: Record<string, unknown> = { ...row.strategySettings, behavior: row.behavior };
  for (const key of COLUMN_FIELDS) policy[key] = row[key];
  return parseStoredPolicy(policy);
}

/** A policy table as the effective-policy statements name it (both tables have the policy columns). */
type PolicyTable = typeof ownPolicy | typeof environmentPolicy;

/**
 * The policy columns of `table` (an `alias()` of a policy table), named "<alias>.<field>", jsonb as text: the
 * text is the memo key of `policyFromRow`, and parsing JSON once per distinct policy beats the driver parsing it
 * per row.
 */
export function policyColumnsSql(table: PolicyTable): SQL {
  const as = (field: string) => sql.identifier(`${getTableName(table)}.${field}`);
  return sql.join(
    [
      ...COLUMN_FIELDS.map((field) => sql`${table[field]} as ${as(field)}`),
      sql`${table.behavior}::text as ${as("behavior")}`,
      sql`${table.strategySettings}::text as ${as("strategySettings")}`,
    ],
    sql`, `,
  );
}

const MEMO_LIMIT = 10_000;
const parsedPolicies = new Map<string, ScalingPolicy>();

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * The policy selected with `policyColumnsSql(table)`, or null when the row has none (a left join's miss). Parsed
 * once per distinct content (many proxies share a policy) and returned frozen, shared between callers.
 */
export function policyFromRow(row: Record<string, unknown>, table: PolicyTable): ScalingPolicy | null {
  const alias = getTableName(table);
  if (row[`${alias}.minReplicas`] === null || row[`${alias}.minReplicas`] === undefined) return null;
  const behavior = row[`${alias}.behavior`] as string;
  const settings = row[`${alias}.strategySettings`] as string;
  const key = [...COLUMN_FIELDS.map((field) => row[`${alias}.${field}`]), behavior, settings].join("\u0001");
  const cached = parsedPolicies.get(key);
  if (cached) return cached;
  const columns = Object.fromEntries(COLUMN_FIELDS.map((field) => [field, row[`${alias}.${field}`]]));
  const policy = deepFreeze(
    columnsToPolicy({
      ...(columns as Pick<ScalingPolicy, (typeof COLUMN_FIELDS)[number]>),
      behavior: JSON.parse(behavior),
      strategySettings: JSON.parse(settings),
    }),
  );
  if (parsedPolicies.size >= MEMO_LIMIT) parsedPolicies.clear();
  parsedPolicies.set(key, policy);
  return policy;
}

/** Core's default, frozen so that sharing it between proxies is safe. */
export const FROZEN_DEFAULT_POLICY: ScalingPolicy = deepFreeze(structuredClone(DEFAULT_POLICY));

export async function getPolicy(db: Db, args: { proxyId: string }): Promise<ScalingPolicy | null> {
  if (!isUuid(args.proxyId)) return null;
  const [row] = await db
    .select()
    .from(proxyScalingPolicies)
    .where(eq(proxyScalingPolicies.proxyId, args.proxyId));
  return row ? columnsToPolicy(row) : null;
}

/** Creates or replaces the proxy's policy, with its audit entry, in one transaction. Throws NotFoundError. */
export async function upsertPolicy(
  db: Db,
  args: { proxyId: string; policy: ScalingPolicy; actorId: string },
): Promise<{ policy: ScalingPolicy; created: boolean }> {
  const policy = parsePolicy(args.policy);
  const columns = policyToColumns(policy);
  return withTransaction(db, async (tx) => {
    const proxy = await lockProxy(tx, args.proxyId);
    const before = await getPolicy(tx, { proxyId: proxy.id });
    const [row] = await tx
      .insert(proxyScalingPolicies)
      .values({
        proxyId: proxy.id,
        ownerId: proxy.ownerId,
        ...columns,
        createdBy: args.actorId,
        updatedBy: args.actorId,
      })
      .onConflictDoUpdate({
        target: proxyScalingPolicies.proxyId,
        set: { ...columns, updatedBy: args.actorId, updatedAt: sql`now()` },
      })
      .returning();
    const stored = columnsToPolicy(row!);
    await writeAudit(tx, {
      actorId: args.actorId,
      action: before ? "policy.update" : "policy.create",
      entityType: "policy",
      entityId: proxy.id,
      before,
      after: stored,
    });
    return { policy: stored, created: before === null };
  });
}

/** Removes the proxy's own policy (it falls back to its environment's or the default). Throws NotFoundError. */
export async function deletePolicy(
  db: Db,
  args: { proxyId: string; actorId: string },
): Promise<ScalingPolicy> {
  return withTransaction(db, async (tx) => {
    const proxy = await lockProxy(tx, args.proxyId);
    const [row] = await tx
      .delete(proxyScalingPolicies)
      .where(eq(proxyScalingPolicies.proxyId, proxy.id))
      .returning();
    if (!row) throw new NotFoundError("policy of proxy", proxy.id);
    const before = columnsToPolicy(row);
    await writeAudit(tx, {
      actorId: args.actorId,
      action: "policy.delete",
      entityType: "policy",
      entityId: proxy.id,
      before,
      after: null,
    });
    return before;
  });
}

export async function getEnvironmentPolicy(
  db: Db,
  args: { environment: string },
): Promise<ScalingPolicy | null> {
  const [row] = await db
    .select()
    .from(environmentScalingPolicies)
    .where(eq(environmentScalingPolicies.environment, args.environment));
  return row ? columnsToPolicy(row) : null;
}

export interface EnvironmentPolicyRecord {
  environment: string;
  policy: ScalingPolicy;
  updatedBy: string;
  updatedAt: Date;
}

export async function listEnvironmentPolicies(db: Db): Promise<EnvironmentPolicyRecord[]> {
  const rows = await db
    .select()
    .from(environmentScalingPolicies)
    .orderBy(environmentScalingPolicies.environment);
  return rows.map((row) => ({
    environment: row.environment,
    policy: columnsToPolicy(row),
    updatedBy: row.updatedBy,
    updatedAt: row.updatedAt,
  }));
}

/** Sets the default policy of an environment, with its audit entry, in one transaction. */
export async function setEnvironmentPolicy(
  db: Db,
  args: { environment: string; policy: ScalingPolicy; actorId: string },
): Promise<{ policy: ScalingPolicy; created: boolean }> {
  const policy = parsePolicy(args.policy);
  const columns = policyToColumns(policy);
  return withTransaction(db, async (tx) => {
    const [existing] = await tx
      .select()
      .from(environmentScalingPolicies)
      .where(eq(environmentScalingPolicies.environment, args.environment))
      .for("update");
    const before = existing ? columnsToPolicy(existing) : null;
    const [row] = await tx
      .insert(environmentScalingPolicies)
      .values({ environment: args.environment, ...columns, createdBy: args.actorId, updatedBy: args.actorId })
      .onConflictDoUpdate({
        target: environmentScalingPolicies.environment,
        set: { ...columns, updatedBy: args.actorId, updatedAt: sql`now()` },
      })
      .returning();
    const stored = columnsToPolicy(row!);
    await writeAudit(tx, {
      actorId: args.actorId,
      action: before ? "environment_policy.update" : "environment_policy.create",
      entityType: "environment_policy",
      entityId: args.environment,
      before,
      after: stored,
    });
    return { policy: stored, created: before === null };
  });
}

/** Removes an environment's default policy. Throws NotFoundError when it has none. */
export async function deleteEnvironmentPolicy(
  db: Db,
  args: { environment: string; actorId: string },
): Promise<ScalingPolicy> {
  return withTransaction(db, async (tx) => {
    const [row] = await tx
      .delete(environmentScalingPolicies)
      .where(eq(environmentScalingPolicies.environment, args.environment))
      .returning();
    if (!row) throw new NotFoundError("environment policy", args.environment);
    const before = columnsToPolicy(row);
    await writeAudit(tx, {
      actorId: args.actorId,
      action: "environment_policy.delete",
      entityType: "environment_policy",
      entityId: args.environment,
      before,
      after: null,
    });
    return before;
  });
}

/** The proxy's own policy and its environment's, as the statements of the effective-policy rule join them. */
export const ownPolicy = alias(proxyScalingPolicies, "own");
export const environmentPolicy = alias(environmentScalingPolicies, "env");

/**
 * The effective-policy rule, in one place: the proxy's own policy, else its environment's, else core's default.
 * These layers are its order; `effectivePolicy` applies it to policies read, `effectivePolicyColumnSql` in SQL.
 */
const POLICY_LAYERS = [
  { source: "proxy", table: ownPolicy },
  { source: "environment", table: environmentPolicy },
] as const;

export interface EffectivePolicy {
  policy: ScalingPolicy;
  source: PolicySource;
}

/**
 * The policy that applies, from a proxy's stored policies (either form: rows or parsed policies, `toPolicy`
 * turning the chosen one into a policy, so only that one is parsed). Core's default is shared, frozen.
 */
export function effectivePolicy<T>(
  stored: { proxy: T | null; environment: T | null },
  toPolicy: (stored: T) => ScalingPolicy,
): EffectivePolicy {
  for (const { source } of POLICY_LAYERS) {
    const layer = stored[source];
    if (layer) return { policy: toPolicy(layer), source };
  }
  return { policy: FROZEN_DEFAULT_POLICY, source: "default" };
}

/** `proxies` left-joined to its own policy (`ownPolicy`) and its environment's (`environmentPolicy`). */
export function effectivePolicyJoins(): SQL {
  return sql`left join ${aliased(proxyScalingPolicies, ownPolicy)} on ${ownPolicy.proxyId} = ${proxies.id}
    left join ${aliased(environmentScalingPolicies, environmentPolicy)}
      on ${environmentPolicy.environment} = ${proxies.environment}`;
}

/**
 * One column of the effective policy in SQL, over `effectivePolicyJoins`: the first layer's value, else the
 * default's. A layer's column is null only when it has no policy (every policy column is NOT NULL).
 */
export function effectivePolicyColumnSql(field: "mode"): SQL {
  const layers = POLICY_LAYERS.map(({ table }) => sql`${table[field]}`);
  return sql`coalesce(${sql.join(layers, sql`, `)}, ${FROZEN_DEFAULT_POLICY[field]})`;
}

/** The policy that applies to the proxy and where it comes from, in one query; null when the proxy is absent. */
export async function getEffectivePolicy(db: Db, args: { proxyId: string }): Promise<EffectivePolicy | null> {
  const effective = (await getEffectivePolicies(db, { proxyIds: [args.proxyId] })).get(args.proxyId);
  return effective ? { policy: effective.policy, source: effective.source } : null;
}

/**
 * For each proxy: its owner, the owner's tier (for the tier's caps) and the policy that applies, in one prepared statement for all of them (a batch of
 * pushes), each stored policy parsed once per distinct content (`policyFromRow`). Unknown ids are absent.
 */
export async function getEffectivePolicies(
  db: Db,
  args: { proxyIds: readonly string[] },
): Promise<Map<string, EffectivePolicy & { ownerId: string; ownerTier: Tier }>> {
  const result = new Map<string, EffectivePolicy & { ownerId: string; ownerTier: Tier }>();
  const ids = args.proxyIds.filter(isUuid);
  if (ids.length === 0) return result;
  const rows = await queryPreparedRows<
    { id: string; ownerId: string; ownerTier: Tier } & Record<string, unknown>
  >(
    db,
    sql`select ${proxies.id} as id, ${proxies.ownerId} as "ownerId", ${proxies.ownerTier} as "ownerTier",
          ${policyColumnsSql(ownPolicy)},
          ${policyColumnsSql(environmentPolicy)}
        from ${proxies} ${effectivePolicyJoins()}
        where ${inList(proxies.id, ids, "uuid")}`,
  );
  for (const row of rows) {
    const stored = {
      proxy: policyFromRow(row, ownPolicy),
      environment: policyFromRow(row, environmentPolicy),
    };
    result.set(row.id, {
      ownerId: row.ownerId,
      ownerTier: row.ownerTier,
      ...effectivePolicy(stored, (policy) => policy),
    });
  }
  return result;
}
