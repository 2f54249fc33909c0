import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import { computeLoadScore, DEFAULT_POLICY, type MetricSample } from "@proxyscale/core";
import { createProxy, type Database, insertSamples, openDatabase } from "@proxyscale/db";
import autocannon from "autocannon";
import { sql } from "drizzle-orm";
import { openLoop, POSTGRES_URL, post, startServerProcess } from "./support.ts";

/**
 * HTTP benchmark of the server, per driver (PostgreSQL when reachable, and PGlite):
 *  1. ingest: samples/s through POST /api/proxy/scaling/metrics/{id}/batch (1,000 samples per request: JWT check,
 *     zod validation, ownership, policy lookup, one INSERT) against the db package's insertSamples of the same
 *     batches in the same run;
 *  2. evaluate latency under 200 concurrent connections (autocannon), against /healthz under the same load:
 *     saturated (autocannon: each connection sends as soon as its answer comes back), and open-loop at a fixed
 *     200 requests/s (200 agents evaluating once a second), where latency is service time rather than queueing.
 * The server runs in a child process so the load generator does not share its event loop.
 */

const BATCH = 1_000;
const INGEST_BATCHES = Number(process.env.BENCH_INGEST_BATCHES ?? 30);
const CONNECTIONS = 200;
const DURATION_SECONDS = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const EVALUATE_PROXIES = 200;
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 200);
const SECRET = randomBytes(32).toString("hex");

interface Row {
  driver: string;
  measure: string;
  value: string;
  baseline: string;
  ratio: string;
}

function sampleBatch(offset: number): Array<Record<string, unknown>> {
  const start = Date.now() - 60_000;
  return Array.from({ length: BATCH }, (_, index) => ({
    cpuPercent: (index * 7) % 100,
    memoryPercent: (index * 3) % 100,
    requestRate: index % 2_000,
    avgLatencyMs: index % 250,
    errorRatePercent: index % 5,
    instanceId: `replica-${index % 20}`,
    recordedAt: start + offset * BATCH + index,
  }));
}

