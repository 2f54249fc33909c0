import {
  historySecondsFor,
  type MetricsSource,
  type ObservedState,
  type RecommendationRecord,
  type ScaleEventRecord,
  type ScalingPolicy,
  tierCapsFor,
} from "@proxyscale/core";
import { getTableColumns, sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import {
  ACTIVE_EVENT_STATUSES,
  environmentScalingPolicies,
  proxies,
  proxyLatestMetrics,
  proxyLoadMetrics,
  proxyScalingEvents,
  proxyScalingPolicies,
  type ScalingEventStatus,
  scalingRecommendations,
} from "../schema/index.ts";
import { fetchLatestSamples } from "./metrics.ts";
import { aliased } from "./names.ts";
import { inList } from "./pg-array.ts";
import {
  effectivePolicy,
  environmentPolicy,
  ownPolicy,
  type PolicySource,
  policyColumnsSql,
  policyFromRow,
} from "./policies.ts";
import { type ProxyRecord, toProxyRecord } from "./proxies.ts";
import { loadReplicaHoursThisMonth } from "./spend.ts";
import { epochMs, timestampParam } from "./time.ts";

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

/** The proxies row as `$inferSelect` names it, its times as epoch ms (no timestamp parsing per row). */
const PROXY_COLUMNS = sql.join(
  Object.entries(getTableColumns(proxies)).map(([key, column]) =>
    column === proxies.createdAt || column === proxies.updatedAt
      ? sql`${epochMs(column)}::float8 as ${sql.identifier(key)}`
      : sql`${column} as ${sql.identifier(key)}`,
  ),
  sql`, `,
);
const ACTIVE_STATUSES = sql.join(
  ACTIVE_EVENT_STATUSES.map((status) => sql`${status}`),
  sql`, `,
);
const COMPLETED: ScalingEventStatus = "completed";

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
  const e = proxyScalingEvents;
  const r = scalingRecommendations;
  const latest = proxyLatestMetrics;
  const [proxyRows, environmentRows, samples, eventRows, recommendationRows] = await Promise.all([
    queryPreparedRows<ProxyWithPolicyRow>(
      db,
      sql`select ${PROXY_COLUMNS},
            ${epochMs(sql`(select max(${latest.recordedAt}) from ${latest} where ${latest.proxyId} = ${proxies.id})`)}::float8
              as "lastSampleAt",
            ${policyColumnsSql(ownPolicy)}
          from ${proxies} left join ${aliased(proxyScalingPolicies, ownPolicy)} on ${ownPolicy.proxyId} = ${proxies.id}
          where ${inList(proxies.id, ids, "uuid")}`,
    ),
    queryPreparedRows<Record<string, unknown>>(
      db,
      sql`select ${environmentPolicy.environment} as environment, ${policyColumnsSql(environmentPolicy)}
          from ${aliased(environmentScalingPolicies, environmentPolicy)}`,
    ),
    fetchLatestSamples(db, ids, sinceDate),
    queryPreparedRows<ObservedEventRow>(
      db,
      sql`select ${e.proxyId} as "proxyId", ${e.id} as id, ${e.status} as status,
            ${epochMs(e.createdAt)}::float8 as at, ${e.previousReplicas} as "fromReplicas",
            ${e.newReplicas} as "toReplicas"
          from ${e}
          where ${inList(e.proxyId, ids, "uuid")}
            and (${e.status} in (${ACTIVE_STATUSES}) or (${e.status} = ${COMPLETED} and ${e.createdAt} >= ${since}))
          order by ${e.createdAt}`,
    ),
    queryPreparedRows<{ proxyId: string } & RecommendationRecord>(
      db,
      sql`select ${r.proxyId} as "proxyId", ${epochMs(r.recommendedAt)}::float8 as at, ${r.replicas} as replicas
          from ${r}
          where ${inList(r.proxyId, ids, "uuid")} and ${r.recommendedAt} >= ${since}
          order by ${r.recommendedAt}`,
    ),
  ]);
  const environmentPolicies = new Map(
    environmentRows.map((row) => [row.environment as string, policyFromRow(row, environmentPolicy)]),
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
    const { policy, source } = effectivePolicy(
      { proxy: policyFromRow(row, ownPolicy), environment: environmentPolicies.get(row.environment) ?? null },
      (parsed) => parsed,
    );
    const proxy = toProxyRecord({
      ...row,
      createdAt: new Date(row.createdAt),
      updatedAt: new Date(row.updatedAt),
    });
    const active = activeEvents.get(proxy.id) ?? null;
    result.set(proxy.id, {
      proxy,
      activeEvent: active,
      policy,
      policySource: source,
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
  const zeroable = [...result.values()].filter((entry) => mayScaleToZero(entry.policy));
  if (zeroable.length > 0) await loadScaleToZeroInputs(db, zeroable, args.now);
  // The budget's input (core's budgetCap), read only for proxies whose policy has a budget.
  const budgeted = [...result.values()].filter(
    (entry) => entry.policy.monthlyBudget !== undefined && entry.policy.costPerReplicaHour !== undefined,
  );
  if (budgeted.length > 0) {
    const hours = await loadReplicaHoursThisMonth(db, {
      proxies: budgeted.map((entry) => ({
        id: entry.proxy.id,
        currentReplicas: entry.proxy.currentReplicas,
        createdAt: entry.state.createdAt,
        timeZone: entry.policy.timeZone,
      })),
      now: args.now,
    });
    for (const entry of budgeted) entry.state.replicaHoursThisMonth = hours.get(entry.proxy.id) ?? 0;
  }
  return result;
}

function mayScaleToZero(policy: ScalingPolicy): boolean {
  return policy.minReplicas === 0 || (policy.schedules ?? []).some((window) => window.minReplicas === 0);
}

/**
 * Scale to zero's inputs (core's scaleToZeroLimit): the newest stored sample with requests within each proxy's
 * grace period, from every server's pushes and scrapes (one index range per proxy), and the metric source's
 * activation threshold.
 */
async function loadScaleToZeroInputs(db: Db, entries: readonly ObservedProxy[], now: number): Promise<void> {
  const m = proxyLoadMetrics;
  const grace = Math.max(...entries.map((entry) => entry.policy.scaleToZeroGracePeriodSeconds));
  const rows = await queryPreparedRows<{ proxyId: string; at: number }>(
    db,
    sql`select ${m.proxyId} as "proxyId", ${epochMs(sql`max(${m.recordedAt})`)}::float8 as at
        from ${m}
        where ${inList(
          m.proxyId,
          entries.map((entry) => entry.proxy.id),
          "uuid",
        )} and ${m.recordedAt} >= ${timestampParam(new Date(now - grace * 1000))} and ${m.requestRate} > 0
        group by ${m.proxyId}`,
  );
  const lastRequest = new Map(rows.map((row) => [row.proxyId, row.at]));
  for (const entry of entries) {
    entry.state.lastRequestAt = lastRequest.get(entry.proxy.id) ?? null;
    const threshold = (entry.proxy.metricsSource as MetricsSource).activationThreshold;
    if (threshold !== undefined) entry.state.activationThreshold = threshold;
  }
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
