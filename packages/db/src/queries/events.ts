import type { CompletionStatus, Decision, MetricSample, ScalingTrigger } from "@proxyscale/core";
import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { type Db, isUuid, queryRows } from "../db.ts";
import { ConflictError, NotFoundError, violatedConstraint } from "../errors.ts";
import type { ScalingEventRecord } from "../records.ts";
import { withRetriedTransaction } from "../retry.ts";
import {
  ACTIVE_EVENT_STATUSES,
  auditLog,
  type HistorySnapshot,
  proxies,
  proxyScalingEvents,
  proxyScalingHistory,
  type ScalingEventStatus,
  type ScalingEventType,
  scalingDecisions,
} from "../schema/index.ts";
import { writeAudit } from "./audit.ts";
import { afterCursor, type Page, pageSize, toPage } from "./cursor.ts";
import { latestSamples } from "./metrics.ts";
import { col, cols, selectAll } from "./names.ts";
import { lockProxy } from "./proxies.ts";
import { toDate } from "./time.ts";

/**
 * The scaling event's state machine, whole: create (pending, with its history snapshot) → start (in_progress,
 * audited) → complete | fail | cancel, and the reads that recovery and the API need. Every transition is checked
 * in SQL (`UPDATE … WHERE status …`), so of concurrent callers on any number of servers exactly one wins.
 *
 * One lock order for everything that writes a proxy and its events: the proxy row first (`FOR NO KEY UPDATE`,
 * which foreign-key checks of samples and decisions do not wait for), then its events. A manual scale locks the
 * proxy and inserts an event; a completion updated the event, then the proxy's replicas: in opposite orders, the
 * two deadlocked under concurrent scales. What PostgreSQL can still abort (a deadlock with some other path, a
 * serialization failure) is run again by withRetriedTransaction.
 */

export type { ScalingEventRecord } from "../records.ts";

function toEventRecord(row: typeof proxyScalingEvents.$inferSelect): ScalingEventRecord {
  return { ...row };
}

export interface CreateScalingEventInput {
  proxyId: string;
  /** Derived from the replica counts when omitted; the database rejects one that contradicts them. */
  eventType?: ScalingEventType;
  /**
   * The replica count the scale was decided from; refused with ConflictError when the proxy no longer runs it (a
   * scale completed in between, e.g. on another server). The proxy's current replicas when omitted.
   */
  previousReplicas?: number;
  newReplicas: number;
  triggeredBy: ScalingTrigger;
  reason: string;
  decisionId?: string | null;
  /** The metrics to keep with the event; the proxy's latest samples when omitted. */
  snapshot?: HistorySnapshot;
  /** Who asked; audited for manual and admin scales. */
  actorId?: string;
}

/**
 * Records a scale: the event (pending), its history snapshot and the proxy's desired replicas, in ONE transaction.
 * Refused with ConflictError when the count is already in effect, when the proxy no longer runs the given
 * `previousReplicas`, or when another event of the proxy is in flight (a partial unique index guarantees the latter
 * even between servers).
 */
export async function createScalingEvent(
  db: Db,
  input: CreateScalingEventInput,
): Promise<ScalingEventRecord> {
  try {
    return await withRetriedTransaction(db, async (tx) => {
      const proxy = await lockProxy(tx, input.proxyId);
      const previousReplicas = input.previousReplicas ?? proxy.currentReplicas;
      if (previousReplicas !== proxy.currentReplicas) {
        throw new ConflictError(
          `proxy ${proxy.id} runs ${proxy.currentReplicas} replicas now, not the ${previousReplicas} this scale was decided from`,
        );
      }
      if (input.newReplicas === previousReplicas) {
        throw new ConflictError(`proxy ${proxy.id} already runs ${previousReplicas} replicas`);
      }
      const [row] = await tx
        .insert(proxyScalingEvents)
        .values({
          proxyId: proxy.id,
          eventType: input.eventType ?? (input.newReplicas > previousReplicas ? "scale_up" : "scale_down"),
          previousReplicas,
          newReplicas: input.newReplicas,
          triggeredBy: input.triggeredBy,
          reason: input.reason,
          decisionId: input.decisionId ?? null,
          createdBy: input.actorId ?? null,
        })
        .returning();
      const event = toEventRecord(row!);
      const snapshot = input.snapshot ?? (await currentSnapshot(tx, proxy.id, input.decisionId ?? null));
      await tx.insert(proxyScalingHistory).values({
        eventId: event.id,
        proxyId: proxy.id,
        recordedAt: event.createdAt,
        previousReplicas,
        newReplicas: input.newReplicas,
        loadScore: snapshot.loadScore,
        metrics: snapshot.samples,
        decision: snapshot.decision ?? null,
      });
      await tx
        .update(proxies)
        .set({ desiredReplicas: input.newReplicas, updatedAt: sql`now()` })
        .where(eq(proxies.id, proxy.id));
      if (input.triggeredBy !== "auto") {
        await writeAudit(tx, {
          actorId: input.actorId ?? input.triggeredBy,
          action: "scaling.execute",
          entityType: "scaling_event",
          entityId: event.id,
          before: { proxyId: proxy.id, desiredReplicas: proxy.desiredReplicas },
          after: event,
        });
      }
      return event;
    });
  } catch (error) {
    const violation = violatedConstraint(error);
    if (violation?.constraint === "proxy_scaling_events_one_active_per_proxy") {
      throw new ConflictError(`proxy ${input.proxyId} already has a scaling event in flight`, {
        cause: error,
      });
    }
    if (violation?.code === "23503" && violation.constraint.includes("decision")) {
      throw new NotFoundError("decision", String(input.decisionId));
    }
    throw error;
  }
}

