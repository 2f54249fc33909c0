/**
 * Database benchmarks (issue: packages/db). Run: `pnpm --filter @proxyscale/db bench`.
 * PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), in its own schema, dropped after;
 * PGlite in memory. Every figure is printed next to a baseline measured in the same run.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import {
  type Database,
  type Db,
  getScalingSummary,
  insertSamples,
  latestSamples,
  loadObservedStates,
  openDatabase,
  queryRows,
  type SampleInput,
} from "../src/index.ts";

const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const BATCH = 1_000;
const FLEET = 10_000;

interface Row {
  metric: string;
  driver: string;
  value: string;
  baseline: string;
  ratio: string;
  goal: string;
}
const results: Row[] = [];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timeMedian(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

async function createProxies(db: Db, count: number): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    db,
    sql`insert into proxies (owner_id, name, current_replicas, desired_replicas)
        select 'bench', ${randomBytes(4).toString("hex")} || '-' || g, 3, 3
        from generate_series(1, ${count}::int) g returning id`,
  );
  return rows.map((row) => row.id);
}

/** `count` samples over `proxies`, `instances` instances each, 10 s apart per instance, ending at `end`. */
function makeSamples(proxies: string[], count: number, end: number, instances = 3): SampleInput[] {
  const rows: SampleInput[] = [];
  for (let i = 0; i < count; i++) {
    const proxyId = proxies[i % proxies.length]!;
    const round = Math.floor(i / proxies.length);
    const value = (i * 37) % 100;
    rows.push({
      proxyId,
      sample: {
        at: end - Math.floor(round / instances) * 10_000,
        instanceId: `i-${round % instances}`,
        cpuPercent: value,
        memoryPercent: (value * 7) % 100,
        requestRate: value * 10,
        avgLatencyMs: 5 + (value % 20),
        errorRatePercent: value % 5,
      },
      loadScore: value,
      replicas: 3,
    });
  }
  return rows;
}

async function ingest(db: Db, rows: SampleInput[]): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) await insertSamples(db, rows.slice(i, i + BATCH));
  return rows.length / ((performance.now() - start) / 1000);
}

function copyLine(row: SampleInput): string {
  const s = row.sample;
  return `${row.proxyId}\t${s.instanceId ?? ""}\t${new Date(s.at).toISOString()}\t${s.cpuPercent}\t${s.memoryPercent}\t${s.requestRate}\t${s.avgLatencyMs}\t${s.errorRatePercent}\t${row.loadScore}\t${row.replicas ?? "\\N"}\t\\N\t\\N\n`;
}

/** Raw COPY of the same rows into the same table, one COPY per batch of 1,000 or one stream for all. */
async function copyRows(client: postgres.Sql, rows: SampleInput[], batch: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < rows.length; i += batch) {
    const stream = await client`copy proxy_load_metrics (proxy_id, instance_id, recorded_at, cpu_percent,
      memory_percent, request_rate, avg_latency_ms, error_rate_percent, load_score, replicas,
      unhealthy_replicas, custom) from stdin`.writable();
    const text = rows
      .slice(i, i + batch)
      .map(copyLine)
      .join("");
    await pipeline(
      (async function* () {
        yield text;
      })(),
      stream as Writable,
    );
  }
  return rows.length / ((performance.now() - start) / 1000);
}

async function truncateSamples(db: Db) {
  await db.execute(sql`truncate proxy_load_metrics, proxy_latest_metrics`);
}

const fmtRate = (perSecond: number) => `${Math.round(perSecond).toLocaleString("en-US")} samples/s`;
const fmtMs = (ms: number) => `${ms.toFixed(1)} ms`;

