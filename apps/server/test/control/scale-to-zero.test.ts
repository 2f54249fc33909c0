/**
 * Scale to zero through the real path: the server's control loop, a `local` proxy of Node workers that push their
 * metrics, its front holding requests while the fleet is at 0, and real HTTP clients counting every answer.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalActuator } from "../../src/actuators/local/actuator.ts";
import type { RunningServer } from "../../src/start.ts";
import { startInMemoryServer } from "../running-server.ts";
import { type Client, client, token, unique } from "../support.ts";

const WAIT = { timeout: 60_000, interval: 100 };
/** Bounds for the tests that expect every held request served: far past a cold start on a loaded CI machine. */
const QUEUE = { maxRequests: 8, timeoutMs: 30_000 };
/** Bounds for the test that waits for held requests to time out: short, so it does not wait long. */
const SHORT_QUEUE = { maxRequests: 8, timeoutMs: 1_500 };

/** A fleet that goes to 0 after 2 s without requests and comes back for any request. */
const ZEROABLE_POLICY = {
  strategy: "targetTracking",
  targetRequestRate: 1_000,
  targetCpuPercent: 100,
  targetMemoryPercent: 100,
  minReplicas: 0,
  maxReplicas: 2,
  scaleUpCooldownSeconds: 0,
  scaleDownCooldownSeconds: 0,
  metricsMaxAgeSeconds: 5,
  scaleToZeroGracePeriodSeconds: 2,
  behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
};