async function currentSnapshot(tx: Db, proxyId: string, decisionId: string | null): Promise<HistorySnapshot> {
  const latest = (await latestSamples(tx, { proxyIds: [proxyId] })).get(proxyId) ?? [];
  const samples: MetricSample[] = latest.map(
    ({ loadScore: _score, replicas: _r, unhealthyReplicas: _u, ...s }) => s,
  );
  const loadScore =
    latest.length > 0 ? latest.reduce((sum, sample) => sum + sample.loadScore, 0) / latest.length : null;
  let decision: Decision | null = null;
  if (decisionId && isUuid(decisionId)) {
    const [row] = await tx
      .select({ decision: scalingDecisions.decision })
      .from(scalingDecisions)
      .where(eq(scalingDecisions.id, decisionId));
    decision = row?.decision ?? null;
  }
  return { loadScore, samples, decision };
}

/**
 * Locks the row of the event's proxy (the lock order above); the proxy's id, or null when the event does not
 * exist.
 */
async function lockEventProxy(tx: Db, eventId: string): Promise<string | null> {
  const [row] = await tx
    .select({ id: proxies.id })
    .from(proxies)
    .innerJoin(proxyScalingEvents, eq(proxyScalingEvents.proxyId, proxies.id))
    .where(eq(proxyScalingEvents.id, eventId))
    .for("no key update", { of: proxies });
  return row?.id ?? null;
}

const IN_PROGRESS: ScalingEventStatus = "in_progress";
const PENDING: ScalingEventStatus = "pending";

/**
 * pending → in_progress with its audit entry, in ONE statement (data-modifying CTEs: both or neither, one round
 * trip on the path from a push to the actuator), the proxy row locked first like every writer of events. Null
 * when the event is not pending: another server took it, or it is finished.
 */
export async function startScalingEventAudited(
  db: Db,
  args: { eventId: string; actorId: string },
): Promise<ScalingEventRecord | null> {
  if (!isUuid(args.eventId)) return null;
  const e = proxyScalingEvents;
  const [row] = await queryRows<ScalingEventRecord>(
    db,
    sql`
      with locked as (
        select ${proxies.id} from ${proxies} join ${e} on ${e.proxyId} = ${proxies.id}
        where ${e.id} = ${args.eventId}::uuid
        for no key update of ${proxies}
      ), started as (
        update ${e} set ${col(e.status)} = ${IN_PROGRESS}, ${col(e.startedAt)} = now()
        from locked
        where ${e.id} = ${args.eventId}::uuid and ${e.proxyId} = locked.id and ${e.status} = ${PENDING}
        returning ${selectAll(e)}
      ), audited as (
        insert into ${auditLog} (${cols(auditLog.actorId, auditLog.action, auditLog.entityType, auditLog.entityId, auditLog.before, auditLog.after)})
        select ${args.actorId}, 'scaling.start', 'scaling_event', started.id::text,
          jsonb_build_object('status', ${PENDING}::text), to_jsonb(started)
        from started
      )
      select * from started`,
  );
  if (!row) return null;
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    ...row,
    createdAt: new Date(row.createdAt),
    startedAt: date(row.startedAt),
    completedAt: date(row.completedAt),
  };
}

/** The failure message stored when a caller fails an event without one (the database requires an error). */
export const UNSPECIFIED_ERROR = "failed without an error message";

