import {
  admitInstances,
  type InstanceAdmission,
  liveInstanceWindowMs,
  type MetricSample,
} from "@proxyscale/core";
import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { type Db, isUuid, queryPreparedRows, queryRows, withTransaction } from "../db.ts";
import { InvalidInputError, NotFoundError, violatedConstraint } from "../errors.ts";
import {
  type LatestSample,
  METRICS_RANGE_FIELDS,
  type MetricsRangeColumns,
  type MetricsRangeField,
  type Page,
} from "../records.ts";
import {
  FLEET_INSTANCE_ID,
  metricRollupState,
  proxies,
  proxyLatestMetrics,
  proxyLoadMetrics,
  proxyLoadMetrics1m,
  scalingDecisions,
  scalingRecommendations,
} from "../schema/index.ts";
import { pageSize } from "./cursor.ts";
import { col, cols } from "./names.ts";
import { inList, numberArray, textArray } from "./pg-array.ts";
import { getEffectivePolicies } from "./policies.ts";
import { epochMs, timestampParam, toDate } from "./time.ts";

/** Rows per INSERT statement; a larger batch is split, in one transaction. */
export const MAX_BATCH_ROWS = 5000;
/** Rollups recompute this far back on every run, so samples arriving this late are still counted. */
export const ROLLUP_LATENESS_MINUTES = 10;
export const ROLLUP_NAME = "proxy_load_metrics_1m";
export const DEFAULT_RAW_RETENTION_DAYS = 7;
export const DEFAULT_ROLLUP_RETENTION_DAYS = 90;
export const MAX_RANGE_POINTS = 10_000;

export interface SampleInput {
  proxyId: string;
  sample: MetricSample;
  /** The composite score core computed for this sample. */
  loadScore: number;
  /** Replicas the reporter saw; the proxy's current replicas when omitted. */
  replicas?: number;
  unhealthyReplicas?: number;
}

function foreignKeyToNotFound(error: unknown): unknown {
  const violation = violatedConstraint(error);
  if (violation?.code !== "23503") return error;
  const detail = String((error as { cause?: { detail?: string } }).cause?.detail ?? "");
  const id = /\(proxy_id\)=\(([^)]+)\)/.exec(detail)?.[1] ?? "in the batch";
  return new NotFoundError("proxy", id);
}

/**
 * Stores samples: each batch of up to 5,000 is ONE statement that appends the raw rows and upserts
 * `proxy_latest_metrics` (the newest per proxy and instance wins), so the latest state never needs a history scan.
 */
export async function insertSamples(db: Db, rows: readonly SampleInput[]): Promise<number> {
  rows.forEach((row, index) => {
    if (!isUuid(row.proxyId)) throw new InvalidInputError(`rows[${index}].proxyId: must be a uuid`);
  });
  if (rows.length === 0) return 0;
  if (rows.length <= MAX_BATCH_ROWS) return insertBatch(db, rows);
  return withTransaction(db, async (tx) => {
    let inserted = 0;
    for (let start = 0; start < rows.length; start += MAX_BATCH_ROWS) {
      inserted += await insertBatch(tx, rows.slice(start, start + MAX_BATCH_ROWS));
    }
    return inserted;
  });
}

const raw = proxyLoadMetrics;
const latest = proxyLatestMetrics;
/** The sample columns, named alike in the raw and the latest table: what one batch writes to both. */
const SAMPLE_COLUMNS = cols(
  raw.proxyId,
  raw.instanceId,
  raw.recordedAt,
  raw.cpuPercent,
  raw.memoryPercent,
  raw.requestRate,
  raw.avgLatencyMs,
  raw.errorRatePercent,
  raw.loadScore,
  raw.replicas,
  raw.unhealthyReplicas,
  raw.custom,
);
/** What a newer sample replaces in the latest table. */
const LATEST_UPDATES = sql.join(
  [
    latest.recordedAt,
    latest.cpuPercent,
    latest.memoryPercent,
    latest.requestRate,
    latest.avgLatencyMs,
    latest.errorRatePercent,
    latest.loadScore,
    latest.replicas,
    latest.unhealthyReplicas,
    latest.custom,
  ].map((column) => sql`${col(column)} = excluded.${col(column)}`),
  sql`, `,
);

