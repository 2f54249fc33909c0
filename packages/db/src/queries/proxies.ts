import {
  type ActuatorKind,
  metricsSourceSchema,
  parseActuatorConfig,
  REDACTED,
  redactActuatorConfig,
  redactMetricsSource,
  type Tier,
} from "@proxyscale/core";
import { and, count, desc, eq, type SQL, sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows, withTransaction } from "../db.ts";
import { CapExceededError, ConflictError, NotFoundError, violatedConstraint } from "../errors.ts";
import type { ProxyActuator, ProxyRecord } from "../records.ts";
import { type ProxyHealth, proxies } from "../schema/index.ts";
import { writeAudit } from "./audit.ts";
import { afterCursor, type Page, pageSize, toPage } from "./cursor.ts";
import { inList } from "./pg-array.ts";

export type { ProxyActuator, ProxyRecord } from "../records.ts";

export interface CreateProxyInput {
  ownerId: string;
  /** Default `free` (the column's default). */
  ownerTier?: Tier;
  name: string;
  /** Default `production`. */
  environment?: string;
  region?: string | null;
  /** Default `{ kind: "none", config: {} }`. */
  actuator?: { kind: ActuatorKind; config?: Record<string, unknown> };
  /** Core's metrics source, parsed; default `{ kind: "push" }`. */
  metricsSource?: Record<string, unknown>;
  /** Default 1 (the seed's minReplicas). */
  currentReplicas?: number;
  /** Default: currentReplicas. */
  desiredReplicas?: number;
}

export interface ProxyPatch {
  name?: string;
  ownerTier?: Tier;
  environment?: string;
  region?: string | null;
  actuator?: { kind: ActuatorKind; config?: Record<string, unknown> };
  metricsSource?: Record<string, unknown>;
  currentReplicas?: number;
  desiredReplicas?: number;
}

type ProxyRow = typeof proxies.$inferSelect;

/** Namespace of the per-owner advisory locks that serialise registrations of one owner. */
const OWNER_LOCK_PREFIX = "proxyscale.owner:";