async function benchIngest(database: Database, label: string, total: number, client?: postgres.Sql) {
  const db = database.db;
  const proxies = await createProxies(db, 1_000);
  const rows = makeSamples(proxies, total, Date.now());
  await ingest(db, makeSamples(proxies, 5 * BATCH, Date.now() - 86_400_000)); // warm-up
  await truncateSamples(db);
  if (!client) {
    const rate = await ingest(db, rows);
    results.push({
      metric: "ingest, batches of 1,000 (insertSamples)",
      driver: label,
      value: fmtRate(rate),
      baseline: "—",
      ratio: "—",
      goal: "—",
    });
    await truncateSamples(db);
    return;
  }
  const ingestRates: number[] = [];
  const copyRates: number[] = [];
  const streamRates: number[] = [];
  for (let round = 0; round < 2; round++) {
    await db.execute(sql`vacuum analyze proxy_load_metrics`).catch(() => {});
    ingestRates.push(await ingest(db, rows));
    await truncateSamples(db);
    copyRates.push(await copyRows(client, rows, BATCH));
    await truncateSamples(db);
    streamRates.push(await copyRows(client, rows, rows.length));
    await truncateSamples(db);
  }
  const rate = Math.max(...ingestRates);
  const copy = Math.max(...copyRates);
  const stream = Math.max(...streamRates);
  results.push({
    metric: "ingest, batches of 1,000 (insertSamples: raw rows + latest upsert, one statement)",
    driver: label,
    value: fmtRate(rate),
    baseline: `raw COPY of the same ${rows.length.toLocaleString("en-US")} rows, one stream: ${fmtRate(stream)}`,
    ratio: `${((rate / stream) * 100).toFixed(0)}%`,
    goal: "≥ 60% of COPY",
  });
  results.push({
    metric: "ingest, batches of 1,000 (insertSamples)",
    driver: label,
    value: fmtRate(rate),
    baseline: `raw COPY, one COPY statement per 1,000 rows: ${fmtRate(copy)}`,
    ratio: `${((rate / copy) * 100).toFixed(0)}%`,
    goal: "— (does COPY pay per batch?)",
  });
}

async function benchLatest(database: Database, label: string, runs: number, instances: number) {
  const db = database.db;
  const proxies = await createProxies(db, FLEET);
  const now = Date.now();
  // `instances` per proxy, ten rounds of history each, behind FLEET × instances latest rows.
  const rows = makeSamples(proxies, FLEET * instances * 10, now, instances);
  for (let i = 0; i < rows.length; i += 5_000) await insertSamples(db, rows.slice(i, i + 5_000));
  await db.execute(sql`analyze`);
  const idList = `{${proxies.join(",")}}`;
  const shape = `10,000 proxies × ${instances} instance${instances > 1 ? "s" : ""}`;
  const latest = await timeMedian(runs, () => latestSamples(db, { proxyIds: proxies }));
  const pk = await timeMedian(runs, () =>
    queryRows(db, sql`select * from proxies where id in (select unnest(${idList}::uuid[]))`),
  );
  const distinctOn = await timeMedian(runs, () =>
    queryRows(
      db,
      sql`select distinct on (proxy_id, instance_id) * from proxy_load_metrics
          where proxy_id in (select unnest(${idList}::uuid[]))
            and recorded_at >= ${new Date(now - 60_000).toISOString()}::timestamptz
          order by proxy_id, instance_id, recorded_at desc`,
    ),
  );
  const observed = await timeMedian(Math.max(3, Math.floor(runs / 2)), () =>
    loadObservedStates(db, { proxyIds: proxies, now, historySeconds: 600, reconcileIntervalMs: 10_000 }),
  );
  const returned = [...(await latestSamples(db, { proxyIds: proxies })).values()].flat().length;
  if (returned !== FLEET * instances) throw new Error(`latestSamples returned ${returned} samples`);
  results.push({
    metric: `latest samples, ${shape}, one query (latestSamples)`,
    driver: label,
    value: fmtMs(latest),
    baseline: `PK lookup of the 10,000 proxies rows: ${fmtMs(pk)}`,
    ratio: `${(latest / pk).toFixed(2)}×`,
    goal: "≤ 50 ms on PostgreSQL",
  });
  results.push({
    metric: `latest samples, ${shape}: DISTINCT ON over raw samples (60 s bound) instead`,
    driver: label,
    value: fmtMs(distinctOn),
    baseline: `latestSamples: ${fmtMs(latest)}`,
    ratio: `${(distinctOn / latest).toFixed(2)}×`,
    goal: "—",
  });
  results.push({
    metric: `observed state, ${shape} (loadObservedStates, 5 queries)`,
    driver: label,
    value: fmtMs(observed),
    baseline: `PK lookup of the 10,000 proxies rows: ${fmtMs(pk)}`,
    ratio: `${(observed / pk).toFixed(2)}×`,
    goal: "—",
  });
}