async function insertBatch(db: Db, rows: readonly SampleInput[]): Promise<number> {
  const column = <T>(pick: (row: SampleInput) => T) => rows.map(pick);
  // The input's columns carry the tables' names (u's are the same), so one list selects and inserts them.
  const passed = [raw.cpuPercent, raw.memoryPercent, raw.requestRate, raw.avgLatencyMs, raw.errorRatePercent];
  const statement = sql`
    with input as (
      select u.${col(raw.proxyId)}, u.${col(raw.instanceId)},
        timestamptz 'epoch' + u.at_ms * interval '1 millisecond' as ${col(raw.recordedAt)},
        ${sql.join(
          passed.map((c) => sql`u.${col(c)}`),
          sql`, `,
        )}, u.${col(raw.loadScore)},
        coalesce(u.${col(raw.replicas)}, ${proxies.currentReplicas}) as ${col(raw.replicas)},
        u.${col(raw.unhealthyReplicas)}, u.${col(raw.custom)}
      from unnest(
        ${textArray(column((row) => row.proxyId))}::uuid[],
        ${textArray(column((row) => row.sample.instanceId ?? FLEET_INSTANCE_ID))}::text[],
        ${numberArray(column((row) => row.sample.at))}::int8[],
        ${numberArray(column((row) => row.sample.cpuPercent))}::float8[],
        ${numberArray(column((row) => row.sample.memoryPercent))}::float8[],
        ${numberArray(column((row) => row.sample.requestRate))}::float8[],
        ${numberArray(column((row) => row.sample.avgLatencyMs))}::float8[],
        ${numberArray(column((row) => row.sample.errorRatePercent))}::float8[],
        ${numberArray(column((row) => row.loadScore))}::float8[],
        ${numberArray(column((row) => row.replicas ?? null))}::int4[],
        ${numberArray(column((row) => row.unhealthyReplicas ?? null))}::int4[],
        ${textArray(column((row) => (row.sample.custom ? JSON.stringify(row.sample.custom) : null)))}::jsonb[]
      ) as u(${cols(raw.proxyId, raw.instanceId)}, at_ms, ${cols(...passed, raw.loadScore, raw.replicas, raw.unhealthyReplicas, raw.custom)})
      left join ${proxies} on ${proxies.id} = u.${col(raw.proxyId)}
    ),
    raw as (
      insert into ${raw} (${SAMPLE_COLUMNS}) select ${SAMPLE_COLUMNS} from input
    ),
    latest as (
      insert into ${latest} (${SAMPLE_COLUMNS})
      select distinct on (${cols(latest.proxyId, latest.instanceId)}) ${SAMPLE_COLUMNS} from input
      order by ${cols(latest.proxyId, latest.instanceId, latest.recordedAt)} desc
      on conflict (${cols(latest.proxyId, latest.instanceId)}) do update set ${LATEST_UPDATES}
      where ${latest.recordedAt} <= excluded.${col(latest.recordedAt)}
    )
    select count(*)::int as inserted from input`;
  try {
    const [result] = await queryPreparedRows<{ inserted: number }>(db, statement);
    return result?.inserted ?? 0;
  } catch (error) {
    throw foreignKeyToNotFound(error);
  }
}

/** A proxy's live instance cap (core's liveInstanceCapFor) and the oldest latest sample still live (epoch ms). */
export interface InstanceCap {
  cap: number;
  liveSince: number;
}

/** One push of a batch: its proxy and its rows (all of that proxy). */
export interface CappedPush {
  proxyId: string;
  rows: readonly SampleInput[];
}

/** Namespace of the per-proxy advisory locks that serialise pushes adding instances to one proxy. */
const INSTANCE_LOCK_PREFIX = "proxyscale.instances:";
/**
 * The lock-free path counts an instance as known only if it stays live this much longer, so none ages out
 * between its read and the insert (a statement past the query deadline has failed anyway).
 */
const KNOWN_MARGIN_MS = 10_000;

