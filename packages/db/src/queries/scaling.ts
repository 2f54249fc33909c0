import { randomUUID } from "node:crypto";
import {
  type CompletionStatus,
  type Decision,
  historySecondsFor,
  type MetricSample,
  type ObservedState,
  type RecommendationRecord,
  type ScaleEventRecord,
  type ScalingPolicy,
  type ScalingTrigger,
  type TrendDirection,
  tierCapsFor,
  trendDirection,
} from "@proxyscale/core";
import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows, queryRows, withTransaction } from "../db.ts";
import { ConflictError, InvalidInputError, NotFoundError, violatedConstraint } from "../errors.ts";
import {
  ACTIVE_EVENT_STATUSES,
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
import { fetchLatestSamples, latestSamples, seriesSql } from "./metrics.ts";
import { inList, numberArray, textArray } from "./pg-array.ts";
import { FROZEN_DEFAULT_POLICY, type PolicySource, policyColumnsSql, policyFromRow } from "./policies.ts";
import { lockProxy, type ProxyRecord, toProxyRecord } from "./proxies.ts";
import { epochMs, timestampParam, toDate } from "./time.ts";

export interface ScalingEventRecord {
  id: string;
  proxyId: string;
  eventType: ScalingEventType;
  previousReplicas: number;
  newReplicas: number;
  triggeredBy: ScalingTrigger;
  status: ScalingEventStatus;
  reason: string;
  error: string | null;
  decisionId: string | null;
  createdBy: string | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  durationMs: number | null;
}

function toEventRecord(row: typeof proxyScalingEvents.$inferSelect): ScalingEventRecord {
  return { ...row };
}

// Decisions

export interface DecisionRecord {
  id: string;
  proxyId: string;
  triggeredBy: ScalingTrigger;
  evaluatedAt: Date;
  decision: Decision;
  createdAt: Date;
}

export interface DecisionInput {
  proxyId: string;
  decision: Decision;
  triggeredBy: ScalingTrigger;
}

/** Stores one evaluation, including one that changes nothing. Throws NotFoundError for an unknown proxy. */
export async function recordDecision(db: Db, args: DecisionInput): Promise<{ id: string }> {
  const [id] = await recordDecisions(db, [args]);
  if (!id) throw new NotFoundError("proxy", args.proxyId);
  return { id };
}

/**
 * Stores a batch of evaluations in ONE statement (concurrent evaluate requests are written together). Returns
 * each one's id in input order, or null where the proxy does not exist (a bad id, or deleted meanwhile).
 */
export async function recordDecisions(
  db: Db,
  inputs: readonly DecisionInput[],
): Promise<Array<string | null>> {
  const ids = inputs.map((input) => (isUuid(input.proxyId) ? randomUUID() : null));
  const rows = inputs.flatMap((input, index) => (ids[index] ? [{ ...input, id: ids[index] }] : []));
  if (rows.length === 0) return ids;
  const column = <T>(pick: (row: (typeof rows)[number]) => T) => rows.map(pick);
  const statement = sql`
    with stored as (
      insert into scaling_decisions (id, proxy_id, evaluated_at, triggered_by, strategy, action, current_replicas,
        recommended_replicas, desired_replicas, load_score, explanation, recommendation_at, recommendation_replicas,
        decision)
      select u.id, u.proxy_id, timestamptz 'epoch' + u.evaluated_ms * interval '1 millisecond', u.triggered_by,
        u.strategy, u.action, u.current_replicas, u.recommended_replicas, u.desired_replicas, u.load_score,
        u.explanation, timestamptz 'epoch' + u.recommendation_ms * interval '1 millisecond',
        u.recommendation_replicas, u.decision
      from unnest(
        ${textArray(column((row) => row.id))}::uuid[],
        ${textArray(column((row) => row.proxyId))}::uuid[],
        ${numberArray(column((row) => row.decision.evaluatedAt))}::int8[],
        ${textArray(column((row) => row.triggeredBy))}::text[],
        ${textArray(column((row) => row.decision.strategy))}::text[],
        ${textArray(column((row) => row.decision.action))}::text[],
        ${numberArray(column((row) => row.decision.currentReplicas))}::int4[],
        ${numberArray(column((row) => row.decision.recommendedReplicas))}::int4[],
        ${numberArray(column((row) => row.decision.desiredReplicas))}::int4[],
        ${numberArray(column((row) => row.decision.loadScore))}::float8[],
        ${textArray(column((row) => row.decision.explanation))}::text[],
        ${numberArray(column((row) => row.decision.recommendation.at))}::int8[],
        ${numberArray(column((row) => row.decision.recommendation.replicas))}::int4[],
        ${textArray(column((row) => JSON.stringify(row.decision)))}::jsonb[]
      ) as u(id, proxy_id, evaluated_ms, triggered_by, strategy, action, current_replicas, recommended_replicas,
             desired_replicas, load_score, explanation, recommendation_ms, recommendation_replicas, decision)
      where u.proxy_id in (select id from proxies)
      returning id, proxy_id, recommendation_replicas, recommendation_at
    ),
    recommended as (
      -- In key order, so concurrent batches lock the same rows in the same order.
      insert into scaling_recommendations (proxy_id, replicas, recommended_at)
      select distinct on (proxy_id, recommendation_replicas) proxy_id, recommendation_replicas, recommendation_at
      from stored
      order by proxy_id, recommendation_replicas, recommendation_at desc
      on conflict (proxy_id, replicas) do update set recommended_at = excluded.recommended_at
      where scaling_recommendations.recommended_at < excluded.recommended_at
    )
    select id from stored`;
  let stored: Array<{ id: string }>;
  try {
    stored = await queryPreparedRows<{ id: string }>(db, statement);
  } catch (error) {
    // A proxy deleted between the filter and the foreign-key check: once more, now that the delete is visible.
    if (violatedConstraint(error)?.code !== "23503") throw error;
    stored = await queryPreparedRows<{ id: string }>(db, statement);
  }
  const storedIds = new Set(stored.map((row) => row.id));
  return ids.map((id) => (id !== null && storedIds.has(id) ? id : null));
}

/** Newest evaluation first. */
export async function listDecisions(
  db: Db,
  args: { proxyId: string; limit?: number; cursor?: string | null },
): Promise<Page<DecisionRecord>> {
  const size = pageSize(args.limit);
  if (!isUuid(args.proxyId)) return { items: [], nextCursor: null };
  const rows = await db
    .select({
      id: scalingDecisions.id,
      proxyId: scalingDecisions.proxyId,
      triggeredBy: scalingDecisions.triggeredBy,
      evaluatedAt: scalingDecisions.evaluatedAt,
      decision: scalingDecisions.decision,
      createdAt: scalingDecisions.createdAt,
    })
    .from(scalingDecisions)
    .where(
      and(
        eq(scalingDecisions.proxyId, args.proxyId),
        afterCursor(args.cursor, scalingDecisions.evaluatedAt, scalingDecisions.id),
      ),
    )
    .orderBy(desc(scalingDecisions.evaluatedAt), desc(scalingDecisions.id))
    .limit(size + 1);
  return toPage(rows, size, (row) => ({ at: row.evaluatedAt, id: row.id }));
}

// Events

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
    return await withTransaction(db, async (tx) => {
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

/** pending → in_progress. Null when the event is not pending (another server took it, or it is finished). */
export async function startScalingEvent(
  db: Db,
  args: { eventId: string },
): Promise<ScalingEventRecord | null> {
  if (!isUuid(args.eventId)) return null;
  const [row] = await db
    .update(proxyScalingEvents)
    .set({ status: "in_progress", startedAt: sql`now()` })
    .where(and(eq(proxyScalingEvents.id, args.eventId), eq(proxyScalingEvents.status, "pending")))
    .returning();
  return row ? toEventRecord(row) : null;
}

/** The failure message stored when a caller fails an event without one (the database requires an error). */
export const UNSPECIFIED_ERROR = "failed without an error message";

/**
 * pending | in_progress → completed | failed | cancelled, in one `UPDATE … WHERE status IN (…) RETURNING`, so of
 * concurrent completions exactly one wins. Sets completedAt and durationMs (from startedAt, or createdAt when it
 * never started); a failed event keeps its error; `observedReplicas` updates the proxy's current replicas in the
 * same transaction. A finished event is final: completing it again throws ConflictError and changes nothing.
 */
export async function completeScalingEvent(
  db: Db,
  args: { eventId: string; status: CompletionStatus; error?: string | null; observedReplicas?: number },
): Promise<ScalingEventRecord> {
  if (!isUuid(args.eventId)) throw new NotFoundError("scaling event", args.eventId);
  const error = args.status === "failed" ? args.error?.trim() || UNSPECIFIED_ERROR : null;
  return withTransaction(db, async (tx) => {
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

export interface ScalingHistoryEntry {
  id: string;
  eventId: string;
  proxyId: string;
  recordedAt: Date;
  previousReplicas: number;
  newReplicas: number;
  loadScore: number | null;
  metrics: MetricSample[];
  decision: Decision | null;
}

/** The snapshots of a proxy's scales, newest first. */
export async function listScalingHistory(
  db: Db,
  args: { proxyId: string; limit?: number },
): Promise<ScalingHistoryEntry[]> {
  if (!isUuid(args.proxyId)) return [];
  return db
    .select()
    .from(proxyScalingHistory)
    .where(eq(proxyScalingHistory.proxyId, args.proxyId))
    .orderBy(desc(proxyScalingHistory.recordedAt), desc(proxyScalingHistory.id))
    .limit(pageSize(args.limit));
}

// Observed state for the engine

/** The proxy's event in flight, as the control loop needs it to adopt (pending) or recover (in progress) it. */
export interface ObservedActiveEvent {
  id: string;
  proxyId: string;
  status: Extract<ScalingEventStatus, "pending" | "in_progress">;
  previousReplicas: number;
  newReplicas: number;
}

export interface ObservedProxy {
  proxy: ProxyRecord;
  policy: ScalingPolicy;
  policySource: PolicySource;
  state: ObservedState;
  /** The same event as `state.activeEvent`, in the executor's terms. */
  activeEvent: ObservedActiveEvent | null;
}

type ObservedEventRow = ScaleEventRecord & {
  proxyId: string;
  id: string;
  status: ScalingEventStatus;
};

/** A proxies row with its times as epoch ms, plus its own policy's columns as `own.<field>`. */
type ProxyWithPolicyRow = Omit<typeof proxies.$inferSelect, "createdAt" | "updatedAt"> & {
  createdAt: number;
  updatedAt: number;
  lastSampleAt: number | null;
} & { [K in `own.${string}`]: unknown };

/**
 * Everything `decide` needs for N proxies in a constant number of queries (five, whatever N): the proxies with
 * their own policies, creation times and newest sample time of any age (`lastSampleAt`, one index probe per
 * proxy), the environment policies, the latest sample per instance (newer than now − historySeconds), the scale
 * events in that window plus any in flight (failed and cancelled ones changed nothing and are left out; the one
 * in flight is also `activeEvent`), and the newest recommendation of each replica count in that window
 * (scaling_recommendations: what stabilization reads, exactly). `reconcileIntervalMs` is passed through to the
 * state, for fallback's missed intervals. `historySeconds` is a floor: proxies whose policy looks back further
 * (core's historySecondsFor) are read again with their own window, five more queries for all of them together.
 * Unknown ids are absent from the map.
 * `state.caps` carries the owner's tier cap (core's `tierCapsFor`), so every caller of the engine applies it.
 * Policies are parsed once per distinct content and shared, frozen, between proxies.
 */
export async function loadObservedStates(
  db: Db,
  args: { proxyIds: readonly string[]; now: number; historySeconds: number; reconcileIntervalMs: number },
): Promise<Map<string, ObservedProxy>> {
  const result = new Map<string, ObservedProxy>();
  const ids = args.proxyIds.filter(isUuid);
  if (ids.length === 0) return result;
  if (!(args.historySeconds >= 0)) throw new InvalidInputError("historySeconds: must not be negative");
  if (!(args.reconcileIntervalMs > 0)) throw new InvalidInputError("reconcileIntervalMs: must be positive");
  const sinceDate = new Date(args.now - args.historySeconds * 1000);
  const since = timestampParam(sinceDate);
  const [proxyRows, environmentRows, samples, eventRows, recommendationRows] = await Promise.all([
    queryPreparedRows<ProxyWithPolicyRow>(
      db,
      sql`select p.id, p.owner_id as "ownerId", p.owner_tier as "ownerTier", p.name, p.environment, p.region,
            p.actuator_kind as "actuatorKind", p.actuator_config as "actuatorConfig",
            p.current_replicas as "currentReplicas", p.desired_replicas as "desiredReplicas", p.health,
            p.unhealthy_replicas as "unhealthyReplicas",
            ${epochMs(sql`p.created_at`)}::float8 as "createdAt", ${epochMs(sql`p.updated_at`)}::float8 as "updatedAt",
            ${epochMs(sql`(select max(m.recorded_at) from proxy_latest_metrics m where m.proxy_id = p.id)`)}::float8
              as "lastSampleAt",
            ${policyColumnsSql("own")}
          from proxies p left join proxy_scaling_policies own on own.proxy_id = p.id
          where ${inList(sql`p.id`, ids, "uuid")}`,
    ),
    queryPreparedRows<Record<string, unknown>>(
      db,
      sql`select environment, ${policyColumnsSql("env")} from environment_scaling_policies env`,
    ),
    fetchLatestSamples(db, ids, sinceDate),
    queryPreparedRows<ObservedEventRow>(
      db,
      sql`select proxy_id as "proxyId", id, status, ${epochMs(sql`created_at`)}::float8 as at,
            previous_replicas as "fromReplicas", new_replicas as "toReplicas"
          from proxy_scaling_events
          where ${inList(sql`proxy_id`, ids, "uuid")}
            and (status in ('pending', 'in_progress') or (status = 'completed' and created_at >= ${since}))
          order by created_at`,
    ),
    queryPreparedRows<{ proxyId: string } & RecommendationRecord>(
      db,
      sql`select proxy_id as "proxyId", ${epochMs(sql`recommended_at`)}::float8 as at, replicas
          from scaling_recommendations
          where ${inList(sql`proxy_id`, ids, "uuid")} and recommended_at >= ${since}
          order by recommended_at`,
    ),
  ]);
  const environmentPolicies = new Map(
    environmentRows.map((row) => [row.environment as string, policyFromRow(row, "env")]),
  );
  const events = groupBy(eventRows, ({ proxyId, at, fromReplicas, toReplicas }) => [
    proxyId,
    { at, fromReplicas, toReplicas },
  ]);
  const activeEvents = new Map<string, ObservedActiveEvent>();
  for (const row of eventRows) {
    if (row.status !== "pending" && row.status !== "in_progress") continue;
    activeEvents.set(row.proxyId, {
      id: row.id,
      proxyId: row.proxyId,
      status: row.status,
      previousReplicas: row.fromReplicas,
      newReplicas: row.toReplicas,
    });
  }
  const recommendations = groupBy(recommendationRows, ({ proxyId, ...record }) => [proxyId, record]);
  for (const row of proxyRows) {
    const own = policyFromRow(row, "own");
    const environment = environmentPolicies.get(row.environment) ?? null;
    const proxy = toProxyRecord({
      ...row,
      createdAt: new Date(row.createdAt),
      updatedAt: new Date(row.updatedAt),
    });
    const active = activeEvents.get(proxy.id) ?? null;
    result.set(proxy.id, {
      proxy,
      activeEvent: active,
      policy: own ?? environment ?? FROZEN_DEFAULT_POLICY,
      policySource: own ? "proxy" : environment ? "environment" : "default",
      state: {
        currentReplicas: proxy.currentReplicas,
        unhealthyReplicas: proxy.unhealthyReplicas,
        samples: (samples.get(proxy.id) ?? []).map(
          ({ loadScore: _score, replicas: _replicas, unhealthyReplicas: _unhealthy, ...sample }) => sample,
        ),
        recentEvents: events.get(proxy.id) ?? [],
        recommendations: recommendations.get(proxy.id) ?? [],
        caps: tierCapsFor(proxy.ownerTier),
        lastSampleAt: row.lastSampleAt,
        createdAt: row.createdAt,
        activeEvent: active && {
          id: active.id,
          status: active.status,
          fromReplicas: active.previousReplicas,
          toReplicas: active.newReplicas,
        },
        reconcileIntervalMs: args.reconcileIntervalMs,
      },
    });
  }
  const further = [...result.values()].filter(
    (entry) => historySecondsFor(entry.policy) > args.historySeconds,
  );
  if (further.length > 0) {
    const reread = await loadObservedStates(db, {
      proxyIds: further.map((entry) => entry.proxy.id),
      now: args.now,
      historySeconds: Math.max(...further.map((entry) => historySecondsFor(entry.policy))),
      reconcileIntervalMs: args.reconcileIntervalMs,
    });
    for (const [proxyId, entry] of reread) result.set(proxyId, entry);
  }
  return result;
}

function groupBy<T, V>(rows: readonly T[], split: (row: T) => [string, V]): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const row of rows) {
    const [key, value] = split(row);
    const group = groups.get(key);
    if (group) group.push(value);
    else groups.set(key, [value]);
  }
  return groups;
}

// Summary

export const DEFAULT_SUMMARY_HOURS = 24;
export const MAX_SUMMARY_HOURS = 24 * 90;

export interface ScalingSummary {
  proxyId: string;
  hoursBack: number;
  from: Date;
  to: Date;
  events: {
    total: number;
    byType: Record<ScalingEventType, number>;
    byStatus: Record<ScalingEventStatus, number>;
  };
  loadScore: { avg: number | null; max: number | null };
  replicas: { avg: number | null; max: number | null };
  /** Over completed events. */
  avgScalingDurationMs: number | null;
  /**
   * Least-squares slope of the load score (points per hour) and core's reading of it: "steady" when the fitted
   * change across the samples' span is under core's STEADY_TREND_POINTS. slopePerHour is null with fewer than
   * two points.
   */
  trend: { slopePerHour: number | null; direction: TrendDirection };
  samples: number;
}

/**
 * The seed's summary over the last `hoursBack` hours before `now`, computed in SQL in one statement: event
 * counts by type and status, load score and replicas (avg, max), average duration of completed scales, and the
 * load-score trend (`regr_slope`). Samples come from raw rows and, for minutes already rolled up, from rollups.
 */
export async function getScalingSummary(
  db: Db,
  args: { proxyId: string; hoursBack?: number; now: Date | number },
): Promise<ScalingSummary> {
  const hoursBack = args.hoursBack ?? DEFAULT_SUMMARY_HOURS;
  if (!(hoursBack > 0 && hoursBack <= MAX_SUMMARY_HOURS)) {
    throw new InvalidInputError(`hoursBack: must be greater than 0 and at most ${MAX_SUMMARY_HOURS}`);
  }
  if (!isUuid(args.proxyId)) throw new NotFoundError("proxy", args.proxyId);
  const to = toDate(args.now, "now");
  const from = new Date(to.getTime() - Math.round(hoursBack * 3_600_000));
  const [row] = await queryRows<{
    samples: number;
    loadAvg: number | null;
    loadMax: number | null;
    replicasAvg: number | null;
    replicasMax: number | null;
    slopePerHour: number | null;
    points: number;
    spanHours: number | null;
    total: number;
    scaleUp: number;
    scaleDown: number;
    pending: number;
    inProgress: number;
    completed: number;
    failed: number;
    cancelled: number;
    avgDurationMs: number | null;
  }>(
    db,
    sql`
      with ${seriesSql(args.proxyId, from, to)},
      metrics as (
        select coalesce(sum(n), 0)::int as samples,
          (sum(load_score * n) / nullif(sum(n), 0))::float8 as "loadAvg",
          max(load_score_max)::float8 as "loadMax",
          (sum(replicas * replica_n) / nullif(sum(replica_n), 0))::float8 as "replicasAvg",
          max(replicas_max)::int as "replicasMax",
          (regr_slope(load_score, extract(epoch from at)::float8) * 3600)::float8 as "slopePerHour",
          count(*)::int as points,
          (extract(epoch from max(at) - min(at)) / 3600)::float8 as "spanHours"
        from series
      ),
      events as (
        select count(*)::int as total,
          (count(*) filter (where event_type = 'scale_up'))::int as "scaleUp",
          (count(*) filter (where event_type = 'scale_down'))::int as "scaleDown",
          (count(*) filter (where status = 'pending'))::int as pending,
          (count(*) filter (where status = 'in_progress'))::int as "inProgress",
          (count(*) filter (where status = 'completed'))::int as completed,
          (count(*) filter (where status = 'failed'))::int as failed,
          (count(*) filter (where status = 'cancelled'))::int as cancelled,
          (avg(duration_ms) filter (where status = 'completed'))::float8 as "avgDurationMs"
        from proxy_scaling_events
        where proxy_id = ${args.proxyId}::uuid
          and created_at >= ${timestampParam(from)} and created_at <= ${timestampParam(to)}
      )
      select * from metrics, events`,
  );
  const r = row!;
  // regr_slope is null when every point has the same time: no change, as core reads it.
  const slope = r.points < 2 ? null : (r.slopePerHour ?? 0);
  const direction = trendDirection(slope, r.spanHours ?? 0);
  return {
    proxyId: args.proxyId,
    hoursBack,
    from,
    to,
    events: {
      total: r.total,
      byType: { scale_up: r.scaleUp, scale_down: r.scaleDown },
      byStatus: {
        pending: r.pending,
        in_progress: r.inProgress,
        completed: r.completed,
        failed: r.failed,
        cancelled: r.cancelled,
      },
    },
    loadScore: { avg: r.loadAvg, max: r.loadMax },
    replicas: { avg: r.replicasAvg, max: r.replicasMax },
    avgScalingDurationMs: r.avgDurationMs,
    trend: { slopePerHour: slope, direction },
    samples: r.samples,
  };
}