export function toProxyRecord(row: ProxyRow): ProxyRecord {
  return {
    id: row.id,
    ownerId: row.ownerId,
    ownerTier: row.ownerTier,
    name: row.name,
    environment: row.environment,
    region: row.region,
    actuator: { kind: row.actuatorKind, config: row.actuatorConfig },
    metricsSource: row.metricsSource,
    currentReplicas: row.currentReplicas,
    desiredReplicas: row.desiredReplicas,
    health: row.health,
    unhealthyReplicas: row.unhealthyReplicas,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * The audit log keeps that an actuator's secrets changed, never their values: core's redaction when the config
 * parses as core's actuator config, else every value of it redacted.
 */
function redactActuator(actuator: ProxyActuator): ProxyActuator {
  try {
    const { kind: _kind, ...config } = redactActuatorConfig(
      parseActuatorConfig({ ...actuator.config, kind: actuator.kind }),
    );
    return { kind: actuator.kind, config };
  } catch {
    return {
      kind: actuator.kind,
      config: Object.fromEntries(Object.keys(actuator.config).map((key) => [key, REDACTED])),
    };
  }
}

/** The audit log's copy of a metrics source: core's redaction when it parses, else every value redacted. */
function redactSource(source: Record<string, unknown>): Record<string, unknown> {
  const parsed = metricsSourceSchema.safeParse(source);
  if (parsed.success) return redactMetricsSource(parsed.data);
  return Object.fromEntries(Object.keys(source).map((key) => [key, key === "kind" ? source.kind : REDACTED]));
}

function auditView(record: ProxyRecord | null) {
  return record
    ? {
        ...record,
        actuator: redactActuator(record.actuator),
        metricsSource: redactSource(record.metricsSource),
      }
    : null;
}

function ownedBy(id: string, ownerId: string | undefined): SQL | undefined {
  return and(eq(proxies.id, id), ownerId === undefined ? undefined : eq(proxies.ownerId, ownerId));
}

function duplicateName(error: unknown, ownerId: string, name: string): unknown {
  return violatedConstraint(error)?.constraint === "proxies_owner_name_unique"
    ? new ConflictError(`a proxy named "${name}" already exists for owner ${ownerId}`, { cause: error })
    : error;
}

/**
 * Creates the proxy and its audit entry in one transaction. With `maxProxiesPerOwner`, the owner's count is
 * checked in the same transaction under a per-owner advisory lock (`pg_advisory_xact_lock`, released at commit),
 * so concurrent registrations of one owner, on any number of servers, never pass the cap: the next one waits,
 * then counts the committed rows. Throws CapExceededError when the owner already has that many.
 */
export async function createProxy(
  db: Db,
  input: CreateProxyInput & { actorId: string; maxProxiesPerOwner?: number },
): Promise<ProxyRecord> {
  const currentReplicas = input.currentReplicas ?? 1;
  const ownerTier = input.ownerTier ?? "free";
  try {
    return await withTransaction(db, async (tx) => {
      const cap = input.maxProxiesPerOwner;
      if (cap !== undefined) {
        const lockKey = `${OWNER_LOCK_PREFIX}${input.ownerId}`;
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${lockKey}::text, 0))`);
        const owned = await countProxies(tx, { ownerId: input.ownerId });
        if (owned >= cap) throw new CapExceededError("maxProxiesPerOwner", ownerTier, cap, owned + 1);
      }
      const [row] = await tx
        .insert(proxies)
        .values({
          ownerId: input.ownerId,
          ownerTier,
          name: input.name,
          environment: input.environment ?? "production",
          region: input.region ?? null,
          actuatorKind: input.actuator?.kind ?? "none",
          actuatorConfig: input.actuator?.config ?? {},
          metricsSource: input.metricsSource ?? { kind: "push" },
          currentReplicas,
          desiredReplicas: input.desiredReplicas ?? currentReplicas,
        })
        .returning();
      const record = toProxyRecord(row!);
      await writeAudit(tx, {
        actorId: input.actorId,
        action: "proxy.create",
        entityType: "proxy",
        entityId: record.id,
        before: null,
        after: auditView(record),
      });
      return record;
    });
  } catch (error) {
    throw duplicateName(error, input.ownerId, input.name);
  }
}

/** The proxy, or null when it does not exist or (with `ownerId`) belongs to someone else. */
export async function getProxy(db: Db, args: { id: string; ownerId?: string }): Promise<ProxyRecord | null> {
  if (!isUuid(args.id)) return null;
  const [row] = await db.select().from(proxies).where(ownedBy(args.id, args.ownerId));
  return row ? toProxyRecord(row) : null;
}

/** Newest first; `ownerId` omitted lists every owner's (admins). */
export async function listProxies(
  db: Db,
  args: { ownerId?: string; environment?: string; limit?: number; cursor?: string | null } = {},
): Promise<Page<ProxyRecord>> {
  const size = pageSize(args.limit);
  const rows = await db
    .select()
    .from(proxies)
    .where(
      and(
        args.ownerId === undefined ? undefined : eq(proxies.ownerId, args.ownerId),
        args.environment === undefined ? undefined : eq(proxies.environment, args.environment),
        afterCursor(args.cursor, proxies.createdAt, proxies.id),
      ),
    )
    .orderBy(desc(proxies.createdAt), desc(proxies.id))
    .limit(size + 1);
  return toPage(rows.map(toProxyRecord), size, (record) => ({ at: record.createdAt, id: record.id }));
}

export async function countProxies(db: Db, args: { ownerId: string }): Promise<number> {
  const [row] = await db.select({ n: count() }).from(proxies).where(eq(proxies.ownerId, args.ownerId));
  return row?.n ?? 0;
}

/** Locks the proxy row for the rest of the transaction; throws NotFoundError when absent. */
export async function lockProxy(tx: Db, id: string, ownerId?: string): Promise<ProxyRecord> {
  if (!isUuid(id)) throw new NotFoundError("proxy", id);
  const [row] = await tx.select().from(proxies).where(ownedBy(id, ownerId)).for("no key update");
  if (!row) throw new NotFoundError("proxy", id);
  return toProxyRecord(row);
}

export async function updateProxy(
  db: Db,
  args: { id: string; ownerId?: string; patch: ProxyPatch; actorId: string },
): Promise<ProxyRecord> {
  const { patch } = args;
  try {
    return await withTransaction(db, async (tx) => {
      const before = await lockProxy(tx, args.id, args.ownerId);
      const [row] = await tx
        .update(proxies)
        .set({
          name: patch.name,
          ownerTier: patch.ownerTier,
          environment: patch.environment,
          region: patch.region,
          actuatorKind: patch.actuator?.kind,
          actuatorConfig: patch.actuator ? (patch.actuator.config ?? {}) : undefined,
          metricsSource: patch.metricsSource,
          currentReplicas: patch.currentReplicas,
          desiredReplicas: patch.desiredReplicas,
          updatedAt: sql`now()`,
        })
        .where(eq(proxies.id, before.id))
        .returning();
      const after = toProxyRecord(row!);
      await writeAudit(tx, {
        actorId: args.actorId,
        action: "proxy.update",
        entityType: "proxy",
        entityId: after.id,
        before: auditView(before),
        after: auditView(after),
      });
      return after;
    });
  } catch (error) {
    throw duplicateName(error, args.ownerId ?? "", patch.name ?? "");
  }
}

/** Deletes the proxy and, by cascade, its policy, samples, rollups, decisions, events and history. */
export async function deleteProxy(
  db: Db,
  args: { id: string; ownerId?: string; actorId: string },
): Promise<ProxyRecord> {
  return withTransaction(db, async (tx) => {
    const before = await lockProxy(tx, args.id, args.ownerId);
    await tx.delete(proxies).where(eq(proxies.id, before.id));
    await writeAudit(tx, {
      actorId: args.actorId,
      action: "proxy.delete",
      entityType: "proxy",
      entityId: before.id,
      before: auditView(before),
      after: null,
    });
    return before;
  });
}

/** An observation (from an actuator or a report), not a change by a person: not audited. */
export async function setProxyHealth(
  db: Db,
  args: { id: string; health: ProxyHealth; unhealthyReplicas: number },
): Promise<ProxyRecord> {
  if (!isUuid(args.id)) throw new NotFoundError("proxy", args.id);
  const [row] = await db
    .update(proxies)
    .set({ health: args.health, unhealthyReplicas: args.unhealthyReplicas, updatedAt: sql`now()` })
    .where(eq(proxies.id, args.id))
    .returning();
  if (!row) throw new NotFoundError("proxy", args.id);
  return toProxyRecord(row);
}

/** What the actuator observes running. An observation: not audited. */
export async function setObservedReplicas(
  db: Db,
  args: { id: string; currentReplicas: number },
): Promise<ProxyRecord> {
  if (!isUuid(args.id)) throw new NotFoundError("proxy", args.id);
  const [row] = await db
    .update(proxies)
    .set({ currentReplicas: args.currentReplicas, updatedAt: sql`now()` })
    .where(eq(proxies.id, args.id))
    .returning();
  if (!row) throw new NotFoundError("proxy", args.id);
  return toProxyRecord(row);
}

/** Of `proxyIds`, the ones that still exist (what a server keeps actuators open for), in one query. */
export async function existingProxyIds(db: Db, args: { proxyIds: readonly string[] }): Promise<Set<string>> {
  const ids = args.proxyIds.filter(isUuid);
  if (ids.length === 0) return new Set();
  const rows = await queryPreparedRows<{ id: string }>(
    db,
    sql`select ${proxies.id} as id from ${proxies} where ${inList(proxies.id, ids, "uuid")}`,
  );
  return new Set(rows.map((row) => row.id));
}