/** Per proxy, the instances (fleet-average row excluded) whose latest sample is at or after `since` (epoch ms). */
async function liveInstances(db: Db, since: ReadonlyMap<string, number>): Promise<Map<string, Set<string>>> {
  const result = new Map<string, Set<string>>();
  for (const id of since.keys()) result.set(id, new Set());
  if (since.size === 0) return result;
  const rows = await queryPreparedRows<{ proxyId: string; instanceId: string }>(
    db,
    sql`select ${latest.proxyId} as "proxyId", ${latest.instanceId} as "instanceId"
        from unnest(${textArray([...since.keys()])}::uuid[], ${numberArray([...since.values()])}::int8[])
          as c(proxy_id, since_ms)
        join ${latest} on ${latest.proxyId} = c.proxy_id
        where ${latest.instanceId} <> ${FLEET_INSTANCE_ID}
          and ${latest.recordedAt} >= timestamptz 'epoch' + c.since_ms * interval '1 millisecond'`,
  );
  for (const row of rows) result.get(row.proxyId)?.add(row.instanceId);
  return result;
}

function judge(
  pushes: readonly CappedPush[],
  caps: ReadonlyMap<string, InstanceCap>,
  live: Map<string, Set<string>>,
): InstanceAdmission[] {
  return pushes.map((push) => {
    const cap = caps.get(push.proxyId);
    const known = live.get(push.proxyId);
    if (!cap || !known) return { admitted: true };
    return admitInstances(
      known,
      push.rows.map((row) => row.sample.instanceId),
      cap.cap,
    );
  });
}

/**
 * Stores pushes under each proxy's live instance cap: a push that would take its proxy past `cap` live
 * instances (those with a latest sample at or after `liveSince`, plus the ones the push names; core's
 * `admitInstances` judges, in order) is refused whole and nothing of it is stored; the others are stored.
 * Returns each push's admission, in order. A proxy without an entry in `caps` is not capped.
 *
 * Concurrency: when a push adds an instance, the judgement and the insert run in one transaction under a
 * per-proxy advisory lock (taken in id order), and the live instances are read after the lock, so concurrent
 * pushes, on this server or another, never take a proxy past its cap. Pushes that only name instances already
 * live (the steady state) are judged from one read without a lock and stored with one insert.
 */
export async function insertCappedSamples(
  db: Db,
  args: { pushes: readonly CappedPush[]; caps: ReadonlyMap<string, InstanceCap> },
): Promise<InstanceAdmission[]> {
  const { pushes, caps } = args;
  for (const push of pushes) {
    if (!isUuid(push.proxyId)) throw new InvalidInputError(`proxyId: must be a uuid`);
  }
  const capped = new Map<string, number>();
  for (const push of pushes) {
    const cap = caps.get(push.proxyId);
    if (cap) capped.set(push.proxyId, cap.liveSince);
  }
  const withMargin = new Map([...capped].map(([id, since]) => [id, since + KNOWN_MARGIN_MS]));
  const known = await liveInstances(db, withMargin);
  const addsNothing = pushes.every((push) => {
    const ids = known.get(push.proxyId);
    return (
      !ids || push.rows.every((row) => row.sample.instanceId === undefined || ids.has(row.sample.instanceId))
    );
  });
  if (addsNothing) {
    await insertSamples(
      db,
      pushes.flatMap((push) => push.rows),
    );
    return pushes.map(() => ({ admitted: true }));
  }
  return withTransaction(db, async (tx) => {
    const locked = [...capped.keys()].sort();
    await tx.execute(
      sql`select pg_advisory_xact_lock(hashtextextended(${INSTANCE_LOCK_PREFIX} || k, 0))
          from (select unnest(${textArray(locked)}::text[]) as k order by 1) as keys`,
    );
    const admissions = judge(pushes, caps, await liveInstances(tx, capped));
    const rows = pushes.flatMap((push, index) => (admissions[index]!.admitted ? push.rows : []));
    for (let start = 0; start < rows.length; start += MAX_BATCH_ROWS) {
      await insertBatch(tx, rows.slice(start, start + MAX_BATCH_ROWS));
    }
    return admissions;
  });
}

export type { LatestSample } from "../records.ts";

type LatestSampleRow = Omit<LatestSample, "instanceId" | "custom"> & {
  proxyId: string;
  instanceId: string;
  custom: Record<string, number> | null;
};