async function ingestOverHttp(url: string, bearer: string, proxyId: string): Promise<number> {
  const batches = Array.from({ length: INGEST_BATCHES + 2 }, (_, index) =>
    JSON.stringify({ samples: sampleBatch(index) }),
  );
  const send = async (body: string) => {
    const response = await fetch(`${url}/api/proxy/scaling/metrics/${proxyId}/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body,
    });
    if (response.status !== 201)
      throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  for (const body of batches.slice(0, 2)) await send(body);
  const started = performance.now();
  for (const body of batches.slice(2)) await send(body);
  return (INGEST_BATCHES * BATCH) / ((performance.now() - started) / 1000);
}

async function ingestDirect(database: Database, proxyId: string): Promise<number> {
  const rows = (offset: number) =>
    sampleBatch(offset).map((metrics) => {
      const sample = { ...metrics, at: metrics.recordedAt } as unknown as MetricSample;
      return { proxyId, sample, loadScore: computeLoadScore(sample, DEFAULT_POLICY) };
    });
  const batches = Array.from({ length: INGEST_BATCHES + 2 }, (_, index) => rows(index));
  for (const batch of batches.slice(0, 2)) await insertSamples(database.db, batch);
  const started = performance.now();
  for (const batch of batches.slice(2)) await insertSamples(database.db, batch);
  return (INGEST_BATCHES * BATCH) / ((performance.now() - started) / 1000);
}

async function load(
  url: string,
  options: { method: string; paths: string[]; bearer?: string; rate?: number },
) {
  let next = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_SECONDS,
    ...(options.rate ? { overallRate: options.rate } : {}),
    requests: [
      {
        method: options.method,
        headers: options.bearer ? { authorization: `Bearer ${options.bearer}` } : {},
        setupRequest: (request) => {
          next = (next + 1) % options.paths.length;
          return { ...request, path: options.paths[next] };
        },
      },
    ],
  });
  if (result.non2xx > 0) throw new Error(`${options.paths[0]}: ${result.non2xx} non-2xx answers`);
  return result;
}

async function benchDriver(driver: "postgres" | "pglite"): Promise<Row[]> {
  const schema = `bench_${randomBytes(5).toString("hex")}`;
  let direct: Database;
  try {
    direct =
      driver === "postgres"
        ? await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 2 })
        : await openDatabase({ dataDir: "memory://" });
  } catch (error) {
    console.warn(`skipping ${driver}: ${(error as Error).message}`);
    return [];
  }
  const server = await startServerProcess({ driver, schema, secret: SECRET });
  const rows: Row[] = [];
  try {
    const admin = await signToken({
      sub: "bench",
      role: "admin",
      tier: "enterprise",
      secret: SECRET,
      expiresIn: "1h",
    });
    const register = async (name: string) => {
      const response = await post(`${server.url}/api/proxies`, admin, { name });
      if (response.status !== 201) throw new Error(`register answered ${response.status}`);
      return (response.body as { id: string }).id;
    };

    const httpProxy = await register("ingest-http");
    const directProxy =
      driver === "postgres"
        ? await register("ingest-direct")
        : (await createProxy(direct.db, { ownerId: "bench", name: "ingest-direct", actorId: "bench" })).id;
    const httpRate = await ingestOverHttp(server.url, admin, httpProxy);
    const directRate = await ingestDirect(direct, directProxy);
    rows.push({
      driver,
      measure: `ingest, batches of ${BATCH} (samples/s)`,
      value: httpRate.toFixed(0),
      baseline: `${directRate.toFixed(0)} (insertSamples)`,
      ratio: `${((httpRate / directRate) * 100).toFixed(0)}%`,
    });

    const proxies: string[] = [];
    for (let index = 0; index < EVALUATE_PROXIES; index++) {
      const proxyId = await register(`evaluate-${index}`);
      await post(`${server.url}/api/proxy/scaling/metrics/${proxyId}`, admin, {
        cpuPercent: 40 + (index % 50),
        memoryPercent: 50,
        requestRate: 600,
        avgLatencyMs: 20,
        errorRatePercent: 1,
      });
      proxies.push(proxyId);
    }
    const evaluatePaths = proxies.map((proxyId) => `/api/proxy/scaling/evaluate/${proxyId}`);
    const evaluate = await load(server.url, { method: "POST", paths: evaluatePaths, bearer: admin });
    const health = await load(server.url, { method: "GET", paths: ["/healthz"] });
    for (const percentile of ["p50", "p99"] as const) {
      rows.push({
        driver,
        measure: `evaluate ${percentile} (ms), ${CONNECTIONS} connections, saturated`,
        value: String(evaluate.latency[percentile]),
        baseline: `${health.latency[percentile]} (/healthz)`,
        ratio: `${(evaluate.latency[percentile] / Math.max(health.latency[percentile], 1)).toFixed(1)}×`,
      });
    }
    rows.push({
      driver,
      measure: "evaluate throughput (req/s), saturated",
      value: evaluate.requests.average.toFixed(0),
      baseline: `${health.requests.average.toFixed(0)} (/healthz)`,
      ratio: `${((evaluate.requests.average / health.requests.average) * 100).toFixed(0)}%`,
    });

    const fixed = { rate: FIXED_RATE, seconds: DURATION_SECONDS, connections: CONNECTIONS };
    const steadyEvaluate = await openLoop(server.url, {
      method: "POST",
      request: (index) => ({ path: evaluatePaths[index % evaluatePaths.length]! }),
      bearer: admin,
      ...fixed,
    });
    const steadyHealth = await openLoop(server.url, {
      method: "GET",
      request: () => ({ path: "/healthz" }),
      ...fixed,
    });
    for (const percentile of ["p50", "p99"] as const) {
      rows.push({
        driver,
        measure: `evaluate ${percentile} (ms), fixed ${FIXED_RATE} req/s (open loop)`,
        value: steadyEvaluate[percentile].toFixed(1),
        baseline: `${steadyHealth[percentile].toFixed(1)} (/healthz)`,
        ratio: `${(steadyEvaluate[percentile] / Math.max(steadyHealth[percentile], 0.1)).toFixed(1)}×`,
      });
    }
  } finally {
    await server.stop();
    if (direct.driver === "postgres")
      await direct.db.execute(sql.raw(`drop schema if exists "${schema}" cascade`));
    await direct.close();
  }
  return rows;
}

/** BENCH_DRIVERS=postgres (or pglite) runs one driver; both by default. */
const DRIVERS = (process.env.BENCH_DRIVERS ?? "postgres,pglite").split(",");
const rows: Row[] = [];
for (const driver of ["postgres", "pglite"] as const)
  if (DRIVERS.includes(driver)) rows.push(...(await benchDriver(driver)));
console.log(`\n### HTTP benchmark (${DURATION_SECONDS} s per load run, ${INGEST_BATCHES} ingest batches)\n`);
console.log("| driver | measure | value | baseline (same run) | ratio |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const row of rows)
  console.log(`| ${row.driver} | ${row.measure} | ${row.value} | ${row.baseline} | ${row.ratio} |`);
