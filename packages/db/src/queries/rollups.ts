import type { RollupLoad } from "@proxyscale/core";
import { and, asc, eq, gte, lt } from "drizzle-orm";
import { type Db, isUuid } from "../db.ts";
import { proxyLoadMetrics1m } from "../schema/index.ts";
import { toDate } from "./time.ts";

/**
 * The proxy's per-minute rollups over [from, to), oldest first, as a replay reads them (core's
 * traceFromRollups): the per-replica mean request rate and the mean replica count of each minute.
 */
export async function loadRollupsForReplay(
  db: Db,
  args: { proxyId: string; from: Date | number; to: Date | number },
): Promise<RollupLoad[]> {
  if (!isUuid(args.proxyId)) return [];
  const rollups = proxyLoadMetrics1m;
  const rows = await db
    .select({
      bucket: rollups.bucket,
      requestRateAvg: rollups.requestRateAvg,
      replicasAvg: rollups.replicasAvg,
    })
    .from(rollups)
    .where(
      and(
        eq(rollups.proxyId, args.proxyId),
        gte(rollups.bucket, toDate(args.from, "from")),
        lt(rollups.bucket, toDate(args.to, "to")),
      ),
    )
    .orderBy(asc(rollups.bucket));
  return rows.map((row) => ({
    bucket: row.bucket.getTime(),
    requestRateAvg: row.requestRateAvg,
    replicasAvg: row.replicasAvg,
  }));
}