/** The latest table's columns as a LatestSampleRow (times as epoch ms). */
const LATEST_COLUMNS = sql`${latest.proxyId} as "proxyId", ${latest.instanceId} as "instanceId",
  ${epochMs(latest.recordedAt)}::float8 as at, ${latest.cpuPercent} as "cpuPercent",
  ${latest.memoryPercent} as "memoryPercent", ${latest.requestRate} as "requestRate",
  ${latest.avgLatencyMs} as "avgLatencyMs", ${latest.errorRatePercent} as "errorRatePercent",
  ${latest.loadScore} as "loadScore", ${latest.replicas} as replicas,
  ${latest.unhealthyReplicas} as "unhealthyReplicas", ${latest.custom} as custom`;

function toLatestSample(row: LatestSampleRow): LatestSample {
  // An object literal rather than a rest spread of the row: measurably cheaper over 10,000 rows.
  const sample: LatestSample = {
    at: row.at,
    cpuPercent: row.cpuPercent,
    memoryPercent: row.memoryPercent,
    requestRate: row.requestRate,
    avgLatencyMs: row.avgLatencyMs,
    errorRatePercent: row.errorRatePercent,
    loadScore: row.loadScore,
    replicas: row.replicas,
    unhealthyReplicas: row.unhealthyReplicas,
  };
  if (row.instanceId !== FLEET_INSTANCE_ID) sample.instanceId = row.instanceId;
  if (row.custom) sample.custom = row.custom;
  return sample;
}

/**
 * The latest rows of the given proxies, as plain typed columns (times as epoch ms): at fleet scale the cost is
 * per row, so no timestamp parsing, no ORDER BY and no ORM mapping.
 */
export async function fetchLatestSamples(
  db: Db,
  proxyIds: readonly string[],
  since: Date | undefined,
): Promise<Map<string, LatestSample[]>> {
  const result = new Map<string, LatestSample[]>();
  for (const id of proxyIds) result.set(id, []);
  if (proxyIds.length === 0) return result;
  const rows = await queryPreparedRows<LatestSampleRow>(
    db,
    sql`select ${LATEST_COLUMNS}
        from ${latest}
        where ${inList(latest.proxyId, proxyIds, "uuid")}
          ${since ? sql`and ${latest.recordedAt} >= ${timestampParam(since)}` : sql``}`,
  );
  for (const row of rows) result.get(row.proxyId)?.push(toLatestSample(row));
  for (const samples of result.values()) {
    if (samples.length > 1) samples.sort((a, b) => ((a.instanceId ?? "") < (b.instanceId ?? "") ? -1 : 1));
  }
  return result;
}

const LATEST_CURSOR_PREFIX = "i:";

/**
 * One page of a proxy's latest samples, one per instance, ordered by instance id (byte order; the fleet-average
 * sample, which has none, first). `limit` defaults to DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE; `nextCursor`
 * (opaque) asks for the page after, null on the last page. An unknown proxy has one empty page.
 */
export async function latestSamplesPage(
  db: Db,
  args: { proxyId: string; limit?: number; cursor?: string | null },
): Promise<Page<LatestSample>> {
  const size = pageSize(args.limit);
  let after: string | undefined;
  if (args.cursor) {
    const decoded = Buffer.from(args.cursor, "base64url").toString("utf8");
    if (!decoded.startsWith(LATEST_CURSOR_PREFIX)) {
      throw new InvalidInputError("cursor: must be a cursor returned by the previous page");
    }
    after = decoded.slice(LATEST_CURSOR_PREFIX.length);
  }
  if (!isUuid(args.proxyId)) return { items: [], nextCursor: null };
  const rows = await queryPreparedRows<LatestSampleRow>(
    db,
    sql`select ${LATEST_COLUMNS}
        from ${latest}
        where ${latest.proxyId} = ${args.proxyId}::uuid
          ${after === undefined ? sql`` : sql`and ${latest.instanceId} collate "C" > ${after}`}
        order by ${latest.instanceId} collate "C"
        limit ${size + 1}`,
  );
  const items = rows.slice(0, size).map(toLatestSample);
  const last = rows.length > size ? rows[size - 1] : undefined;
  return {
    items,
    nextCursor: last ? Buffer.from(`${LATEST_CURSOR_PREFIX}${last.instanceId}`).toString("base64url") : null,
  };
}

/**
 * Retention of the latest table: deletes the rows of instances that are no longer live (latest sample older
 * than core's liveInstanceWindowMs of the proxy's effective policy at `now`), so restarted pods' old names leave
 * it. Each proxy keeps its newest row (the last-sample time fallback counts from) and its fleet-average row
 * (raw retention prunes that). Works through the proxies a page at a time; returns the rows deleted.
 */