async function answer(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe("scale to zero with requests held at the front", () => {
  let running: RunningServer;
  let admin: Client;
  let upstream: Server;
  let upstreamUrl: string;
  let served = 0;
  const releaseSlow: Array<() => void> = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      served += 1;
      // /slow answers when the test lets it: a request in flight while the fleet drains to 0.
      if (req.url === "/slow") releaseSlow.push(() => res.end("slow"));
      else res.end("ok");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    running = await startInMemoryServer({
      // Pushes drive the way down; only the front's activation can bring a fleet at 0 (no pushes) back in time.
      PROXYSCALE_RECONCILE_SECONDS: "600",
    });
    admin = client(running.url, await token({ sub: "zero-admin", role: "admin" }));
  });

  afterAll(async () => {
    await running?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  async function localProxy(
    policy: Record<string, unknown>,
    coldStartQueue = QUEUE,
  ): Promise<{ id: string; front: string }> {
    const created = await admin.request("POST", "/api/proxies", {
      body: {
        name: unique("zero"),
        actuator: { kind: "local", upstreamUrl, reporting: { intervalMs: 200 }, coldStartQueue },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    const stored = await admin.request("POST", `/api/proxy/scaling/policies/${id}`, { body: policy });
    expect(stored.status, JSON.stringify(stored.body)).toBeLessThan(300);
    const actuator = (await running.control.ensureActuator(id)) as LocalActuator;
    return { id, front: actuator.url };
  }

  const replicasOf = async (id: string) =>
    (await admin.request("GET", `/api/proxies/${id}`)).body.currentReplicas as number;

  interface EventView {
    previousReplicas: number;
    newReplicas: number;
    triggeredBy: string;
    status: string;
    reason: string;
  }
  /** The proxy's completed scaling events, oldest first. */
  const completedEvents = async (id: string) => {
    const events = await admin.request("GET", `/api/proxy/scaling/events/${id}?limit=50`);
    return (events.body.items as EventView[]).filter((event) => event.status === "completed").reverse();
  };
  /** Waits until `count` scales to 0 have completed (the row shows 0 as soon as the last replica drains). */
  const scaledToZero = (id: string, count: number) =>
    expect
      .poll(async () => (await completedEvents(id)).filter((event) => event.newReplicas === 0).length, WAIT)
      .toBe(count);

  it("refuses minReplicas 0 on actuator none, and moving such a proxy to none, with a 400 naming the field", async () => {
    const created = await admin.request("POST", "/api/proxies", { body: { name: unique("none") } });
    const refused = await admin.request("POST", `/api/proxy/scaling/policies/${created.body.id}`, {
      body: ZEROABLE_POLICY,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.zodIssues).toContainEqual(
      expect.objectContaining({ field: "minReplicas", message: expect.stringContaining("actuator none") }),
    );

    const { id } = await localProxy({ ...ZEROABLE_POLICY, mode: "off" });
    const moved = await admin.request("PATCH", `/api/proxies/${id}`, {
      body: { actuator: { kind: "none" } },
    });
    expect(moved.status).toBe(400);
    expect(moved.body.zodIssues).toContainEqual(
      expect.objectContaining({ field: "actuator.kind", message: expect.stringContaining("minReplicas 0") }),
    );
  });

  it("goes idle → 0, serves a burst held at 0 from the first replica, and goes back to 0 after the grace period", async () => {
    const { id, front } = await localProxy(ZEROABLE_POLICY);
    expect(await replicasOf(id)).toBe(1);
    await scaledToZero(id, 1);
    expect(await replicasOf(id)).toBe(0);

    const before = served;
    const burst = await Promise.all(
      Array.from({ length: QUEUE.maxRequests }, () => answer(`${front}/hello`)),
    );
    expect(burst.filter((reply) => reply.status === 200)).toHaveLength(QUEUE.maxRequests);
    expect(served - before).toBe(QUEUE.maxRequests);
    expect(await replicasOf(id)).toBeGreaterThanOrEqual(1);

    await scaledToZero(id, 2);
    const events = await completedEvents(id);
    expect(
      events.map(({ previousReplicas, newReplicas, triggeredBy }) => ({
        previousReplicas,
        newReplicas,
        triggeredBy,
      })),
    ).toEqual([
      { previousReplicas: 1, newReplicas: 0, triggeredBy: "auto" },
      { previousReplicas: 0, newReplicas: 1, triggeredBy: "activation" },
      { previousReplicas: 1, newReplicas: 0, triggeredBy: "auto" },
    ]);
    expect(events[1]!.reason).toContain(`activation: `);
    for (const event of [events[0]!, events[2]!])
      expect(event.reason).toContain("scale-to-zero grace 2s): to 0");
  }, 120_000);

  it("serves a burst that arrives while the last replica drains to 0: the activation waits for that scale, then runs", async () => {
    // A grace period longer than the test: only the manual scale takes the fleet to 0.
    const { id, front } = await localProxy({ ...ZEROABLE_POLICY, scaleToZeroGracePeriodSeconds: 600 });
    const actuator = (await running.control.ensureActuator(id)) as LocalActuator;
    const slow = answer(`${front}/slow`);
    await expect.poll(() => releaseSlow.length, WAIT).toBe(1);
    const scaled = await admin.request("POST", `/api/proxy/scaling/execute/${id}`, {
      body: { newReplicaCount: 0, reason: "drain under a slow request" },
    });
    expect(scaled.status, JSON.stringify(scaled.body)).toBe(202);
    // The replica is out of the rotation, draining its slow request: new requests are held.
    await expect.poll(async () => (await actuator.getReplicas()).replicas, WAIT).toBe(0);
    const burst = Array.from({ length: 4 }, () => answer(`${front}/during-drain`));
    await expect.poll(() => actuator.frontStats().held, WAIT).toBe(4);
    releaseSlow.shift()!();
    expect(await slow).toEqual({ status: 200, body: "slow" });
    expect((await Promise.all(burst)).map((reply) => reply.status)).toEqual([200, 200, 200, 200]);
    const events = (await completedEvents(id)).map(({ previousReplicas, newReplicas, triggeredBy }) => ({
      previousReplicas,
      newReplicas,
      triggeredBy,
    }));
    expect(events).toEqual([
      // The manual scale, triggered by the caller's role.
      { previousReplicas: 1, newReplicas: 0, triggeredBy: "admin" },
      { previousReplicas: 0, newReplicas: 1, triggeredBy: "activation" },
    ]);
  }, 120_000);

  it("answers the requests past the queue 503 at once, times the held ones out with 503, and nothing hangs on close", async () => {
    // Mode off: the loop never scales, so the fleet stays at 0 and every request meets the queue's bounds.
    const { id, front } = await localProxy({ ...ZEROABLE_POLICY, mode: "off" }, SHORT_QUEUE);
    await admin.request("POST", `/api/proxy/scaling/execute/${id}`, {
      body: { newReplicaCount: 0, reason: "start at zero" },
    });
    await scaledToZero(id, 1);
    const actuator = (await running.control.ensureActuator(id)) as LocalActuator;

    const held = Array.from({ length: SHORT_QUEUE.maxRequests }, () => answer(`${front}/held`));
    await expect.poll(() => actuator.frontStats().held, WAIT).toBe(SHORT_QUEUE.maxRequests);
    const excess = await Promise.all(Array.from({ length: 3 }, () => answer(`${front}/excess`)));
    // Answered while every held request still waits: at once, not after the queue's timeout.
    expect(actuator.frontStats().held).toBe(SHORT_QUEUE.maxRequests);
    for (const reply of excess) {
      expect(reply.status).toBe(503);
      expect(reply.body).toBe(
        `cold-start queue full: ${SHORT_QUEUE.maxRequests} requests already wait for a replica\n`,
      );
    }
    for (const reply of await Promise.all(held)) {
      expect(reply.status).toBe(503);
      expect(reply.body).toBe(`no replica was ready within ${SHORT_QUEUE.timeoutMs} ms (cold start)\n`);
    }
    expect(actuator.frontStats()).toMatchObject({ held: 0, coldStartRejected: { full: 3, timeout: 8 } });

    // Held when the server stops: each one ends (the front goes down), none is left waiting.
    const atClose = Array.from({ length: 3 }, () => fetch(`${front}/closing`).then((r) => r.status));
    await expect.poll(() => actuator.frontStats().held, WAIT).toBe(3);
    await running.control.registry.close(id);
    const settled = await Promise.allSettled(atClose);
    expect(settled.every((outcome) => outcome.status === "rejected")).toBe(true);
  }, 120_000);
});
