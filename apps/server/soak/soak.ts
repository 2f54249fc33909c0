/**
 * The soak (`npm run soak`, issue 11): two real server processes on one PostgreSQL — a private cluster this
 * script starts, never the shared one — 500 proxies pushing over real HTTP, a few `local` proxies serving real
 * HTTP load through their fronts, policy edits and manual scales, and every couple of minutes (scaled to
 * SOAK_MINUTES) a server killed with SIGKILL and restarted, or PostgreSQL restarted. At the end it checks what
 * ProxyScale promises under those faults and prints a report; it exits 1 when a check fails.
 *
 * SOAK_MINUTES (default 10) bounds the loaded phase; setup and the final settle add about a minute.
 * SOAK_PROXIES (default 500), SOAK_REPORT=<file> also writes the report there (markdown).
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { signToken } from "@proxyscale/api";
import { freePort, type PrivateCluster, startPrivateCluster } from "@proxyscale/db/testing";
import postgres from "postgres";
import { type HelloUpstream, startHelloUpstream } from "../src/actuators/local/upstream.ts";
import { DEMO_POLICY } from "../src/demo/register.ts";
import { FleetReceiver } from "../test/fleet-receiver.ts";
import { type ServerProcess, startServerProcess } from "../test/process.ts";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const PROXIES = Number(process.env.SOAK_PROXIES ?? 500);
const LOCAL_PROXIES = 3;
/** Each proxy pushes this often: 500 proxies → 100 pushes/s across the two servers. */
const PUSH_EVERY_MS = 5_000;
/** One proxy in this many swings between low and high load (and so scales); the rest hold steady. */
const SWINGING_EVERY = 5;
const SWING_PERIOD_MS = 60_000;
const LOAD_MS = MINUTES * 60_000;
/** A fault every sixth of the run (100 s in 10 minutes, 30 s in 3), at least every 20 s. */
const FAULT_EVERY_MS = Math.max(20_000, LOAD_MS / 6);
/** How long a killed server or a stopped PostgreSQL stays down. */
const DOWN_MS = 3_000;
const LEASE_SECONDS = 6;
const RECONCILE_SECONDS = 5;
const SETTLE_TIMEOUT_MS = 120_000;
const SECRET = `soak-${randomBytes(24).toString("hex")}`;
const MARKER_INSTANCE = "soak";