export async function pruneStaleInstances(
  db: Db,
  args: { now: Date | number; pageSize?: number },
): Promise<number> {
  const now = toDate(args.now, "now").getTime();
  const limit = args.pageSize ?? 1_000;
  let deleted = 0;
  let afterId = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const page = await queryRows<{ proxyId: string }>(
      db,
      sql`select distinct ${latest.proxyId} as "proxyId" from ${latest}
          where ${latest.proxyId} > ${afterId}::uuid and ${latest.instanceId} <> ${FLEET_INSTANCE_ID}
          order by 1 limit ${limit}`,
    );
    if (page.length === 0) return deleted;
    afterId = page[page.length - 1]!.proxyId;
    const policies = await getEffectivePolicies(db, { proxyIds: page.map((row) => row.proxyId) });
    const ids = [...policies.keys()];
    const cutoffs = [...policies.values()].map(({ policy }) => now - liveInstanceWindowMs(policy));
    if (ids.length > 0) {
      const [result] = await queryRows<{ n: number }>(
        db,
        sql`with gone as (
              delete from ${latest}
              using unnest(${textArray(ids)}::uuid[], ${numberArray(cutoffs)}::int8[]) as c(proxy_id, cutoff_ms)
              where ${latest.proxyId} = c.proxy_id and ${latest.instanceId} <> ${FLEET_INSTANCE_ID}
                and ${latest.recordedAt} < timestamptz 'epoch' + c.cutoff_ms * interval '1 millisecond'
                and ${latest.recordedAt} < (
                  select max(newest.recorded_at) from ${latest} as newest where newest.proxy_id = c.proxy_id)
              returning 1
            )
            select count(*)::int as n from gone`,
      );
      deleted += result?.n ?? 0;
    }
    if (page.length < limit) return deleted;
  }
}

/**
 * The latest sample of every instance of each proxy (samples older than `since` left out), in one query over
 * `proxy_latest_metrics` (no history scan). Every requested proxy is in the map, with [] when it has none;
 * samples are ordered by instance id, the fleet-average sample (no instance id) first.
 */
export function latestSamples(
  db: Db,
  args: { proxyIds: readonly string[]; since?: Date | number },
): Promise<Map<string, LatestSample[]>> {
  const since = args.since === undefined ? undefined : toDate(args.since, "since");
  return fetchLatestSamples(db, args.proxyIds.filter(isUuid), since);
}

/**
 * One proxy's samples in [from, to] as one series: per-minute rollups for minutes already rolled up, raw samples
 * after. Each row weighs `n` samples, so averages over it are exact whatever the mix.
 */
export function seriesSql(proxyId: string, from: Date, to: Date) {
  const r = rollups;
  const state = metricRollupState;
  return sql`
    state as (
      select coalesce(
        (select ${state.rolledUpTo} from ${state} where ${state.name} = ${ROLLUP_NAME}),
        timestamptz 'epoch') as rolled_up_to
    ),
    series as (
      select ${r.bucket} as at, ${r.samples} as n,
        ${r.cpuPercentAvg} as cpu_percent, ${r.memoryPercentAvg} as memory_percent,
        ${r.requestRateAvg} as request_rate, ${r.avgLatencyMsAvg} as avg_latency_ms,
        ${r.errorRatePercentAvg} as error_rate_percent,
        ${r.loadScoreAvg} as load_score, ${r.loadScoreMax} as load_score_max,
        ${r.replicaSamples} as replica_n, ${r.replicasAvg} as replicas, ${r.replicasMax} as replicas_max
      from ${r}
      where ${r.proxyId} = ${proxyId}::uuid and ${r.bucket} >= ${timestampParam(from)}
        and ${r.bucket} <= ${timestampParam(to)} and ${r.bucket} < (select rolled_up_to from state)
      union all
      select ${raw.recordedAt}, 1, ${raw.cpuPercent}, ${raw.memoryPercent}, ${raw.requestRate}, ${raw.avgLatencyMs},
        ${raw.errorRatePercent}, ${raw.loadScore}, ${raw.loadScore},
        (${raw.replicas} is not null)::int, ${raw.replicas}::float8, ${raw.replicas}
      from ${raw}
      where ${raw.proxyId} = ${proxyId}::uuid and ${raw.recordedAt} >= ${timestampParam(from)}
        and ${raw.recordedAt} <= ${timestampParam(to)} and ${raw.recordedAt} >= (select rolled_up_to from state)
    )`;
}

