/**
 * A scraped proxy whose only target disappears: its metrics go missing (no sample is stored, never a zero), so
 * once they are older than metricsMaxAgeSeconds the stale-metrics fallback decides — here KEDA's
 * `fallback.replicas` — through the real server (startServer: scraper, control loop, actuator).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { haproxyExposition } from "@proxyscale/core/testing";
import { listDecisions } from "@proxyscale/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/start.ts";
import { FleetReceiver } from "./fleet-receiver.ts";
import { startInMemoryServer } from "./running-server.ts";
import { type Client, client, token, unique } from "./support.ts";

const WAIT = { timeout: 30_000, interval: 200 };

let running: RunningServer;
let receiver: FleetReceiver;
let target: http.Server;
let operator: Client;
let admin: Client;

/** An exporter in HAProxy's shape whose request counter climbs by 5 a scrape. */
function haproxyExporter(): http.Server {
  let served = 0;
  return http.createServer((_req, res) => {
    served += 5;
    res.end(haproxyExposition(served));
  });
}

beforeAll(async () => {
  running = await startInMemoryServer({
    PROXYSCALE_RECONCILE_SECONDS: "1",
  });
  receiver = await new FleetReceiver().start();
  target = haproxyExporter();
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  operator = client(running.url, await token({ role: "operator", sub: unique("fallback-owner") }));
  admin = client(running.url, await token({ role: "admin", sub: unique("fallback-admin") }));
});

afterAll(async () => {
  await running?.close();
  await receiver?.close();
  if (target?.listening) await new Promise((resolve) => target.close(resolve));
});

describe("a scraped proxy whose target disappears", () => {
  it("stores no sample for it, and the stale-metrics fallback moves the fleet to fallback.replicas", async () => {
    const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/metrics`;
    const created = await operator.request("POST", "/api/proxies", {
      body: {
        name: unique("scraped"),
        actuator: receiver.actuator(),
        metricsSource: {
          kind: "scrape",
          intervalSeconds: 1,
          timeoutMs: 500,
          mapping: "haproxy",
          targets: { static: [{ instance: "edge-1", url }] },
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const proxyId = created.body.id as string;
    const policy = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
      body: { metricsMaxAgeSeconds: 2, fallback: { failureThreshold: 1, replicas: 3 }, maxReplicas: 5 },
    });
    expect(policy.status, JSON.stringify(policy.body)).toBeLessThan(300);
    const samples = async () => {
      const latest = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}`);
      return latest.body.samples as Array<{ at: number; requestRate: number }>;
    };
    // Scraped: a sample with the target's rate (5 requests a second).
    await expect.poll(async () => (await samples())[0]?.requestRate ?? 0, WAIT).toBeGreaterThan(0);

    target.closeAllConnections();
    await new Promise((resolve) => target.close(resolve));
    const health = async () =>
      (await operator.request("GET", `/api/proxies/${proxyId}/source-health`)).body.health?.targets?.[0];
    await expect.poll(async () => (await health())?.ok, WAIT).toBe(false);
    const lastStored = (await samples())[0]!;

    await expect.poll(() => receiver.callsFor(proxyId).map((call) => call.toReplicas), WAIT).toEqual([3]);
    const decisions = (await listDecisions(running.database.db, { proxyId })).items;
    const fallback = decisions.find((item) =>
      item.decision.limits.some((limit) => limit.kind === "fallback"),
    );
    expect(fallback?.decision.desiredReplicas).toBe(3);
    // Nothing was stored for the vanished target meanwhile: its newest sample is still the last good one.
    const [newest] = await samples();
    expect(newest).toEqual(lastStored);
    expect(newest!.requestRate).toBeGreaterThan(0);
  });
});
