import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { signToken } from "@proxyscale/api";
import { type Database, openDatabase } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { startControlNode } from "../test/control/node.ts";
import { keepAliveCaller } from "./support.ts";

/**
 * Reaction time: from sending the metrics push that crosses a threshold to the actuator's call reaching the fleet
 * (a webhook receiver in this process records when the signed POST arrives), over PUSHES pushes per driver.
 * Each push alternates between high load (scale 1 → 2) and low load (2 → 1), with cooldowns and windows at 0,
 * and waits for the scale to finish before the next. Baseline, measured interleaved in the same run: the round
 * trip of a push that changes nothing (in the hold band of another proxy), i.e. the cost of being heard at all.
 * Server, control loop, receiver and client share one process, so one clock times both ends.
 * Then the same under background load: BACKGROUND_RATE (default 2,000) pushes/s from BACKGROUND_PROXIES other
 * proxies, sent open-loop by a second process (bench/background-pushes.ts), while LOADED_PUSHES pushes react.
 */

const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PUSHES = Number(process.env.BENCH_PUSHES ?? 1_000);
const LOADED_PUSHES = Number(process.env.LOADED_PUSHES ?? 300);
const BACKGROUND_RATE = Number(process.env.BACKGROUND_RATE ?? 2_000);
const BACKGROUND_PROXIES = Number(process.env.BACKGROUND_PROXIES ?? 2_000);
const WARMUP = 50;
const SECRET = randomBytes(32).toString("hex");
const HIGH = { cpuPercent: 95, memoryPercent: 90, requestRate: 1500, avgLatencyMs: 40, errorRatePercent: 2 };
const LOW = { cpuPercent: 5, memoryPercent: 10, requestRate: 20, avgLatencyMs: 5, errorRatePercent: 0 };
const MID = { cpuPercent: 50, memoryPercent: 60, requestRate: 500, avgLatencyMs: 20, errorRatePercent: 2 };
const FAST_POLICY = {
  strategy: "threshold",
  minReplicas: 1,
  maxReplicas: 2,
  scaleUpCooldownSeconds: 0,
  scaleDownCooldownSeconds: 0,
  behavior: {
    scaleUp: { stabilizationWindowSeconds: 0 },
    scaleDown: { stabilizationWindowSeconds: 0 },
  },
};

