import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { computeLoadScore, DEFAULT_POLICY, decide } from "@proxyscale/core";
import { insertSamples, loadObservedStates, openDatabase, recordDecision, schema } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { ControlLoop, DEFAULT_BATCH_SIZE } from "../src/control/loop.ts";
import { createLogger } from "../src/logger.ts";

/**
 * One reconcile tick over PROXIES proxies on PostgreSQL: list the automatic proxies of the held shards, load their
 * observed state and control facts in batches, decide each one (all hold: nothing is written). Baseline, measured
 * interleaved in the same run: loadObservedStates alone over the same proxies in the same batches, the engine's
 * input that no tick can do without.
 * State per proxy: 2 instances reporting (live samples), 2 earlier decisions in the 300 s window, no events.
 */

const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PROXIES = Number(process.env.BENCH_PROXIES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const HISTORY_SECONDS = 300;
const MID = { cpuPercent: 50, memoryPercent: 60, requestRate: 500, avgLatencyMs: 20, errorRatePercent: 2 };

const pgSchema = `bench_${randomBytes(6).toString("hex")}`;
let database: Awaited<ReturnType<typeof openDatabase>>;
try {
  database = await openDatabase({ url: POSTGRES_URL, pgSchema, poolMax: 10 });
} catch (error) {
  process.stderr.write(`reconcile bench needs PostgreSQL: ${(error as Error).message}\n`);
  process.exit(1);
}
const { db } = database;

const seedStarted = performance.now();
const ids: string[] = [];
for (let start = 0; start < PROXIES; start += 1_000) {
  const rows = await db
    .insert(schema.proxies)
    .values(
      Array.from({ length: Math.min(1_000, PROXIES - start) }, (_, i) => ({
        ownerId: "bench",
        name: `proxy-${start + i}`,
        currentReplicas: 3,
        desiredReplicas: 3,
      })),
    )
    .returning({ id: schema.proxies.id });
  ids.push(...rows.map((row) => row.id));
}
const now = Date.now();
const samples = ids.flatMap((proxyId) =>
  [1, 2].map((n) => ({
    proxyId,
    sample: { ...MID, instanceId: `replica-${n}`, at: now - 1_000 * n },
    loadScore: computeLoadScore(MID, DEFAULT_POLICY),
  })),
);
for (let start = 0; start < samples.length; start += 5_000) {
  await insertSamples(db, samples.slice(start, start + 5_000));
}
const state = {
  currentReplicas: 3,
  unhealthyReplicas: 0,
  samples: [],
  recentEvents: [],
  recommendations: [],
  lastSampleAt: null,
  createdAt: now,
  activeEvent: null,
  reconcileIntervalMs: 10_000,
};
const earlier = ids.flatMap((proxyId) =>
  [60_000, 30_000].map((ago) => ({ proxyId, decision: decide(DEFAULT_POLICY, state, now - ago) })),
);
let nextDecision = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (nextDecision < earlier.length) {
      const { proxyId, decision } = earlier[nextDecision++]!;
      await recordDecision(db, { proxyId, decision, triggeredBy: "auto" });
    }
  }),
);
// A maintenance statement: on the pool whose deadline suits it (the serving pool's is a few seconds).
await database.maintenance.execute(sql`analyze`);
const seedSeconds = (performance.now() - seedStarted) / 1000;

const control = new ControlLoop({
  database,
  logger: createLogger("silent"),
  holder: "bench",
  timers: false,
});
await control.heartbeat();

async function baseline(): Promise<number> {
  const started = performance.now();
  let loaded = 0;
  for (let start = 0; start < ids.length; start += DEFAULT_BATCH_SIZE) {
    const batch = ids.slice(start, start + DEFAULT_BATCH_SIZE);
    loaded += (
      await loadObservedStates(db, {
        proxyIds: batch,
        now: Date.now(),
        historySeconds: HISTORY_SECONDS,
        reconcileIntervalMs: 10_000,
      })
    ).size;
  }
  if (loaded !== ids.length) throw new Error(`baseline loaded ${loaded} of ${ids.length}`);
  return performance.now() - started;
}

const ticks: number[] = [];
const baselines: number[] = [];
for (let round = 0; round <= ROUNDS; round++) {
  const base = await baseline();
  const tick = await control.reconcile();
  if (tick.proxies !== ids.length) throw new Error(`tick evaluated ${tick.proxies} of ${ids.length}`);
  // Round 0 warms caches and plans.
  if (round > 0) {
    baselines.push(base);
    ticks.push(tick.ms);
  }
}
const written = await db.execute(sql`select count(*)::int as n from scaling_decisions`);
const decisionsAfter = (written as unknown as Array<{ n: number }>)[0]?.n;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const tickMedian = median(ticks);
const baseMedian = median(baselines);
process.stdout.write(
  [
    "",
    `Reconcile tick over ${PROXIES.toLocaleString("en")} proxies on PostgreSQL (batches of ${DEFAULT_BATCH_SIZE}, median of ${ROUNDS} rounds after a warm-up; seeding took ${seedSeconds.toFixed(1)} s)`,
    "",
    "| measure | median ms | min ms | max ms | ratio to baseline | goal ≤ 1,000 ms |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
    `| baseline: loadObservedStates alone | ${baseMedian.toFixed(0)} | ${Math.min(...baselines).toFixed(0)} | ${Math.max(...baselines).toFixed(0)} | 1.00 | |`,
    `| reconcile tick (list + state + facts + decide) | ${tickMedian.toFixed(0)} | ${Math.min(...ticks).toFixed(0)} | ${Math.max(...ticks).toFixed(0)} | ${(tickMedian / baseMedian).toFixed(2)} | ${tickMedian <= 1_000 ? "met" : "missed"} |`,
    "",
    `Decisions written by the ticks: ${(decisionsAfter ?? 0) - PROXIES * 2} (a tick that changes nothing writes nothing).`,
    "",
  ].join("\n"),
);

await control.close();
await db.execute(sql.raw(`drop schema if exists "${pgSchema}" cascade`));
await database.close();
process.exit(0);