export type { MetricsColumns } from "../records.ts";

/** The aggregate of each of the range's value columns. */
const RANGE_AGGREGATES: Record<MetricsRangeField, SQL> = {
  cpuPercent: sql`sum(cpu_percent * n) / sum(n)`,
  memoryPercent: sql`sum(memory_percent * n) / sum(n)`,
  requestRate: sql`sum(request_rate * n) / sum(n)`,
  avgLatencyMs: sql`sum(avg_latency_ms * n) / sum(n)`,
  errorRatePercent: sql`sum(error_rate_percent * n) / sum(n)`,
  loadScore: sql`sum(load_score * n) / sum(n)`,
  loadScoreMax: sql`max(load_score_max)`,
  replicas: sql`sum(replicas * replica_n) / nullif(sum(replica_n), 0)`,
};

/**
 * Downsamples [from, to] to at most `points` equal intervals (sample-weighted averages); intervals without
 * samples are left out. Older data comes from the per-minute rollups, so each minute falls in one interval.
 * `fields` (default: every value column) are the value columns computed and returned; `at` and `samples` always.
 */
export async function metricsRange<F extends MetricsRangeField = MetricsRangeField>(
  db: Db,
  args: {
    proxyId: string;
    from: Date | number;
    to: Date | number;
    points: number;
    fields?: readonly F[];
  },
): Promise<MetricsRangeColumns<F>> {
  const from = toDate(args.from, "from");
  const to = toDate(args.to, "to");
  if (to.getTime() <= from.getTime()) throw new InvalidInputError("to: must be after from");
  if (!Number.isInteger(args.points) || args.points < 1 || args.points > MAX_RANGE_POINTS) {
    throw new InvalidInputError(`points: must be an integer from 1 to ${MAX_RANGE_POINTS}`);
  }
  // In the columns' own order whatever the order asked: one statement text per set of fields.
  const fields = args.fields
    ? METRICS_RANGE_FIELDS.filter((name) => (args.fields as readonly string[]).includes(name))
    : METRICS_RANGE_FIELDS;
  const empty = Object.fromEntries(
    ["at", "samples", ...fields].map((name) => [name, []]),
  ) as unknown as MetricsRangeColumns<F>;
  if (!isUuid(args.proxyId)) return empty;
  const widthMs = (to.getTime() - from.getTime()) / args.points;
  // ONE json text of one array per column: rows decoded one by one cost PGlite about 20 µs each, and a json
  // object per interval repeats every key 10,000 times; turning float8 into text is most of the query, so the
  // values are rounded first (round(x * 1000) / 1000 stays float8; numeric would be slower). date_part gives
  // float8 directly: extract() gives numeric, whose arithmetic per row cost PGlite more than the grouping.
  const columns = fields.map(
    (name) => sql`, ${name}::text, array_agg(round(${sql.identifier(name)} * 1000) / 1000)`,
  );
  const aggregates = fields.map(
    (name) => sql`, (${RANGE_AGGREGATES[name]})::float8 as ${sql.identifier(name)}`,
  );
  // Its text is the same for every range asking for the same fields (the bounds, width and count travel as
  // parameters): prepared once per set of fields a caller uses (every one, or the admin page's).
  const [result] = await queryPreparedRows<{ columns: string | null }>(
    db,
    sql`
      with ${seriesSql(args.proxyId, from, to)},
      indexed as (
        select least(
          floor(date_part('epoch', at - ${timestampParam(from)}) * 1000 / ${widthMs}::float8)::int,
          ${args.points - 1}::int) as idx, *
        from series
      ),
      buckets as (
        select idx, sum(n)::int as samples${sql.join(aggregates)}
        from indexed
        group by idx
        order by idx
      )
      select json_build_object('idx', array_agg(idx), 'samples', array_agg(samples)${sql.join(columns)})::text
        as columns
      from buckets
      having count(*) > 0`,
  );
  if (!result?.columns) return empty;
  const { idx, ...columnsByIdx } = inIntervalOrder(
    JSON.parse(result.columns) as Omit<MetricsRangeColumns<F>, "at"> & { idx: number[] },
  );
  return {
    at: idx.map((i) => from.getTime() + Math.round(i * widthMs)),
    ...columnsByIdx,
  } as MetricsRangeColumns<F>;
}

