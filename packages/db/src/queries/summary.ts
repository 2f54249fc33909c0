import { trendDirection } from "@proxyscale/core";
import { type SQL, sql } from "drizzle-orm";
import { type Db, isUuid, queryRows } from "../db.ts";
import { InvalidInputError, NotFoundError } from "../errors.ts";
import type { ScalingSummary } from "../records.ts";
import { proxyScalingEvents, type ScalingEventStatus } from "../schema/index.ts";
import { seriesSql } from "./metrics.ts";
import { timestampParam, toDate } from "./time.ts";

const COMPLETED: ScalingEventStatus = "completed";

/** `(count(*) filter (where column = value))::int as "name"`, the value typed by the column's enum. */
function countWhere<C extends typeof proxyScalingEvents.eventType | typeof proxyScalingEvents.status>(
  column: C,
  value: C["_"]["data"],
  name: string,
): SQL {
  return sql`(count(*) filter (where ${column} = ${value}))::int as ${sql.identifier(name)}`;
}

export const DEFAULT_SUMMARY_HOURS = 24;
export const MAX_SUMMARY_HOURS = 24 * 90;

export type { ScalingSummary } from "../records.ts";

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
  const e = proxyScalingEvents;
  // date_part, not extract: extract's numeric result made the slope cost PGlite half the statement.
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
          (regr_slope(load_score, date_part('epoch', at)) * 3600)::float8 as "slopePerHour",
          count(*)::int as points,
          (date_part('epoch', max(at) - min(at)) / 3600)::float8 as "spanHours"
        from series
      ),
      events as (
        select count(*)::int as total,
          ${countWhere(e.eventType, "scale_up", "scaleUp")}, ${countWhere(e.eventType, "scale_down", "scaleDown")},
          ${countWhere(e.status, "pending", "pending")}, ${countWhere(e.status, "in_progress", "inProgress")},
          ${countWhere(e.status, "completed", "completed")}, ${countWhere(e.status, "failed", "failed")},
          ${countWhere(e.status, "cancelled", "cancelled")},
          (avg(${e.durationMs}) filter (where ${e.status} = ${COMPLETED}))::float8 as "avgDurationMs"
        from ${e}
        where ${e.proxyId} = ${args.proxyId}::uuid
          and ${e.createdAt} >= ${timestampParam(from)} and ${e.createdAt} <= ${timestampParam(to)}
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