async function benchSummary(database: Database, label: string, runs: number) {
  const db = database.db;
  const [proxyId] = await createProxies(db, 1);
  const now = Date.now();
  // 24 h of 10-second samples for one proxy: 8,640 rows.
  const rows: SampleInput[] = Array.from({ length: 8_640 }, (_, i) => ({
    proxyId: proxyId!,
    sample: {
      at: now - i * 10_000,
      cpuPercent: 50 + 30 * Math.sin(i / 500),
      memoryPercent: 40,
      requestRate: 500,
      avgLatencyMs: 12,
      errorRatePercent: 0.5,
    },
    loadScore: 50 + 30 * Math.sin(i / 500),
    replicas: 3 + (i % 4),
  }));
  for (let i = 0; i < rows.length; i += 5_000) await insertSamples(db, rows.slice(i, i + 5_000));
  await db.execute(sql`analyze`);
  const summary = await timeMedian(runs, () => getScalingSummary(db, { proxyId: proxyId!, now }));
  const scan = await timeMedian(runs, () =>
    queryRows(
      db,
      sql`select count(*), avg(load_score) from proxy_load_metrics
          where proxy_id = ${proxyId}::uuid and recorded_at >= ${new Date(now - 86_400_000).toISOString()}::timestamptz`,
    ),
  );
  const check = await getScalingSummary(db, { proxyId: proxyId!, now });
  if (check.samples !== 8_640) throw new Error(`summary saw ${check.samples} samples, expected 8,640`);
  results.push({
    metric: "summary over 24 h of 10 s samples, one proxy (getScalingSummary)",
    driver: label,
    value: fmtMs(summary),
    baseline: `count+avg over the same rows: ${fmtMs(scan)}`,
    ratio: `${(summary / scan).toFixed(2)}×`,
    goal: "≤ 20 ms",
  });
}

async function onPostgres() {
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const database = await openDatabase({ driver: "postgres", url: POSTGRES_URL, pgSchema: schema });
  const client = postgres(POSTGRES_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
    // postgres.js's own sockets keep Nagle on: each COPY's CopyDone would wait ~40 ms for the server's delayed ACK.
    socket: ({ host, port }: { host: string[]; port: number[] }) =>
      net.connect({ host: host[0], port: port[0] ?? 5432, noDelay: true }),
  } as postgres.Options<Record<string, never>>);
  try {
    if (selected("ingest")) await benchIngest(database, "PostgreSQL", 200_000, client);
    if (selected("latest")) {
      await benchLatest(database, "PostgreSQL", 15, 1);
      await benchLatest(database, "PostgreSQL", 15, 3);
    }
    if (selected("summary")) await benchSummary(database, "PostgreSQL", 30);
  } finally {
    await client.end();
    await database.db.execute(sql.raw(`drop schema "${schema}" cascade`));
    await database.close();
  }
}

async function onPglite() {
  const database = await openDatabase({ driver: "pglite", dataDir: "memory://" });
  try {
    if (selected("ingest")) await benchIngest(database, "PGlite", 50_000);
    if (selected("latest")) {
      await benchLatest(database, "PGlite", 5, 1);
      await benchLatest(database, "PGlite", 5, 3);
    }
    if (selected("summary")) await benchSummary(database, "PGlite", 15);
  } finally {
    await database.close();
  }
}

/** `pnpm bench latest summary` runs only those sections; no arguments runs all. */
const only = new Set(process.argv.slice(2));
const selected = (section: string) => only.size === 0 || only.has(section);

await onPostgres();
await onPglite();

console.log(`\n## @proxyscale/db benchmarks (${new Date().toISOString()})\n`);
console.log("| metric | driver | result | baseline (same run) | ratio | goal |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const row of results) {
  console.log(
    `| ${row.metric} | ${row.driver} | ${row.value} | ${row.baseline} | ${row.ratio} | ${row.goal} |`,
  );
}