/**
 * The arrays of one aggregation share their row order, but PostgreSQL promises no order for array_agg over a
 * sorted subquery (it keeps it in practice): when idx is not ascending, every array is put in idx order.
 */
function inIntervalOrder<T extends { idx: number[] }>(columns: T): T {
  const { idx } = columns;
  if (idx.every((value, i) => i === 0 || idx[i - 1]! < value)) return columns;
  const order = idx.map((_, i) => i).sort((a, b) => idx[a]! - idx[b]!);
  return Object.fromEntries(
    Object.entries(columns).map(([name, values]) => [name, order.map((i) => (values as unknown[])[i])]),
  ) as T;
}

const rollups = proxyLoadMetrics1m;
/** Each rollup column and its aggregate of the raw samples of its minute. */
const ROLLUP_VALUES: Array<[PgColumn, SQL]> = [
  [rollups.samples, sql`count(*)::int`],
  [rollups.cpuPercentAvg, sql`avg(${raw.cpuPercent})`],
  [rollups.cpuPercentMax, sql`max(${raw.cpuPercent})`],
  [rollups.memoryPercentAvg, sql`avg(${raw.memoryPercent})`],
  [rollups.memoryPercentMax, sql`max(${raw.memoryPercent})`],
  [rollups.requestRateAvg, sql`avg(${raw.requestRate})`],
  [rollups.requestRateMax, sql`max(${raw.requestRate})`],
  [rollups.avgLatencyMsAvg, sql`avg(${raw.avgLatencyMs})`],
  [rollups.avgLatencyMsMax, sql`max(${raw.avgLatencyMs})`],
  [rollups.errorRatePercentAvg, sql`avg(${raw.errorRatePercent})`],
  [rollups.errorRatePercentMax, sql`max(${raw.errorRatePercent})`],
  [rollups.loadScoreAvg, sql`avg(${raw.loadScore})`],
  [rollups.loadScoreMax, sql`max(${raw.loadScore})`],
  [rollups.replicaSamples, sql`count(${raw.replicas})::int`],
  [rollups.replicasAvg, sql`avg(${raw.replicas})::float8`],
  [rollups.replicasMax, sql`max(${raw.replicas})`],
];
const ROLLUP_AGGREGATES = sql.join(
  ROLLUP_VALUES.map(([column, aggregate]) => sql`${aggregate} as ${col(column)}`),
  sql`, `,
);

/**
 * Aggregates raw samples into per-minute rollups for every complete minute before `now`. Recomputes the last
 * ROLLUP_LATENESS_MINUTES minutes before the previous run as well, so late samples are counted; re-running is
 * exact (buckets are recomputed from the raw rows, not added to). One transaction; concurrent runs serialise.
 */
