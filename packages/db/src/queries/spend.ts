import { DEFAULT_TIME_ZONE, monthBounds, monthSpend, replicaHours } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows } from "../db.ts";
import { NotFoundError } from "../errors.ts";
import type { MonthSpendRecord } from "../records.ts";
import { proxyScalingEvents } from "../schema/index.ts";
import { inList } from "./pg-array.ts";
import { getEffectivePolicy } from "./policies.ts";
import { getProxy } from "./proxies.ts";
import { epochMs, timestampParam } from "./time.ts";

export interface SpendProxy {
  id: string;
  currentReplicas: number;
  /** Epoch ms: a proxy runs nothing before it is registered. */
  createdAt: number;
  timeZone?: string | undefined;
}

/**
 * Replica-hours each proxy ran this calendar month (in its policy's time zone) up to `now`, from its completed
 * scale events: the count changes from `previous_replicas` to `new_replicas` when the event completes. Before
 * the month's first completed scale the proxy ran that scale's `previous_replicas`; with none, its current
 * count. One query for all the proxies.
 */
export async function loadReplicaHoursThisMonth(
  db: Db,
  args: { proxies: readonly SpendProxy[]; now: number },
): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const proxies = args.proxies.filter((proxy) => isUuid(proxy.id));
  if (proxies.length === 0) return result;
  const starts = new Map(
    proxies.map((proxy) => [
      proxy.id,
      Math.max(proxy.createdAt, monthBounds(proxy.timeZone ?? DEFAULT_TIME_ZONE, args.now).start),
    ]),
  );
  const earliest = Math.min(...starts.values());
  const e = proxyScalingEvents;
  const rows = await queryPreparedRows<{ proxyId: string; at: number; from: number; to: number }>(
    db,
    sql`select ${e.proxyId} as "proxyId", ${epochMs(e.completedAt)}::float8 as at,
          ${e.previousReplicas} as "from", ${e.newReplicas} as "to"
        from ${e}
        where ${inList(
          e.proxyId,
          proxies.map((proxy) => proxy.id),
          "uuid",
        )}
          and ${e.status} = 'completed' and ${e.completedAt} >= ${timestampParam(new Date(earliest))}
          and ${e.completedAt} <= ${timestampParam(new Date(args.now))}
        order by ${e.completedAt}`,
  );
  const byProxy = new Map<string, { at: number; from: number; to: number }[]>();
  for (const row of rows) {
    const list = byProxy.get(row.proxyId) ?? [];
    list.push(row);
    byProxy.set(row.proxyId, list);
  }
  for (const proxy of proxies) {
    const from = starts.get(proxy.id) ?? args.now;
    const changes = (byProxy.get(proxy.id) ?? []).filter((change) => change.at >= from);
    const initial = changes[0]?.from ?? proxy.currentReplicas;
    const points = changes.map((change) => ({ at: change.at, replicas: change.to }));
    result.set(proxy.id, replicaHours(initial, points, from, Math.max(from, args.now)));
  }
  return result;
}

/**
 * The proxy's spend this month under its effective policy (core's monthSpend over the replica-hours above);
 * null when the policy has no costPerReplicaHour.
 */
export async function getMonthSpend(
  db: Db,
  args: { proxyId: string; now: number },
): Promise<MonthSpendRecord | null> {
  const [proxy, effective] = await Promise.all([
    getProxy(db, { id: args.proxyId }),
    getEffectivePolicy(db, { proxyId: args.proxyId }),
  ]);
  if (proxy === null || effective === null) throw new NotFoundError("proxy", args.proxyId);
  const { costPerReplicaHour, monthlyBudget } = effective.policy;
  if (costPerReplicaHour === undefined) return null;
  const timeZone = effective.policy.timeZone ?? DEFAULT_TIME_ZONE;
  const hours =
    (
      await loadReplicaHoursThisMonth(db, {
        proxies: [
          {
            id: proxy.id,
            currentReplicas: proxy.currentReplicas,
            createdAt: proxy.createdAt.getTime(),
            timeZone,
          },
        ],
        now: args.now,
      })
    ).get(proxy.id) ?? 0;
  const spend = monthSpend(
    { costPerReplicaHour, monthlyBudget, timeZone },
    hours,
    proxy.currentReplicas,
    args.now,
  );
  return {
    timeZone,
    monthStart: new Date(spend.monthStart),
    monthEnd: new Date(spend.monthEnd),
    costPerReplicaHour,
    replicaHours: hours,
    spent: spend.spent,
    projected: spend.projected,
    monthlyBudget: spend.monthlyBudget,
  };
}
