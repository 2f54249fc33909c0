/** Seeded per-minute rollups for the predictive forecast's tests (server REST and control, admin e2e). */
import type { Database } from "./connection.ts";
import { proxyLoadMetrics1m } from "./schema/index.ts";

const MINUTE = 60_000;

/** The seeded fleet request rate at `at`: a daily sinusoid around 1000 req/s (peak 1600 at 06:00 UTC). */
export const seededFleetRate = (at: number) => 1000 + 600 * Math.sin((2 * Math.PI * at) / (1440 * MINUTE));

/** `minutes` per-minute rollups ending at the current minute, at seededFleetRate on 2 replicas. */
export async function storeDailyRollups(database: Database, proxyId: string, minutes: number): Promise<void> {
  const end = Math.floor(Date.now() / MINUTE) * MINUTE;
  const rows = Array.from({ length: minutes }, (_, i) => {
    const at = end - (minutes - i) * MINUTE;
    const perReplica = seededFleetRate(at) / 2;
    return {
      proxyId,
      bucket: new Date(at),
      samples: 1,
      cpuPercentAvg: 50,
      cpuPercentMax: 50,
      memoryPercentAvg: 50,
      memoryPercentMax: 50,
      requestRateAvg: perReplica,
      requestRateMax: perReplica,
      avgLatencyMsAvg: 20,
      avgLatencyMsMax: 20,
      errorRatePercentAvg: 0,
      errorRatePercentMax: 0,
      loadScoreAvg: 50,
      loadScoreMax: 50,
      replicaSamples: 1,
      replicasAvg: 2,
      replicasMax: 2,
    };
  });
  for (let i = 0; i < rows.length; i += 500) {
    await database.db.insert(proxyLoadMetrics1m).values(rows.slice(i, i + 500));
  }
}
