/**
 * Defect 9 (issue 11): after a PostgreSQL outage longer than the shard lease, the server must be back in charge —
 * leases re-acquired, the queue drained — within 2 s of the database accepting connections again. The real server
 * process runs against a private cluster that the test stops for 25 s (past the default 15 s lease, as in the
 * report), with the default lease and query deadline; a webhook receiver in the test records when the actuator is
 * called. The bound of 2 s is the explicit requirement.
 */
import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import { type PrivateCluster, startPrivateCluster } from "@proxyscale/db/testing";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetReceiver } from "./fleet-receiver.ts";
import { type ServerProcess, startServerProcess } from "./process.ts";
import { client, HIGH_LOAD, LOW_LOAD } from "./support.ts";

/** The outage of the report: longer than the default 15 s shard lease, so every lease has lapsed. */
const OUTAGE_MS = 25_000;
/** The requirement, from the database accepting connections to the actuator being called. */
const RESUME_WITHIN_MS = 2_000;
const SECRET = `resume-${randomBytes(24).toString("hex")}`;

let cluster: PrivateCluster;
let server: ServerProcess | undefined;
const receiver = new FleetReceiver();

beforeAll(async () => {
  cluster = await startPrivateCluster();
  await receiver.start();
});
afterAll(async () => {
  await server?.dispose();
  await receiver.close();
  await cluster?.dispose();
});

/** Date.now() of the first `select 1` the cluster answers, trying every 10 ms from now on. */
async function firstAnswer(url: string): Promise<number> {
  for (;;) {
    const probe = postgres(url, { max: 1, connect_timeout: 1, onnotice: () => {} });
    try {
      await probe`select 1`;
      return Date.now();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      await probe.end({ timeout: 0 });
    }
  }
}

describe("after a PostgreSQL outage longer than the shard lease", () => {
  it("acts on an accepted execute and an over-threshold push within 2 s of the database accepting connections again", {
    timeout: 120_000,
  }, async () => {
    server = await startServerProcess({
      DATABASE_URL: await cluster.createDatabase("resume"),
      PROXYSCALE_JWT_SECRET: SECRET,
      LOG_LEVEL: "info",
    });
    const api = client(
      server.url,
      await signToken({ sub: "resume", role: "operator", tier: "enterprise", secret: SECRET }),
    );
    const admin = client(
      server.url,
      await signToken({ sub: "resume-admin", role: "admin", tier: "enterprise", secret: SECRET }),
    );
    const register = async (name: string) => {
      const created = await api.request("POST", "/api/proxies", {
        body: { name, actuator: receiver.actuator() },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const proxyId = created.body.id as string;
      // No cooldown or stabilization in the way: the push's scale is decided at once.
      const policy = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { scaleUpCooldownSeconds: 0, scaleDownCooldownSeconds: 0, maxReplicas: 10 },
      });
      expect(policy.status, JSON.stringify(policy.body)).toBeLessThan(300);
      // A calm sample first, so the control loop has seen the proxy and holds steady.
      expect(
        (await api.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: LOW_LOAD })).status,
      ).toBe(201);
      return proxyId;
    };
    const executed = await register("executed");
    const pushed = await register("pushed");
    // The server holds its shards (every proxy is its) before the outage.
    await expect
      .poll(async () => (await api.request("GET", "/readyz")).status, { timeout: 15_000 })
      .toBe(200);

    await cluster.stop();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    const back = firstAnswer(cluster.url);
    await cluster.start();
    const backAt = await back;

    // The execute and the push are sent as soon as the server answers them (its pool reconnects first).
    let executeEventId: string | undefined;
    await expect
      .poll(
        async () => {
          const accepted = await api.request("POST", `/api/proxy/scaling/execute/${executed}`, {
            body: { newReplicaCount: 3, reason: "after the outage" },
          });
          if (accepted.status === 202) executeEventId = accepted.body.id as string;
          return accepted.status;
        },
        { timeout: 10_000, interval: 20 },
      )
      .toBe(202);
    await expect
      .poll(
        async () =>
          (
            await api.request("POST", `/api/proxy/scaling/metrics/${pushed}`, {
              body: { ...HIGH_LOAD, instanceId: "after-outage" },
            })
          ).status,
        { timeout: 10_000, interval: 20 },
      )
      .toBe(201);

    // By event, not by proxy: once at 3 replicas under its calm sample, the loop may rightly scale `executed`
    // back down, which is a second call for the proxy but another event.
    const callsOfExecute = () => receiver.calls.filter((call) => call.eventId === executeEventId);
    await expect.poll(() => callsOfExecute().length, { timeout: 30_000 }).toBeGreaterThan(0);
    await expect.poll(() => receiver.callsFor(pushed).length, { timeout: 30_000 }).toBeGreaterThan(0);
    const executeMs = callsOfExecute()[0]!.at - backAt;
    const pushMs = receiver.callsFor(pushed)[0]!.at - backAt;
    console.info(`resumed after the outage: execute acted on in ${executeMs} ms, push in ${pushMs} ms`);
    expect(executeMs).toBeLessThanOrEqual(RESUME_WITHIN_MS);
    expect(pushMs).toBeLessThanOrEqual(RESUME_WITHIN_MS);
    // Acted on once: the execute's event, completed, was run by one caller only.
    await expect
      .poll(
        async () => {
          const events = await api.request("GET", `/api/proxy/scaling/events/${executed}`);
          const items = events.body.items as Array<{ id: string; status: string }>;
          return items.find((event) => event.id === executeEventId)?.status;
        },
        { timeout: 10_000 },
      )
      .toBe("completed");
    expect(callsOfExecute(), JSON.stringify(receiver.calls)).toHaveLength(1);
  });
});
