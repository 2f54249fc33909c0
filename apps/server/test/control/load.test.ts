import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, listAudit, listScalingEvents, MEMORY_DATA_DIR, openDatabase } from "@proxyscale/db";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { LocalActuator } from "../../src/actuators/local/actuator.ts";
import { type HelloUpstream, startHelloUpstream } from "../../src/actuators/local/upstream.ts";
import { DEMO_FILE_NAME, DEMO_PROXY_NAME, startDemo } from "../../src/demo/register.ts";
import { TrafficGenerator } from "../../src/demo/traffic.ts";
import { createLogger } from "../../src/logger.ts";
import { isAlive } from "../actuators/processes.ts";
import { type Client, client, TEST_SECRET, token, unique } from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/**
 * The real scenario: a `local` proxy (worker processes forwarding to a real upstream, reporting their own
 * metrics), real HTTP load through its front, and the control loop scaling it out and back in.
 */
let database: Database;
let node: ControlNode;
let upstream: HelloUpstream;
let admin: Client;

beforeAll(async () => {
  database = await openDatabase({ dataDir: "memory://" });
  upstream = await startHelloUpstream({ latencyMs: 5, jitterMs: 5 });
  node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 1_000 });
  admin = client(node.url, await token({ role: "admin", sub: "load-admin" }));
});

afterAll(async () => {
  await node?.close();
  await upstream?.close();
  await database?.close();
});