const started = Date.now();
const since = () => ((Date.now() - started) / 1000).toFixed(1);
const log = (message: string) => console.log(`[soak ${since()} s] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A JSON request over `agent`; a connection error is a status of 0 with the error's code. */
function request(
  agent: http.Agent | false,
  url: string,
  method: string,
  token: string | undefined,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    const req = http.request(url, { method, agent, headers, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", (error: NodeJS.ErrnoException) =>
        resolve({ status: 0, body: "", error: error.code ?? error.message }),
      );
    });
    let connected = false;
    req.on("socket", (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once("connect", () => (connected = true));
    });
    // Which phase timed out tells a front that never accepted from one that took the request and did not answer.
    req.on("timeout", () =>
      req.destroy(
        Object.assign(new Error("timeout"), {
          code: connected ? "TIMEOUT (no answer)" : "TIMEOUT (no connection)",
        }),
      ),
    );
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: 0, body: "", error: error.code ?? error.message }),
    );
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The servers

interface Slot {
  name: string;
  port: number;
  url: string;
  process: ServerProcess | undefined;
  /** Each process the slot ran, with its RSS samples (MB). */
  incarnations: Array<{ pid: number; startedAt: number; rss: Array<{ at: number; mb: number }> }>;
}

let cluster: PrivateCluster;
const slots: Slot[] = [];
// However the soak ends (a failed step, an unhandled rejection), no server it started outlives it; the private
// cluster has its own exit hook.
process.once("exit", () => {
  for (const slot of slots) {
    if (slot.process && slot.process.child.exitCode === null) slot.process.child.kill("SIGKILL");
  }
});

async function startSlot(slot: Slot): Promise<void> {
  slot.process = await startServerProcess({
    DATABASE_URL: cluster.url,
    PORT: String(slot.port),
    PROXYSCALE_JWT_SECRET: SECRET,
    PROXYSCALE_LEASE_SECONDS: String(LEASE_SECONDS),
    PROXYSCALE_RECONCILE_SECONDS: String(RECONCILE_SECONDS),
    // The lag sampling below reads /metrics without a token (loopback only).
    PROXYSCALE_METRICS_PUBLIC: "1",
    LOG_LEVEL: "warn",
  });
  slot.incarnations.push({ pid: slot.process.child.pid!, startedAt: Date.now(), rss: [] });
}

function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`starting: ${MINUTES} min of load, ${PROXIES} proxies, a fault every ${FAULT_EVERY_MS / 1000} s`);
  cluster = await startPrivateCluster({ settings: { max_connections: "200" } });
  const receiver = await new FleetReceiver("soak-receiver-secret-0123456789").start();
  const upstream: HelloUpstream = await startHelloUpstream({ latencyMs: 2, jitterMs: 3 });
  for (const name of ["A", "B"]) {
    const port = await freePort();
    slots.push({ name, port, url: `http://127.0.0.1:${port}`, process: undefined, incarnations: [] });
  }
  // One after the other: the first migrates the new database.
  for (const slot of slots) await startSlot(slot);
  log(`servers ${slots.map((slot) => `${slot.name} ${slot.url}`).join(", ")} on ${cluster.url}`);

  const operator = await signToken({ sub: "soak", role: "operator", tier: "enterprise", secret: SECRET });
  const admin = await signToken({ sub: "soak-admin", role: "admin", tier: "enterprise", secret: SECRET });
  const setupAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const answer = await request(setupAgent, `${slots[0]!.url}${path}`, method, token, body);
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.body}`);
    return JSON.parse(answer.body) as Record<string, unknown>;
  };

  // --- setup: webhook proxies (the receiver counts every scale call), local proxies with fixed front ports
  const fleet: string[] = [];
  let nextIndex = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (nextIndex < PROXIES) {
        const index = nextIndex++;
        const created = await api("POST", "/api/proxies", operator, {
          name: `soak-${index}`,
          actuator: receiver.actuator({ maxAttempts: 1 }),
        });
        const id = created.id as string;
        receiver.replicas.set(id, 1);
        await api("PATCH", `/api/proxies/${id}`, operator, {
          actuator: receiver.actuator({ statusOf: id, maxAttempts: 1 }),
        });
        await api("POST", `/api/proxy/scaling/policies/${id}`, admin, {
          minReplicas: 1,
          maxReplicas: 5,
          scaleUpCooldownSeconds: 10,
          scaleDownCooldownSeconds: 10,
          metricsMaxAgeSeconds: 30,
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0 },
            scaleDown: { stabilizationWindowSeconds: 0 },
          },
        });
        fleet[index] = id;
      }
    }),
  );
  const fronts: Array<{ id: string; port: number; url: string }> = [];
  for (let index = 0; index < LOCAL_PROXIES; index++) {
    const port = await freePort();
    const created = await api("POST", "/api/proxies", operator, {
      name: `soak-local-${index}`,
      actuator: {
        kind: "local",
        upstreamUrl: upstream.url,
        listenPort: port,
        drainTimeoutMs: 2_000,
        readyTimeoutMs: 20_000,
      },
    });
    const id = created.id as string;
    await api("POST", `/api/proxy/scaling/policies/${id}`, admin, { ...DEMO_POLICY, maxReplicas: 3 });
    fronts.push({ id, port, url: `http://127.0.0.1:${port}` });
  }
  for (const front of fronts) {
    const readyBy = Date.now() + 60_000;
    while ((await request(false, `${front.url}/ready`, "GET", undefined)).status !== 200) {
      if (Date.now() > readyBy) throw new Error(`the front of ${front.id} did not serve within 60 s`);
      await sleep(200);
    }
  }
  setupAgent.destroy();
  log(`registered ${fleet.length} webhook proxies and ${fronts.length} local ones`);

  // --- the run
  let running = true;
  // The soak's own event-loop delay and the machine's load: a starved soak or machine explains late answers.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  let maxLoad = 0;
  const loadTimer = setInterval(() => {
    maxLoad = Math.max(maxLoad, loadavg()[0]!);
  }, 5_000);
  const loadEndsAt = Date.now() + LOAD_MS;
  const faults: string[] = [];
  const pgRestarts: Array<{ stoppedAt: number; backAt: number; firstPushAfterMs?: number }> = [];

  // Pushes: each proxy every PUSH_EVERY_MS, to its server (index % 2), the other one if its server refuses the
  // connection. Each push plants a unique marker: (proxy, recordedAt) with instanceId "soak".
  const pushAgents = slots.map(() => new http.Agent({ keepAlive: true, maxSockets: 16 }));
  const accepted = new Set<string>();
  const unknown = new Set<string>();
  const pushStatuses = new Map<string, number>();
  const lastRecordedAt = new Map<string, number>();
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const loadOf = (index: number, now: number) => {
    if (index % SWINGING_EVERY !== 0) return 45 + (index % 10);
    const phase = ((now + index * 997) % SWING_PERIOD_MS) / SWING_PERIOD_MS;
    return phase < 0.5 ? 95 : 10;
  };
  const push = async (index: number) => {
    const id = fleet[index]!;
    for (let attempt = 0; attempt < 2; attempt++) {
      const slot = slots[(index + attempt) % 2]!;
      const recordedAt = Math.max(Date.now(), (lastRecordedAt.get(id) ?? 0) + 1);
      lastRecordedAt.set(id, recordedAt);
      const marker = `${id}|${recordedAt}`;
      const cpu = loadOf(index, recordedAt);
      const answer = await request(
        pushAgents[(index + attempt) % 2]!,
        `${slot.url}/api/proxy/scaling/metrics/${id}`,
        "POST",
        operator,
        {
          cpuPercent: cpu,
          memoryPercent: Math.min(100, cpu),
          requestRate: cpu * 10,
          avgLatencyMs: 20,
          errorRatePercent: 0,
          instanceId: MARKER_INSTANCE,
          recordedAt,
        },
      );
      count(pushStatuses, answer.status === 0 ? `error ${answer.error}` : String(answer.status));
      if (answer.status >= 200 && answer.status < 300) {
        accepted.add(marker);
        const restart = pgRestarts.at(-1);
        if (restart && restart.firstPushAfterMs === undefined && Date.now() > restart.backAt) {
          restart.firstPushAfterMs = Date.now() - restart.backAt;
        }
        return;
      }
      unknown.add(marker);
      // Only a refused connection (the server is down) goes to the other server, as a load balancer would.
      if (answer.error !== "ECONNREFUSED") return;
    }
  };
  const pushing = (async () => {
    const inFlight = new Set<Promise<void>>();
    const perTick = (PROXIES * 100) / PUSH_EVERY_MS;
    let carry = 0;
    let cursor = 0;
    while (running) {
      carry += perTick;
      for (; carry >= 1; carry -= 1) {
        const promise = push(cursor);
        inFlight.add(promise);
        void promise.finally(() => inFlight.delete(promise));
        cursor = (cursor + 1) % PROXIES;
      }
      await sleep(100);
    }
    await Promise.all(inFlight);
  })();

  // Client traffic through each local front, a fresh connection per request: 10–80 requests/s, swinging.
  const frontResults = {
    ok: 0,
    frontDown: 0,
    other: 0,
    otherKinds: new Map<string, number>(),
    /** Seconds into the run of each failure, to set beside the faults. */
    downAt: new Set<number>(),
    otherAt: new Set<number>(),
    /** Other failures per front (its index). */
    otherOf: [] as number[],
  };
  const traffic = fronts.map(async (front, index) => {
    const inFlight = new Set<Promise<void>>();
    while (running) {
      const phase = ((Date.now() + index * 20_000) % SWING_PERIOD_MS) / SWING_PERIOD_MS;
      const rate = 10 + 70 * Math.abs(Math.sin(Math.PI * phase));
      const promise = request(false, `${front.url}/soak`, "GET", undefined, undefined, 5_000).then(
        (answer) => {
          if (answer.status === 200) frontResults.ok += 1;
          else if (answer.error === "ECONNREFUSED" || answer.error === "ECONNRESET") {
            frontResults.frontDown += 1;
            frontResults.downAt.add(Math.floor((Date.now() - started) / 1000));
          } else {
            frontResults.other += 1;
            frontResults.otherOf[index] = (frontResults.otherOf[index] ?? 0) + 1;
            frontResults.otherAt.add(Math.floor((Date.now() - started) / 1000));
            count(frontResults.otherKinds, answer.error ?? `HTTP ${answer.status} ${answer.body.trim()}`);
          }
        },
      );
      inFlight.add(promise);
      void promise.finally(() => inFlight.delete(promise));
      await sleep(1000 / rate);
    }
    await Promise.all(inFlight);
  });

  // Policy edits and manual scales, to a server that is up.
  const editStatuses = new Map<string, number>();
  const scaleStatuses = new Map<string, number>();
  const editing = (async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    for (let tick = 0; running; tick++) {
      const slot = slots[tick % 2]!;
      const index = Math.floor(Math.random() * PROXIES);
      const id = fleet[index]!;
      if (tick % 2 === 0) {
        const answer = await request(agent, `${slot.url}/api/proxy/scaling/policies/${id}`, "POST", admin, {
          minReplicas: 1,
          maxReplicas: 4 + (tick % 3),
          scaleUpCooldownSeconds: 10 + (tick % 5),
          scaleDownCooldownSeconds: 10,
          metricsMaxAgeSeconds: 30,
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0 },
            scaleDown: { stabilizationWindowSeconds: 0 },
          },
        });
        count(editStatuses, answer.status === 0 ? `error ${answer.error}` : String(answer.status));
      } else {
        const answer = await request(agent, `${slot.url}/api/proxy/scaling/execute/${id}`, "POST", operator, {
          newReplicaCount: 1 + Math.floor(Math.random() * 4),
          reason: "soak: manual scale",
        });
        count(scaleStatuses, answer.status === 0 ? `error ${answer.error}` : String(answer.status));
      }
      await sleep(1_500);
    }
    agent.destroy();
  })();

  // Memory: every server's RSS every 2 s; every 4 s, the servers' own event-loop lag from /metrics (prom-client's
  // default metrics): a server starved of CPU answers its pushes and serves its fronts late.
  const serverLag: Array<{ second: number; slot: string; p99: number; max: number }> = [];
  const lagAgent = new http.Agent({ keepAlive: false });
  const sampling = (async () => {
    for (let round = 0; running; round++) {
      if (round % 2 === 0) {
        for (const slot of slots) {
          const answer = await request(lagAgent, `${slot.url}/metrics`, "GET", undefined, undefined, 2_000);
          const value = (name: string) =>
            Number(
              new RegExp(`^proxyscale_process_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, "m").exec(
                answer.body,
              )?.[1],
            );
          if (answer.status === 200 && Number.isFinite(value("p99"))) {
            serverLag.push({
              second: Math.floor((Date.now() - started) / 1000),
              slot: slot.name,
              p99: value("p99") * 1000,
              max: value("max") * 1000,
            });
          }
        }
      }
      for (const slot of slots) {
        const incarnation = slot.incarnations.at(-1);
        if (!incarnation || !slot.process || slot.process.child.exitCode !== null) continue;
        const mb = rssMb(incarnation.pid);
        if (mb !== undefined) incarnation.rss.push({ at: Date.now(), mb });
      }
      await sleep(2_000);
    }
  })();

  // Faults: SIGKILL server A, restart PostgreSQL, SIGKILL server B, restart PostgreSQL, …
  const chaos = (async () => {
    const actions = ["kill A", "restart PostgreSQL", "kill B", "restart PostgreSQL"];
    for (let round = 0; ; round++) {
      await sleep(FAULT_EVERY_MS);
      if (!running || Date.now() + FAULT_EVERY_MS / 2 > loadEndsAt) return;
      const action = actions[round % actions.length]!;
      const at = since();
      log(action);
      if (action.startsWith("kill")) {
        const slot = slots.find((candidate) => candidate.name === action.slice(-1))!;
        const from = Date.now();
        slot.process!.child.kill("SIGKILL");
        await slot.process!.exited;
        await slot.process!.dispose();
        await sleep(DOWN_MS);
        await startSlot(slot);
        faults.push(`${at} s: SIGKILL server ${slot.name}, restarted after ${(Date.now() - from) / 1000} s`);
      } else {
        const stoppedAt = Date.now();
        await cluster.stop("fast");
        await sleep(DOWN_MS);
        await cluster.start();
        pgRestarts.push({ stoppedAt, backAt: Date.now() });
        faults.push(
          `${at} s: PostgreSQL stopped (fast) and started after ${(Date.now() - stoppedAt) / 1000} s`,
        );
      }
    }
  })();

  while (Date.now() < loadEndsAt) await sleep(1_000);
  running = false;
  clearInterval(loadTimer);
  loopDelay.disable();
  log("load over: waiting for the pushers, the fronts' clients, the edits and the last fault");
  await Promise.all([pushing, ...traffic, editing, sampling, chaos]);
  for (const agent of pushAgents) agent.destroy();

  // --- settle: every event terminal and every webhook proxy's count what the receiver runs
  const sql = postgres(cluster.url, { max: 2, onnotice: () => {} });
  const active = async () =>
    Number(
      (
        await sql`select count(*)::int as n from proxy_scaling_events where status in ('pending', 'in_progress')`
      )[0]!.n,
    );
  const mismatches = async () => {
    const rows = await sql<Array<{ id: string; current_replicas: number }>>`
      select id, current_replicas from proxies where id in ${sql(fleet)}`;
    return rows.filter((row) => receiver.replicas.get(row.id) !== row.current_replicas);
  };
  const settleStarted = Date.now();
  let settled = false;
  let lastActive = -1;
  let lastMismatches: Array<{ id: string; current_replicas: number }> = [];
  while (Date.now() - settleStarted < SETTLE_TIMEOUT_MS) {
    lastActive = await active();
    lastMismatches = await mismatches();
    if (lastActive === 0 && lastMismatches.length === 0) {
      settled = true;
      break;
    }
    await sleep(1_000);
  }
  log(`settled: ${settled} after ${(Date.now() - settleStarted) / 1000} s`);

  // --- checks
  const rows = await sql<Array<{ proxy_id: string; ms: string; n: number }>>`
    select proxy_id, round(extract(epoch from recorded_at) * 1000)::bigint::text as ms, count(*)::int as n
      from proxy_load_metrics where instance_id = ${MARKER_INSTANCE} group by 1, 2`;
  const stored = new Map(rows.map((row) => [`${row.proxy_id}|${row.ms}`, row.n]));
  let lost = 0;
  let duplicated = 0;
  for (const marker of accepted) {
    const n = stored.get(marker) ?? 0;
    if (n === 0) lost += 1;
    if (n > 1) duplicated += 1;
  }
  const duplicatedAny = rows.filter((row) => row.n > 1).length;
  const storedUnanswered = [...unknown].filter((marker) => stored.has(marker)).length;
  const events = await sql<Array<{ status: string; n: number }>>`
    select status, count(*)::int as n from proxy_scaling_events group by 1 order by 1`;
  const failedEvents = await sql<Array<{ error: string | null; n: number }>>`
    select error, count(*)::int as n from proxy_scaling_events where status = 'failed' group by 1 order by 2 desc`;
  const webhookEvents = await sql<Array<{ id: string; status: string }>>`
    select id, status from proxy_scaling_events where proxy_id in ${sql(fleet)}`;
  const callsPerEvent = new Map<string, number>();
  for (const call of receiver.calls) count(callsPerEvent, call.eventId);
  const executedTwice = [...callsPerEvent.values()].filter((n) => n > 1).length;
  const completedWithoutCall = webhookEvents.filter(
    (event) => event.status === "completed" && !callsPerEvent.has(event.id),
  ).length;
  const callsWithoutEvent = [...callsPerEvent.keys()].filter(
    (eventId) => !webhookEvents.some((event) => event.id === eventId),
  ).length;
  await sql.end({ timeout: 1 });

  const memory = slots.map((slot) => {
    const longest = [...slot.incarnations].sort((a, b) => b.rss.length - a.rss.length)[0];
    const samples = longest?.rss.map((sample) => sample.mb) ?? [];
    const third = Math.floor(samples.length / 3);
    const mean = (values: number[]) =>
      values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
    const first = mean(samples.slice(0, third));
    const last = mean(samples.slice(samples.length - third));
    return {
      slot: slot.name,
      samples: samples.length,
      firstMb: Math.round(first),
      lastMb: Math.round(last),
      // Generous: a warm-up's growth is not a leak; a leak over minutes would pass both bounds.
      flat: third < 3 || last <= first * 1.5 + 50,
      minutes: longest ? ((longest.rss.at(-1)?.at ?? 0) - longest.startedAt) / 60_000 : 0,
    };
  });

  const checks = [
    {
      name: "every accepted push stored exactly once",
      ok: lost === 0 && duplicated === 0 && duplicatedAny === 0,
      detail: `${accepted.size} accepted, ${lost} missing, ${duplicated} stored twice (${duplicatedAny} duplicated markers of any push)`,
    },
    {
      name: "every event reached a terminal state",
      ok: lastActive === 0,
      detail: `${lastActive} pending or in progress at the end; ${events.map((row) => `${row.n} ${row.status}`).join(", ")}`,
    },
    {
      name: "no event executed twice",
      ok: executedTwice === 0 && callsWithoutEvent === 0,
      detail: `${receiver.calls.length} actuator calls for ${callsPerEvent.size} events, ${executedTwice} called more than once, ${callsWithoutEvent} calls for no stored event; ${completedWithoutCall} completed without a call (recovered by observation)`,
    },
    {
      name: "replicas match what the actuators report",
      ok: lastMismatches.length === 0,
      detail: `${fleet.length - lastMismatches.length} of ${fleet.length} webhook proxies agree with the receiver${
        lastMismatches.length
          ? `; e.g. ${lastMismatches
              .slice(0, 3)
              .map(
                (row) =>
                  `${row.id}: stored ${row.current_replicas}, receiver ${receiver.replicas.get(row.id)}`,
              )
              .join("; ")}`
          : ""
      }`,
    },
    {
      name: "front requests failed only while a front was down",
      ok: frontResults.other === 0,
      detail: `${frontResults.ok} answered, ${frontResults.frontDown} refused or reset (front down), ${frontResults.other} other failures${frontResults.other ? ` (${[...frontResults.otherKinds].map(([kind, n]) => `${n} ${kind}`).join(", ")}; by front: ${fronts.map((_, index) => frontResults.otherOf[index] ?? 0).join(", ")})` : ""}`,
    },
    {
      name: "server memory stayed flat",
      ok: memory.every((entry) => entry.flat),
      detail: memory
        .map(
          (entry) =>
            `${entry.slot}: ${entry.firstMb} → ${entry.lastMb} MB RSS (first vs last third of ${entry.samples} samples over ${entry.minutes.toFixed(1)} min)`,
        )
        .join("; "),
    },
  ];

  const lines = [
    `Soak: ${MINUTES} min of load, ${PROXIES} webhook proxies pushing every ${PUSH_EVERY_MS / 1000} s and ${LOCAL_PROXIES} local proxies behind their fronts, two servers on one private PostgreSQL cluster (lease ${LEASE_SECONDS} s, reconcile ${RECONCILE_SECONDS} s). Run ${new Date(started).toISOString()}.`,
    "",
    "Faults:",
    ...faults.map((fault) => `- ${fault}`),
    "",
    `Pushes: ${[...pushStatuses].map(([status, n]) => `${n} × ${status}`).join(", ")}; ${storedUnanswered} of ${unknown.size} not accepted were stored anyway (answered 503 or cut off after the commit).`,
    `PostgreSQL restarts: first push answered 2xx ${pgRestarts.map((restart) => (restart.firstPushAfterMs === undefined ? "never" : `${restart.firstPushAfterMs} ms`)).join(", ")} after it was back.`,
    `Policy edits: ${[...editStatuses].map(([status, n]) => `${n} × ${status}`).join(", ")}. Manual scales: ${[...scaleStatuses].map(([status, n]) => `${n} × ${status}`).join(", ")}.`,
    `Servers' event-loop lag (their /metrics, every 4 s): p99 above 1 s in ${serverLag.filter((lag) => lag.p99 > 1_000).length} of ${serverLag.length} samples, at seconds ${
      serverLag
        .filter((lag) => lag.p99 > 1_000)
        .map((lag) => `${lag.second} (${lag.slot} ${(lag.p99 / 1000).toFixed(1)} s)`)
        .join(", ") || "none"
    }; the highest max ${(Math.max(0, ...serverLag.map((lag) => lag.max)) / 1000).toFixed(1)} s.`,
    `Machine: 1-minute load average up to ${maxLoad.toFixed(1)} (2 cores); the soak's event-loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms.`,
    `Failed events: ${failedEvents.map((row) => `${row.n} × ${row.error}`).join("; ") || "none"}.`,
    `Settled (every event terminal, every count agreed) ${settled ? `${((Date.now() - settleStarted) / 1000).toFixed(0)} s after the load` : "NOT within the timeout"}.`,
    "",
    "| check | result | figures |",
    "| --- | --- | --- |",
    ...checks.map((check) => `| ${check.name} | ${check.ok ? "pass" : "FAIL"} | ${check.detail} |`),
  ];
  const seconds = (set: Set<number>) => {
    const sorted = [...set].sort((a, b) => a - b);
    const ranges: string[] = [];
    for (let index = 0; index < sorted.length; index++) {
      const from = sorted[index]!;
      while (index + 1 < sorted.length && sorted[index + 1]! - sorted[index]! <= 1) index++;
      ranges.push(from === sorted[index] ? `${from}` : `${from}–${sorted[index]}`);
    }
    return ranges.join(", ") || "none";
  };
  lines.splice(
    lines.indexOf("") + 1 + faults.length + 1,
    0,
    "",
    `Front failures, seconds into the run: down (refused or reset) ${seconds(frontResults.downAt)}; other ${seconds(frontResults.otherAt)}.`,
  );
  const report = lines.join("\n");
  console.log(`\n${report}\n`);
  if (process.env.SOAK_REPORT) writeFileSync(process.env.SOAK_REPORT, `${report}\n`);

  for (const slot of slots) await slot.process?.dispose();
  await receiver.close();
  await upstream.close();
  await cluster.dispose();
  process.exit(checks.every((check) => check.ok) ? 0 : 1);
}

main().catch(async (error: unknown) => {
  console.error("soak failed:", error);
  for (const slot of slots) await slot.process?.dispose().catch(() => {});
  await cluster?.dispose().catch(() => {});
  process.exit(1);
});
