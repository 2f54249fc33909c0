import {
  historySecondsFor,
  type ObservedState,
  type RecommendationRecord,
  type ScaleEventRecord,
  type ScalingPolicy,
  tierCapsFor,
} from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import type { proxies, ScalingEventStatus } from "../schema/index.ts";
import { fetchLatestSamples } from "./metrics.ts";
import { inList } from "./pg-array.ts";
import { FROZEN_DEFAULT_POLICY, type PolicySource, policyColumnsSql, policyFromRow } from "./policies.ts";
import { type ProxyRecord, toProxyRecord } from "./proxies.ts";
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
