import type { DemandHistory } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { type Db, isUuid, queryPreparedRows } from "../db.ts";
import { proxyLoadMetrics1m } from "../schema/index.ts";
import { inList } from "./pg-array.ts";
import { epochMs, timestampParam } from "./time.ts";

const MINUTE_MS = 60_000;

/**
 * Each proxy's fleet request rate per minute over [now − days, now), from the per-minute rollups, for the
 * predictive strategy's forecast. A minute's fleet rate is its per-replica average × its average replica count
 * (1 when its samples carried none). Minutes without a rollup (the proxy was silent) repeat the previous
 * minute, so the series stays evenly spaced. The series ends after its newest rollup; proxies without rollups
 * are absent. One query for all the proxies.
 */
export async function loadDemandHistories(
  db: Db,
  args: { proxyIds: readonly string[]; now: number; days: number },
): Promise<Map<string, Omit<DemandHistory, "model">>> {
  const result = new Map<string, Omit<DemandHistory, "model">>();
  const ids = args.proxyIds.filter(isUuid);
  if (ids.length === 0) return result;
  const m = proxyLoadMetrics1m;
  const since = timestampParam(new Date(args.now - args.days * 1_440 * MINUTE_MS));
  const rows = await queryPreparedRows<{ proxyId: string; at: number; rate: number }>(
    db,
    sql`select ${m.proxyId} as "proxyId", ${epochMs(m.bucket)}::float8 as at,
          (${m.requestRateAvg} * coalesce(${m.replicasAvg}, 1))::float8 as rate
        from ${m}
        where ${inList(m.proxyId, ids, "uuid")} and ${m.bucket} >= ${since}
          and ${m.bucket} < ${timestampParam(new Date(args.now))}
        order by ${m.proxyId}, ${m.bucket}`,
  );
  let perMinute: number[] = [];
  let proxyId: string | undefined;
  let lastAt = 0;
  const close = () => {
    if (proxyId !== undefined) result.set(proxyId, { perMinute, endsAt: lastAt + MINUTE_MS });
  };
  for (const row of rows) {
    if (row.proxyId !== proxyId) {
      close();
      proxyId = row.proxyId;
      perMinute = [];
    } else {
      const previous = perMinute.at(-1) ?? 0;
      for (let at = lastAt + MINUTE_MS; at < row.at; at += MINUTE_MS) perMinute.push(previous);
    }
    perMinute.push(row.rate);
    lastAt = row.at;
  }
  close();
  return result;
}
