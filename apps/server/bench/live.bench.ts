import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type AppRouter, type LiveChange, signToken } from "@proxyscale/api";
import { type Database, openDatabase } from "@proxyscale/db";
import { createTRPCClient, httpSubscriptionLink } from "@trpc/client";
import { sql } from "drizzle-orm";
import { EventSource } from "eventsource";
import { type ControlNode, startControlNode } from "../test/control/node.ts";
import { keepAliveCaller } from "./support.ts";

/**
 * Live-update latency: from sending a metrics push to its decision (the control loop's, stored) arriving on an
 * open live.onChange subscription over SSE, through the UI's link (httpSubscriptionLink, token in
 * connectionParams), over PUSHES pushes per case. Baseline, measured in the same loop: the push's own round trip
 * (201 back to the client). Cases: one server on PGlite, one on PostgreSQL, and two servers on one PostgreSQL
 * schema with the push sent to A and the subscription on B (LISTEN/NOTIFY, batched every 10 ms, then B reads the
 * decision). Servers, client and subscriber share one process, so one clock times both ends.
 */

const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PUSHES = Number(process.env.BENCH_PUSHES ?? 500);
const WARMUP = 30;
const SECRET = randomBytes(32).toString("hex");
const HIGH = { cpuPercent: 95, memoryPercent: 90, requestRate: 1500, avgLatencyMs: 40, errorRatePercent: 2 };
const LOW = { cpuPercent: 5, memoryPercent: 10, requestRate: 20, avgLatencyMs: 5, errorRatePercent: 0 };

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A subscriber that resolves a waiter when a decision of `proxyId` arrives, noting when. */
function subscribe(url: string, bearer: string, proxyId: string) {
  const trpc = createTRPCClient<AppRouter>({
    links: [httpSubscriptionLink({ url: `${url}/trpc`, EventSource, connectionParams: { token: bearer } })],
  });
  let waiter: ((at: number) => void) | undefined;
  const subscription = trpc.live.onChange.subscribe(
    { proxyId },
    {
      onData: (data) => {
        const change = data as LiveChange;
        if (change.kind !== "decision" || !waiter) return;
        const resolve = waiter;
        waiter = undefined;
        resolve(performance.now());
      },
      onError: (error) => process.stderr.write(`subscription error: ${error.message}\n`),
    },
  );
  return {
    nextDecision: () =>
      new Promise<number>((resolve) => {
        waiter = resolve;
      }),
    close: () => subscription.unsubscribe(),
  };
}

async function measure(label: string, databases: Database[]) {
  const nodes: ControlNode[] = [];
  for (const database of databases)
    nodes.push(await startControlNode(database, SECRET, { reconcileIntervalMs: 3_600_000 }));
  const pushTo = nodes[0]!;
  const watchOn = nodes.at(-1)!;
  const bearer = await signToken({ sub: "bench", role: "admin", tier: "enterprise", secret: SECRET });
  const { call, close: closeCaller } = keepAliveCaller(pushTo.url, bearer);
  const created = await call("POST", "/api/proxies", { name: "live-bench" });
  if (created.status !== 201) throw new Error(`register: ${created.status} ${created.body}`);
  const proxyId = (JSON.parse(created.body) as { id: string }).id;
  // Mode off: the loop decides and stores each push's decision but never scales, so pushes do not queue on a scale.
  const policy = await call("POST", `/api/proxy/scaling/policies/${proxyId}`, { mode: "off" });
  if (policy.status >= 300) throw new Error(`policy: ${policy.status} ${policy.body}`);

  const subscriber = subscribe(watchOn.url, bearer, proxyId);
  while (watchOn.server.live.subscriberCount() === 0) await new Promise((resolve) => setImmediate(resolve));
  // Across servers, A sends once it has seen B's watcher lease (it looks every second).
  while (pushTo !== watchOn && !pushTo.server.live.sharesChanges())
    await new Promise((resolve) => setTimeout(resolve, 20));

  const latencies: number[] = [];
  const roundTrips: number[] = [];
  for (let i = 0; i < PUSHES + WARMUP; i++) {
    const arrival = subscriber.nextDecision();
    const sentAt = performance.now();
    const response = await call("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
      ...(i % 2 === 0 ? HIGH : LOW),
      instanceId: "bench-1",
    });
    const answeredAt = performance.now();
    if (response.status !== 201) throw new Error(`push: ${response.status} ${response.body}`);
    const arrivedAt = await arrival;
    await Promise.all(nodes.map((node) => node.control.idle()));
    if (i >= WARMUP) {
      latencies.push(arrivedAt - sentAt);
      roundTrips.push(answeredAt - sentAt);
    }
  }
  subscriber.close();
  closeCaller();
  for (const node of nodes) await node.close();
  return { label, latencies, roundTrips };
}

async function openPostgres(schema: string): Promise<Database | null> {
  try {
    return await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 8 });
  } catch (error) {
    process.stderr.write(`skipping PostgreSQL: ${(error as Error).message}\n`);
    return null;
  }
}

const results: Array<Awaited<ReturnType<typeof measure>>> = [];
{
  const database = await openDatabase({ dataDir: "memory://" });
  results.push(await measure("PGlite, one server", [database]));
  await database.close();
}
for (const servers of [1, 2]) {
  const schema = `bench_${randomBytes(6).toString("hex")}`;
  const first = await openPostgres(schema);
  if (!first) break;
  const databases = [first];
  if (servers === 2) databases.push((await openPostgres(schema))!);
  results.push(
    await measure(
      servers === 1 ? "PostgreSQL, one server" : "PostgreSQL, push to A, subscribed on B",
      databases,
    ),
  );
  await first.db.execute(sql.raw(`drop schema if exists "${schema}" cascade`));
  for (const database of databases) await database.close();
}

const rows = results.map(({ label, latencies, roundTrips }) => {
  const [p50, p95, p99] = [50, 95, 99].map((p) => percentile(latencies, p));
  const [b50, b95, b99] = [50, 95, 99].map((p) => percentile(roundTrips, p));
  return `| ${label} | ${latencies.length} | ${p50!.toFixed(1)} | ${p95!.toFixed(1)} | ${p99!.toFixed(1)} | ${b50!.toFixed(1)} | ${b95!.toFixed(1)} | ${b99!.toFixed(1)} | ${(p95! / b95!).toFixed(2)} | ${p95! <= 1_000 ? "met" : "missed"} |`;
});
process.stdout.write(
  [
    "",
    `Live-update latency: metrics push → its decision on an open live.onChange subscription (SSE), ms, ${PUSHES} pushes per case`,
    "",
    "| case | pushes | p50 | p95 | p99 | baseline push RTT p50 | baseline p95 | baseline p99 | ratio p95 | goal p95 ≤ 1 s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows,
    "",
  ].join("\n"),
  // Exit once the table is written: a pipe takes it asynchronously.
  () => process.exit(0),
);
