/**
 * The issue's HAProxy (and nginx) fleet end to end: `npm start`'s server with demo-edge on real HAProxy (or
 * nginx) replicas (the local actuator's templates), its metrics scraped from their exporters, a target-tracking policy on the
 * request rate, and real HTTP load from autocannon at a stepped rate. The fleet scales up when the load rises
 * and back down when it falls, and no client request fails, scale-ins included.
 */
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findProgram } from "../../src/actuators/local/template-replica.ts";
import type { RunningServer } from "../../src/start.ts";
import { startInMemoryServer } from "../running-server.ts";
import { type Client, client, token } from "../support.ts";

const WAIT = { timeout: 90_000, interval: 500 };

/** Load at `rate` req/s through the front until `until` holds; every answer's outcome is counted. */
async function loadUntil(url: string, rate: number, until: () => Promise<boolean>) {
  const load = autocannon({ url, connections: 4, overallRate: rate, duration: 120 });
  try {
    await expect.poll(until, WAIT).toBe(true);
  } finally {
    load.stop();
  }
  return load;
}

describe.each([
  { proxy: "haproxy", programs: ["haproxy"] },
  { proxy: "nginx", programs: ["nginx", "prometheus-nginx-exporter"] },
] as const)("a $proxy fleet scaled from its own exporters' metrics", ({ proxy, programs }) => {
  const missing = programs.filter((program) => !findProgram(program));
  let running: RunningServer | undefined;
  let admin: Client;

  beforeAll(async () => {
    if (missing.length > 0) return;
    running = await startInMemoryServer({
      PROXYSCALE_DEMO: "1",
      PROXYSCALE_DEMO_PROXY: proxy,
      PROXYSCALE_RECONCILE_SECONDS: "1",
    });
    admin = client(running.url, await token({ sub: "fleet-admin", role: "admin" }));
  });

  afterAll(async () => {
    await running?.close();
  });

  it.skipIf(missing.length > 0)(
    `scales 1 → 3 as the load rises and back to 1 as it falls, with no failed request${missing.length > 0 ? ` (skipped: ${missing.join(", ")} not installed)` : ""}`,
    async () => {
      const demo = running!.demo!;
      expect(demo).not.toBeNull();
      // 40 req/s per replica: 100 req/s needs 3, 10 req/s needs 1. No cooldown or stabilization in the way.
      const policy = await admin.request("POST", `/api/proxy/scaling/policies/${demo.proxyId}`, {
        body: {
          strategy: "targetTracking",
          targetRequestRate: 40,
          targetCpuPercent: 100,
          targetMemoryPercent: 100,
          minReplicas: 1,
          maxReplicas: 3,
          scaleUpCooldownSeconds: 0,
          scaleDownCooldownSeconds: 0,
          metricsMaxAgeSeconds: 5,
          behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
        },
      });
      expect(policy.status, JSON.stringify(policy.body)).toBeLessThan(300);
      const replicas = async () =>
        (await admin.request("GET", `/api/proxies/${demo.proxyId}`)).body.currentReplicas as number;
      expect(await replicas()).toBe(1);

      const rising = await loadUntil(demo.frontUrl, 100, async () => (await replicas()) === 3);
      const falling = await loadUntil(demo.frontUrl, 10, async () => (await replicas()) === 1);
      for (const result of [await rising, await falling]) {
        expect(result.errors, JSON.stringify(result)).toBe(0);
        expect(result.timeouts).toBe(0);
        expect(result.non2xx).toBe(0);
        expect(result.requests.total).toBeGreaterThan(0);
      }
      // The way down went through scale-ins (3 → 1), each drained under load.
      const events = await admin.request("GET", `/api/proxy/scaling/events/${demo.proxyId}?limit=50`);
      const items = events.body.items as Array<{ eventType: string; status: string }>;
      expect(
        items.filter((event) => event.eventType === "scale_down" && event.status === "completed").length,
      ).toBeGreaterThan(0);
      expect(
        items.filter((event) => event.eventType === "scale_up" && event.status === "completed").length,
      ).toBeGreaterThan(0);
    },
    240_000,
  );
});