/**
 * pending | in_progress → completed | failed | cancelled, in one `UPDATE … WHERE status IN (…) RETURNING`, so of
 * concurrent completions exactly one wins. Sets completedAt and durationMs (from startedAt, or createdAt when it
 * never started); a failed event keeps its error; `observedReplicas` updates the proxy's current replicas in the
 * same transaction, the proxy row locked first (the lock order above). A finished event is final: completing it
 * again throws ConflictError and changes nothing.
 */
export async function completeScalingEvent(
  db: Db,
  args: { eventId: string; status: CompletionStatus; error?: string | null; observedReplicas?: number },
): Promise<ScalingEventRecord> {
  if (!isUuid(args.eventId)) throw new NotFoundError("scaling event", args.eventId);
  const error = args.status === "failed" ? args.error?.trim() || UNSPECIFIED_ERROR : null;
  return withRetriedTransaction(db, async (tx) => {
    if ((await lockEventProxy(tx, args.eventId)) === null)
      throw new NotFoundError("scaling event", args.eventId);
    const completedAt = sql`now()::timestamptz(3)`;
    const [row] = await tx
      .update(proxyScalingEvents)
      .set({
        status: args.status,
        error,
        completedAt,
        durationMs: sql`round(extract(epoch from (${completedAt} - coalesce(${proxyScalingEvents.startedAt}, ${proxyScalingEvents.createdAt}))) * 1000)::int`,
      })
      .where(
        and(
          eq(proxyScalingEvents.id, args.eventId),
          inArray(proxyScalingEvents.status, [...ACTIVE_EVENT_STATUSES]),
        ),
      )
      .returning();
    if (!row) {
      const existing = await getScalingEvent(tx, { id: args.eventId });
      if (!existing) throw new NotFoundError("scaling event", args.eventId);
      throw new ConflictError(`scaling event ${args.eventId} is already ${existing.status}`);
    }
    if (args.observedReplicas !== undefined) {
      await tx
        .update(proxies)
        .set({ currentReplicas: args.observedReplicas, updatedAt: sql`now()` })
        .where(eq(proxies.id, row.proxyId));
    }
    return toEventRecord(row);
  });
}

export async function getScalingEvent(db: Db, args: { id: string }): Promise<ScalingEventRecord | null> {
  if (!isUuid(args.id)) return null;
  const [row] = await db.select().from(proxyScalingEvents).where(eq(proxyScalingEvents.id, args.id));
  return row ? toEventRecord(row) : null;
}

/** Newest first. */
export async function listScalingEvents(
  db: Db,
  args: { proxyId: string; limit?: number; cursor?: string | null },
): Promise<Page<ScalingEventRecord>> {
  const size = pageSize(args.limit);
  if (!isUuid(args.proxyId)) return { items: [], nextCursor: null };
  const rows = await db
    .select()
    .from(proxyScalingEvents)
    .where(
      and(
        eq(proxyScalingEvents.proxyId, args.proxyId),
        afterCursor(args.cursor, proxyScalingEvents.createdAt, proxyScalingEvents.id),
      ),
    )
    .orderBy(desc(proxyScalingEvents.createdAt), desc(proxyScalingEvents.id))
    .limit(size + 1);
  return toPage(rows.map(toEventRecord), size, (event) => ({ at: event.createdAt, id: event.id }));
}

/** The proxy's pending or in-progress event (there is at most one). */
export async function findActiveScalingEvent(
  db: Db,
  args: { proxyId: string },
): Promise<ScalingEventRecord | null> {
  if (!isUuid(args.proxyId)) return null;
  const [row] = await db
    .select()
    .from(proxyScalingEvents)
    .where(
      and(
        eq(proxyScalingEvents.proxyId, args.proxyId),
        inArray(proxyScalingEvents.status, [...ACTIVE_EVENT_STATUSES]),
      ),
    );
  return row ? toEventRecord(row) : null;
}

/** Events in flight across proxies, oldest first; `createdBefore` finds the ones a dead server left behind. */
export async function listActiveScalingEvents(
  db: Db,
  args: { createdBefore?: Date | number; limit?: number } = {},
): Promise<ScalingEventRecord[]> {
  const rows = await db
    .select()
    .from(proxyScalingEvents)
    .where(
      and(
        inArray(proxyScalingEvents.status, [...ACTIVE_EVENT_STATUSES]),
        args.createdBefore === undefined
          ? undefined
          : lt(proxyScalingEvents.createdAt, toDate(args.createdBefore, "createdBefore")),
      ),
    )
    .orderBy(proxyScalingEvents.createdAt)
    .limit(pageSize(args.limit ?? 500));
  return rows.map(toEventRecord);
}