/** The fleet: answers each signed scale at once and notes when it arrived. */
async function startReceiver() {
  const arrivals = new Map<string, number>();
  let waiter: { eventCount: number; resolve: (at: number) => void } | undefined;
  const server = http.createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const call = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        eventId: string;
        toReplicas: number;
      };
      arrivals.set(call.eventId, at);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ observedReplicas: call.toReplicas }));
      if (waiter && arrivals.size >= waiter.eventCount) {
        const { resolve } = waiter;
        waiter = undefined;
        resolve(at);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves with the arrival time of call number `count`. */
    nthCall: (count: number) =>
      new Promise<number>((resolve) => {
        waiter = { eventCount: count, resolve };
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Starts the background pushes in their own process; resolves once they run. */
async function startBackground(url: string, bearer: string, proxyIds: string[]) {
  const script = fileURLToPath(new URL("./background-pushes.ts", import.meta.url));
  // Node itself with tsx's loader (not the tsx wrapper, which would leave its node child running on a kill).
  const child = spawn(process.execPath, ["--import", "tsx", script, url, bearer, ...proxyIds], {
    env: { ...process.env, BACKGROUND_RATE: String(BACKGROUND_RATE) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await once(child.stdout!, "data");
  return {
    async stop() {
      child.kill("SIGKILL");
      await once(child, "exit");
    },
  };
}

async function measure(driver: "pglite" | "postgres", background: boolean) {
  const schema = `bench_${randomBytes(6).toString("hex")}`;
  let database: Database;
  try {
    database =
      driver === "pglite"
        ? await openDatabase({ dataDir: "memory://" })
        : await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 8 });
  } catch (error) {
    process.stderr.write(`skipping ${driver}: ${(error as Error).message}\n`);
    return null;
  }
  const receiver = await startReceiver();
  // Wired as start.ts wires a server: the control loop is its executor and hears every push.
  const node = await startControlNode(database, SECRET, { reconcileIntervalMs: 3_600_000 });
  const { url, control } = node;
  const token = await signToken({
    sub: "bench",
    role: "admin",
    tier: "enterprise",
    secret: SECRET,
    expiresIn: "1h",
  });
  const { call, close: closeCaller } = keepAliveCaller(url, token);
  const register = async (name: string, withActuator: boolean) => {
    const created = await call("POST", "/api/proxies", {
      name,
      ...(withActuator
        ? { actuator: { kind: "webhook", url: `${receiver.url}/scale`, secret: SECRET, maxAttempts: 1 } }
        : {}),
    });
    if (created.status !== 201) throw new Error(`register: ${created.status} ${created.body}`);
    const id = (JSON.parse(created.body) as { id: string }).id;
    const policy = await call("POST", `/api/proxy/scaling/policies/${id}`, FAST_POLICY);
    if (policy.status >= 300) throw new Error(`policy: ${policy.status} ${policy.body}`);
    return id;
  };
  const scaled = await register("reacting", true);
  const holding = await register("holding", false);
  const push = (proxyId: string, metrics: object) =>
    call("POST", `/api/proxy/scaling/metrics/${proxyId}`, { ...metrics, instanceId: "bench-1" });

  let load: { stop(): Promise<void> } | undefined;
  if (background) {
    const others: string[] = [];
    for (let start = 0; start < BACKGROUND_PROXIES; start += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, BACKGROUND_PROXIES - start) }, async (_, offset) => {
          const created = await call("POST", "/api/proxies", { name: `background-${start + offset}` });
          if (created.status !== 201) throw new Error(`register: ${created.status} ${created.body}`);
          return (JSON.parse(created.body) as { id: string }).id;
        }),
      );
      others.push(...batch);
    }
    load = await startBackground(url, token, others);
  }
  // Under background load the queue is never idle: wait for the scale itself instead.
  const settle = () => (background ? control.executor.allSettled() : control.idle());

  const reactions: number[] = [];
  const roundTrips: number[] = [];
  let calls = 0;
  for (let i = 0; i < (background ? LOADED_PUSHES : PUSHES) + WARMUP; i++) {
    const arrival = receiver.nthCall(calls + 1);
    const sentAt = performance.now();
    const response = await push(scaled, i % 2 === 0 ? HIGH : LOW);
    if (response.status !== 201) throw new Error(`push: ${response.status} ${response.body}`);
    const arrivedAt = await arrival;
    calls += 1;
    await settle();

    const baselineAt = performance.now();
    const baseline = await push(holding, MID);
    const roundTrip = performance.now() - baselineAt;
    if (baseline.status !== 201) throw new Error(`baseline push: ${baseline.status}`);
    await settle();
    if (i >= WARMUP) {
      reactions.push(arrivedAt - sentAt);
      roundTrips.push(roundTrip);
    }
  }

  await load?.stop();
  closeCaller();
  await node.close();
  await receiver.close();
  if (driver === "postgres") await database.db.execute(sql.raw(`drop schema if exists "${schema}" cascade`));
  await database.close();
  return { driver, reactions, roundTrips };
}

const rows: string[] = [];
for (const [driver, background] of [
  ["pglite", false],
  ["postgres", false],
  ["pglite", true],
  ["postgres", true],
] as const) {
  const result = await measure(driver, background);
  if (!result) continue;
  const { reactions, roundTrips } = result;
  const p50 = percentile(reactions, 50);
  const p99 = percentile(reactions, 99);
  const base50 = percentile(roundTrips, 50);
  const base99 = percentile(roundTrips, 99);
  rows.push(
    `| ${driver} | ${background ? `${BACKGROUND_RATE} pushes/s from ${BACKGROUND_PROXIES} other proxies` : "none"} | ${reactions.length} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${base50.toFixed(1)} | ${base99.toFixed(1)} | ${(p50 / base50).toFixed(2)} | ${(p99 / base99).toFixed(2)} | ${p99 <= 50 ? "met" : "missed"} | ${Math.round(15_000 / p99)}× / ${Math.round(30_000 / p99)}× |`,
  );
}

process.stdout.write(
  [
    "",
    `Reaction time: metrics push that crosses a threshold → the actuator's call (ms), ${PUSHES} pushes per driver`,
    "",
    "| driver | background load | pushes | reaction p50 | reaction p99 | baseline push RTT p50 | baseline p99 | ratio p50 | ratio p99 | goal p99 ≤ 50 ms | faster than HPA 15 s / KEDA 30 s (p99) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ...rows,
    "",
  ].join("\n"),
);
process.exit(0);
