import { randomUUID } from "node:crypto";
import type { Decision, ScalingTrigger } from "@proxyscale/core";
import { and, desc, eq, sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows } from "../db.ts";
import { NotFoundError, violatedConstraint } from "../errors.ts";
import type { DecisionRecord } from "../records.ts";
import { proxies, scalingDecisions, scalingRecommendations } from "../schema/index.ts";
import { afterCursor, type Page, pageSize, toPage } from "./cursor.ts";
import { col, cols } from "./names.ts";
import { numberArray, textArray } from "./pg-array.ts";

/** Every evaluation of the engine, stored with its recommendation (what stabilization windows read). */

export type { DecisionRecord } from "../records.ts";

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
  const d = scalingDecisions;
  const r = scalingRecommendations;
  const statement = sql`
    with stored as (
      insert into ${d} (${cols(d.id, d.proxyId, d.evaluatedAt, d.triggeredBy, d.strategy, d.action, d.currentReplicas, d.recommendedReplicas, d.desiredReplicas, d.loadScore, d.explanation, d.recommendationAt, d.recommendationReplicas, d.decision)})
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
      where u.proxy_id in (select ${proxies.id} from ${proxies})
      returning ${d.id} as id, ${d.proxyId} as proxy_id, ${d.recommendationReplicas} as recommendation_replicas,
        ${d.recommendationAt} as recommendation_at
    ),
    recommended as (
      -- In key order, so concurrent batches lock the same rows in the same order.
      insert into ${r} (${cols(r.proxyId, r.replicas, r.recommendedAt)})
      select distinct on (proxy_id, recommendation_replicas) proxy_id, recommendation_replicas, recommendation_at
      from stored
      order by proxy_id, recommendation_replicas, recommendation_at desc
      on conflict (${cols(r.proxyId, r.replicas)}) do update set ${col(r.recommendedAt)} = excluded.${col(r.recommendedAt)}
      where ${r.recommendedAt} < excluded.${col(r.recommendedAt)}
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

/** The columns of a DecisionRecord, for every query that returns one. */
export const DECISION_RECORD_COLUMNS = {
  id: scalingDecisions.id,
  proxyId: scalingDecisions.proxyId,
  triggeredBy: scalingDecisions.triggeredBy,
  evaluatedAt: scalingDecisions.evaluatedAt,
  decision: scalingDecisions.decision,
  createdAt: scalingDecisions.createdAt,
};

/** Newest evaluation first. */
export async function listDecisions(
  db: Db,
  args: { proxyId: string; limit?: number; cursor?: string | null },
): Promise<Page<DecisionRecord>> {
  const size = pageSize(args.limit);
  if (!isUuid(args.proxyId)) return { items: [], nextCursor: null };
  const rows = await db
    .select(DECISION_RECORD_COLUMNS)
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