async function localProxy(policy: Record<string, unknown>, actuator: Record<string, unknown> = {}) {
  const created = await admin.request("POST", "/api/proxies", {
    body: {
      name: unique("local"),
      actuator: {
        kind: "local",
        upstreamUrl: upstream.url,
        readyTimeoutMs: 30_000,
        drainTimeoutMs: 5_000,
        reporting: { enabled: true, intervalMs: 500 },
        ...actuator,
      },
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const proxyId = created.body.id as string;
  const stored = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, { body: policy });
  expect(stored.status, JSON.stringify(stored.body)).toBeLessThan(300);
  const actuator_ = (await node.control.ensureActuator(proxyId)) as LocalActuator;
  return { proxyId, actuator: actuator_ };
}

/** How long a wait for worker processes and the control loop may take on a loaded machine. */
const WAIT = { timeout: 20_000 };

const replicasOf = async (proxyId: string) =>
  (await admin.request("GET", `/api/proxies/${proxyId}`)).body as {
    currentReplicas: number;
    health: string;
    unhealthyReplicas: number;
  };

describe("the real load scenario (local actuator, real processes, real HTTP load)", () => {
  it("scales out above min under load and back to min afterwards, within cooldowns, and no request fails while replicas drain", async () => {
    const policy = {
      strategy: "threshold",
      minReplicas: 1,
      maxReplicas: 3,
      targetRequestRate: 40,
      scaleUpThreshold: 15,
      scaleDownThreshold: 6,
      scaleUpCooldownSeconds: 3,
      scaleDownCooldownSeconds: 4,
      metricsMaxAgeSeconds: 3,
      behavior: { scaleUp: { stabilizationWindowSeconds: 0 }, scaleDown: { stabilizationWindowSeconds: 2 } },
    };
    const { proxyId, actuator } = await localProxy(policy);
    expect((await replicasOf(proxyId)).currentReplicas).toBe(1);
    let servedBeforeScaleIn = 0;
    const traffic = new TrafficGenerator({ url: actuator.url, maxInFlight: 64 }).start();
    try {
      traffic.setRate(120);
      const peak = await vi.waitFor(
        async () => {
          const { currentReplicas } = await replicasOf(proxyId);
          expect(currentReplicas, "scale-out to 3 replicas under load").toBeGreaterThanOrEqual(3);
          return currentReplicas;
        },
        { timeout: 30_000 },
      );
      expect(peak).toBe(3);
      servedBeforeScaleIn = traffic.snapshot().ok;

      // Light load keeps flowing while the replicas drain: none of it may fail.
      traffic.setRate(8);
      await expect.poll(async () => (await replicasOf(proxyId)).currentReplicas, { timeout: 40_000 }).toBe(1);
      // And after it: a few more requests answered (by the one replica left), none of which may fail either.
      const answeredAtScaleIn = traffic.snapshot();
      await expect
        .poll(() => {
          const now = traffic.snapshot();
          return now.ok + now.failed - (answeredAtScaleIn.ok + answeredAtScaleIn.failed);
        }, WAIT)
        .toBeGreaterThanOrEqual(4);
    } finally {
      await traffic.stop();
    }

    const totals = traffic.snapshot();
    expect(totals.failures).toEqual({});
    expect(totals.failed).toBe(0);
    // Requests were served under load, and kept being served (none failing) while replicas drained.
    expect(servedBeforeScaleIn).toBeGreaterThan(0);
    expect(totals.ok).toBeGreaterThan(servedBeforeScaleIn);
    expect(totals.instances.size).toBeGreaterThanOrEqual(3);

    const events = (await listScalingEvents(database.db, { proxyId, limit: 100 })).items.reverse();
    expect(events.every((event) => event.status === "completed" && event.triggeredBy === "auto")).toBe(true);
    const ups = events.filter((event) => event.eventType === "scale_up");
    const downs = events.filter((event) => event.eventType === "scale_down");
    expect(ups.length).toBeGreaterThanOrEqual(2);
    expect(downs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < events.length; i++) {
      const gapMs = events[i]!.createdAt.getTime() - events[i - 1]!.createdAt.getTime();
      const cooldownMs =
        (events[i]!.eventType === "scale_up"
          ? policy.scaleUpCooldownSeconds
          : policy.scaleDownCooldownSeconds) * 1000;
      expect(
        gapMs,
        `event ${i} (${events[i]!.eventType}) came ${gapMs} ms after the previous one`,
      ).toBeGreaterThanOrEqual(cooldownMs);
    }
    expect(actuator.replicasInfo()).toHaveLength(1);
    expect((await replicasOf(proxyId)).currentReplicas).toBe(1);
  });

  it("reports a crashed replica unhealthy and healthy again once replaced; stops the workers of a deleted proxy", async () => {
    const { proxyId, actuator } = await localProxy(
      { mode: "off", minReplicas: 1, maxReplicas: 3 },
      { reporting: { enabled: false }, restartDelayMs: 500 },
    );
    const scaled = await admin.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
      body: { newReplicaCount: 2 },
    });
    expect(scaled.status).toBe(202);
    await expect.poll(async () => (await replicasOf(proxyId)).currentReplicas, WAIT).toBe(2);
    await expect
      .poll(() => actuator.replicasInfo().map((replica) => replica.state), WAIT)
      .toEqual(["ready", "ready"]);

    const victim = actuator.replicasInfo()[0]!;
    process.kill(victim.pid!, "SIGKILL");
    const degraded = await vi.waitFor(async () => {
      const row = await replicasOf(proxyId);
      expect(row.health).not.toBe("healthy");
      return row;
    }, WAIT);
    expect(degraded).toMatchObject({ health: "degraded", unhealthyReplicas: 1, currentReplicas: 2 });
    const healed = await vi.waitFor(async () => {
      const row = await replicasOf(proxyId);
      expect(row.health).toBe("healthy");
      return row;
    }, WAIT);
    expect(healed).toMatchObject({ unhealthyReplicas: 0, currentReplicas: 2 });
    expect(actuator.replicasInfo().map((replica) => replica.pid)).not.toContain(victim.pid);

    // Deleted: the next reconcile closes its actuator, whose workers drain and exit.
    const pids = actuator.replicasInfo().map((replica) => replica.pid!);
    expect((await admin.request("DELETE", `/api/proxies/${proxyId}`)).status).toBeLessThan(300);
    await node.control.reconcile();
    await expect
      .poll(() => pids.filter(isAlive), { ...WAIT, message: "the deleted proxy's workers exit" })
      .toEqual([]);
    expect(node.control.registry.has(proxyId)).toBe(false);
  });

  it("writes no demo.json when the data directory is in memory", async () => {
    const cwd = process.cwd();
    const scratch = mkdtempSync(join(tmpdir(), "proxyscale-demo-cwd-"));
    process.chdir(scratch);
    try {
      const demo = await startDemo({
        database,
        control: node.control,
        logger: createLogger("silent"),
        serverUrl: node.url,
        port: 0,
        dataDir: MEMORY_DATA_DIR,
      });
      await demo.close();
      await node.control.registry.close(demo.info.proxyId);
      expect((await admin.request("DELETE", `/api/proxies/${demo.info.proxyId}`)).status).toBeLessThan(300);
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      process.chdir(cwd);
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("registers demo-edge once, reuses it on restart, and serves the upstream through its front", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-demo-"));
    try {
      const options = {
        database,
        control: node.control,
        logger: createLogger("silent"),
        serverUrl: node.url,
        port: 0,
        dataDir,
      };
      const first = await startDemo(options);
      await first.close();
      const second = await startDemo(options);
      try {
        expect(second.info.proxyId).toBe(first.info.proxyId);
        expect(JSON.parse(readFileSync(join(dataDir, DEMO_FILE_NAME), "utf8"))).toEqual(second.info);
        const response = await fetch(second.info.frontUrl);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ hello: "from the ProxyScale demo upstream" });
        const row = (await admin.request("GET", `/api/proxies/${second.info.proxyId}`)).body;
        expect(row).toMatchObject({ name: DEMO_PROXY_NAME, ownerId: "admin", currentReplicas: 1 });
        expect(row.actuator).toMatchObject({ kind: "local", upstreamUrl: second.info.upstreamUrl });
        const policy = (await admin.request("GET", `/api/proxy/scaling/policies/${second.info.proxyId}`))
          .body;
        expect(JSON.stringify(policy)).toContain('"targetRequestRate":50');
        const audit = await listAudit(database.db, { entityId: second.info.proxyId });
        // The second start moved the upstream to a new free port: one update, never a second create.
        expect(audit.items.map((entry) => entry.action).sort()).toEqual([
          "policy.create",
          "proxy.create",
          "proxy.update",
        ]);
      } finally {
        await second.close();
        await node.control.registry.close(second.info.proxyId);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
