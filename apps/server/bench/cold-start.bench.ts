import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { signToken } from "@proxyscale/api";
import type { LocalActuator } from "../src/actuators/local/actuator.ts";
import { findProgram } from "../src/actuators/local/template-replica.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/start.ts";
import { type Client, client } from "../test/support.ts";

/**
 * Cold start at the local front (scale to zero): a `local` proxy with minReplicas 0 is taken to 0 (a manual scale),
 * then BURST requests arrive at once; the front holds them, the control loop scales from 0 on the activation, and
 * the first replica serves them. Measured over CYCLES cycles per replica kind (Node workers, HAProxy): the first
 * request's wait (cold start), and every non-200 answer (requests lost: 0 expected, the burst is within the
 * queue's bounds). Baseline, in the same cycle: the same request against the warm fleet right after.
 * Server, control loop, upstream and clients share one process (one clock), on the in-memory database.
 */

const CYCLES = Number(process.env.BENCH_CYCLES ?? 20);
const BURST = Number(process.env.BENCH_BURST ?? 10);
const SECRET = "cold-start-bench-secret-0123456789abcdef";

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

async function timed(url: string): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  return { ms: performance.now() - started, status: response.status };
}

async function measure(
  admin: Client,
  control: { ensureActuator(id: string): Promise<unknown> },
  upstreamUrl: string,
  replica: Record<string, unknown>,
) {
  const created = await admin.request("POST", "/api/proxies", {
    body: {
      name: `cold-start-${String(replica.template)}`,
      actuator: { kind: "local", upstreamUrl, replica, reporting: { enabled: false } },
    },
  });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  const id = created.body.id as string;
  // No cooldowns, a grace period longer than a cycle: only the manual scale takes the fleet to 0.
  const policy = await admin.request("POST", `/api/proxy/scaling/policies/${id}`, {
    body: { minReplicas: 0, maxReplicas: 2, scaleUpCooldownSeconds: 0, scaleToZeroGracePeriodSeconds: 600 },
  });
  if (policy.status >= 300) throw new Error(JSON.stringify(policy.body));
  const actuator = (await control.ensureActuator(id)) as LocalActuator;
  const cold: number[] = [];
  const warm: number[] = [];
  let sent = 0;
  let lost = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const scaled = await admin.request("POST", `/api/proxy/scaling/execute/${id}`, {
      body: { newReplicaCount: 0, reason: "bench: to zero" },
    });
    if (scaled.status !== 202) throw new Error(JSON.stringify(scaled.body));
    await until(async () => (await actuator.getReplicas()).replicas === 0, "the fleet at 0");
    await until(async () => {
      const events = await admin.request("GET", `/api/proxy/scaling/events/${id}?limit=1`);
      return (events.body.items as Array<{ status: string }>)[0]?.status === "completed";
    }, "the scale to 0 to complete");
    const burst = await Promise.all(Array.from({ length: BURST }, () => timed(`${actuator.url}/cold`)));
    sent += burst.length;
    lost += burst.filter((answer) => answer.status !== 200).length;
    cold.push(burst[0]!.ms);
    const baseline = await timed(`${actuator.url}/warm`);
    sent += 1;
    if (baseline.status !== 200) lost += 1;
    warm.push(baseline.ms);
  }
  cold.sort((a, b) => a - b);
  warm.sort((a, b) => a - b);
  return {
    replica: String(replica.template),
    cycles: CYCLES,
    burst: BURST,
    coldP50Ms: Number(quantile(cold, 0.5).toFixed(1)),
    coldP99Ms: Number(quantile(cold, 0.99).toFixed(1)),
    warmP50Ms: Number(quantile(warm, 0.5).toFixed(2)),
    coldOverWarmP50: Number((quantile(cold, 0.5) / quantile(warm, 0.5)).toFixed(0)),
    requests: sent,
    lost,
  };
}

async function main() {
  const upstream = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const running = await startServer(
    loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      PROXYSCALE_DATA_DIR: "memory://",
      PROXYSCALE_JWT_SECRET: SECRET,
      PROXYSCALE_DEMO: "0",
      // The front's activation, not a reconcile, brings the fleet up.
      PROXYSCALE_RECONCILE_SECONDS: "600",
      LOG_LEVEL: "silent",
    }),
  );
  const admin = client(
    running.url,
    await signToken({ sub: "bench-admin", role: "admin", tier: "enterprise", secret: SECRET }),
  );
  const kinds: Array<Record<string, unknown>> = [{ template: "worker" }];
  if (findProgram("haproxy")) kinds.push({ template: "haproxy" });
  else console.warn("skipping haproxy: not installed");
  try {
    for (const replica of kinds) {
      console.log(JSON.stringify(await measure(admin, running.control, upstreamUrl, replica)));
    }
  } finally {
    await running.close();
    upstream.close();
  }
}

await main();