export async function rollupMetrics(
  db: Db,
  args: { now: Date | number },
): Promise<{ rolledUpTo: Date; buckets: number }> {
  const now = toDate(args.now, "now");
  const rollup = metricRollupState;
  return withTransaction(db, async (tx) => {
    await tx.execute(sql`
      insert into ${rollup} (${cols(rollup.name, rollup.rolledUpTo)}) values (${ROLLUP_NAME}, timestamptz 'epoch')
      on conflict (${col(rollup.name)}) do nothing`);
    const [state] = await queryRows<{ from: string; cutoff: string }>(
      tx,
      sql`select
            (${rollup.rolledUpTo} - ${ROLLUP_LATENESS_MINUTES} * interval '1 minute')::text as "from",
            date_trunc('minute', ${timestampParam(now)}, 'UTC')::text as cutoff
          from ${rollup} where ${rollup.name} = ${ROLLUP_NAME} for update`,
    );
    const [written] = await queryRows<{ buckets: number; rolledUpTo: number }>(
      tx,
      sql`
        with agg as (
          select ${raw.proxyId} as ${col(rollups.proxyId)},
            date_trunc('minute', ${raw.recordedAt}, 'UTC') as ${col(rollups.bucket)}, ${ROLLUP_AGGREGATES}
          from ${raw}
          where ${raw.recordedAt} >= ${state!.from}::timestamptz and ${raw.recordedAt} < ${state!.cutoff}::timestamptz
          group by 1, 2
        ),
        upserted as (
          insert into ${rollups} (${cols(rollups.proxyId, rollups.bucket, ...ROLLUP_VALUES.map(([column]) => column))})
          select * from agg
          on conflict (${cols(rollups.proxyId, rollups.bucket)}) do update set ${sql.join(
            ROLLUP_VALUES.map(([column]) => sql`${col(column)} = excluded.${col(column)}`),
            sql`, `,
          )}
          returning 1
        ),
        advanced as (
          update ${rollup} set ${col(rollup.rolledUpTo)} = greatest(${rollup.rolledUpTo}, ${state!.cutoff}::timestamptz)
          where ${rollup.name} = ${ROLLUP_NAME}
          returning ${rollup.rolledUpTo} as rolled_up_to
        )
        select (select count(*)::int from upserted) as buckets,
          (select round(extract(epoch from rolled_up_to) * 1000)::float8 from advanced) as "rolledUpTo"`,
    );
    return { buckets: written?.buckets ?? 0, rolledUpTo: new Date(Number(written?.rolledUpTo)) };
  });
}

export interface PruneResult {
  rolledUpTo: Date;
  rawDeleted: number;
  latestDeleted: number;
  rollupsDeleted: number;
  decisionsDeleted: number;
}

/**
 * Retention. Rolls up first (same transaction), so no sample is deleted before it is in a rollup; then deletes
 * raw samples and latest rows older than `rawRetentionDays`, rollups older than `rollupRetentionDays` and
 * decisions older than `decisionRetentionDays` (default: rawRetentionDays).
 */
export async function pruneMetrics(
  db: Db,
  args: {
    now: Date | number;
    rawRetentionDays?: number;
    rollupRetentionDays?: number;
    decisionRetentionDays?: number;
  },
): Promise<PruneResult> {
  const now = toDate(args.now, "now");
  const rawDays = args.rawRetentionDays ?? DEFAULT_RAW_RETENTION_DAYS;
  const rollupDays = args.rollupRetentionDays ?? DEFAULT_ROLLUP_RETENTION_DAYS;
  const decisionDays = args.decisionRetentionDays ?? rawDays;
  for (const [field, days] of [
    ["rawRetentionDays", rawDays],
    ["rollupRetentionDays", rollupDays],
    ["decisionRetentionDays", decisionDays],
  ] as const) {
    if (!(days > 0)) throw new InvalidInputError(`${field}: must be greater than 0`);
  }
  const cutoff = (days: number) => new Date(now.getTime() - days * 86_400_000);
  return withTransaction(db, async (tx) => {
    const { rolledUpTo } = await rollupMetrics(tx, { now });
    const rawCutoff = new Date(
      Math.min(cutoff(rawDays).getTime(), rolledUpTo.getTime() - ROLLUP_LATENESS_MINUTES * 60_000),
    );
    const [counts] = await queryRows<Omit<PruneResult, "rolledUpTo">>(
      tx,
      sql`
        with raw as (
          delete from ${raw} where ${raw.recordedAt} < ${timestampParam(rawCutoff)} returning 1
        ),
        latest as (
          delete from ${latest} where ${latest.recordedAt} < ${timestampParam(cutoff(rawDays))} returning 1
        ),
        rollups as (
          delete from ${rollups} where ${rollups.bucket} < ${timestampParam(cutoff(rollupDays))} returning 1
        ),
        decisions as (
          delete from ${scalingDecisions}
          where ${scalingDecisions.evaluatedAt} < ${timestampParam(cutoff(decisionDays))} returning 1
        ),
        recommendations as (
          delete from ${scalingRecommendations}
          where ${scalingRecommendations.recommendedAt} < ${timestampParam(cutoff(decisionDays))}
        )
        select (select count(*)::int from raw) as "rawDeleted",
          (select count(*)::int from latest) as "latestDeleted",
          (select count(*)::int from rollups) as "rollupsDeleted",
          (select count(*)::int from decisions) as "decisionsDeleted"`,
    );
    return { rolledUpTo, ...counts! };
  });
}
