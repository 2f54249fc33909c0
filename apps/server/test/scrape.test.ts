import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyExposition } from "@proxyscale/core/testing";
import { type Database, schema } from "@proxyscale/db";
import autocannon from "autocannon";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ControlLoop } from "../src/control/loop.ts";
import { type ControlNode, startScrapingNode } from "./control/node.ts";
import {
  type Client,
  client,
  disposeDatabase,
  TEST_SECRET,
  testDriverList,
  token,
  unique,
} from "./support.ts";

/** A port free now (the OS's pick for port 0), for haproxy's config. */
async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const driver = testDriverList().find((candidate) => candidate.available)!;

describe("the scrape metrics source against a real HAProxy 2.6 and its built-in exporter", () => {
  let database: Database;
  let control: ControlLoop;
  let node: ControlNode;
  let api: Client;
  let apiUrl: string;
  let upstream: { server: http.Server; url: string };
  let haproxy: ChildProcess;
  let dir: string;
  let frontUrl: string;
  let exporterUrl: string;
  const helpers: http.Server[] = [];
  let proxyId: string;
  /** A target that stays valid until the test takes it away. */
  let disappearing: { server: http.Server; url: string };
  const hangingRequests = new Set<http.ServerResponse>();

  beforeAll(async () => {
    database = await driver.open({ poolMax: 8 });
    node = await startScrapingNode(database, TEST_SECRET, { refreshIntervalMs: 200 });
    control = node.control;
    apiUrl = node.url;
    api = client(node.url, await token({ sub: unique("scrape-owner") }));

    upstream = await listen((_req, res) => res.end("ok"));
    helpers.push(upstream.server);
    const hanging = await listen((_req, res) => {
      hangingRequests.add(res);
    });
    helpers.push(hanging.server);
    const garbage = await listen((_req, res) => res.end("<html><body>502 Bad Gateway</body></html>\n"));
    helpers.push(garbage.server);
    // A valid HAProxy-shaped exposition, until it disappears.
    let served = 0;
    disappearing = await listen((_req, res) => {
      served += 10;
      res.end(haproxyExposition(served));
    });

    dir = await mkdtemp(join(tmpdir(), "proxyscale-scrape-"));
    const frontPort = await freePort();
    const exporterPort = await freePort();
    const config = [
      "global",
      "  maxconn 2000",
      "defaults",
      "  mode http",
      "  timeout connect 2s",
      "  timeout client 10s",
      "  timeout server 10s",
      "frontend fe",
      `  bind 127.0.0.1:${frontPort}`,
      "  default_backend be",
      "frontend stats",
      `  bind 127.0.0.1:${exporterPort}`,
      "  http-request use-service prometheus-exporter if { path /metrics }",
      "backend be",
      `  server s1 ${new URL(upstream.url).host}`,
      "",
    ].join("\n");
    await writeFile(join(dir, "haproxy.cfg"), config);
    haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: "ignore" });
    frontUrl = `http://127.0.0.1:${frontPort}`;
    exporterUrl = `http://127.0.0.1:${exporterPort}/metrics`;
    await vi.waitFor(
      async () => {
        if ((await fetch(exporterUrl)).status !== 200) throw new Error("haproxy's exporter is not up yet");
      },
      { timeout: 10_000, interval: 100 },
    );

    const created = await api.request("POST", "/api/proxies", {
      body: {
        name: unique("haproxy-fleet"),
        metricsSource: {
          kind: "scrape",
          intervalSeconds: 1,
          timeoutMs: 500,
          mapping: "haproxy",
          targets: {
            static: [
              { instance: "haproxy-1", url: exporterUrl },
              { instance: "hangs", url: `${hanging.url}/metrics` },
              { instance: "garbage", url: `${garbage.url}/metrics` },
              { instance: "disappears", url: `${disappearing.url}/metrics` },
            ],
          },
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    proxyId = created.body.id;
  }, 60_000);

  afterAll(async () => {
    await node?.close();
    haproxy?.kill("SIGTERM");
    for (const res of hangingRequests) res.destroy();
    for (const helper of [...helpers, disappearing?.server]) helper?.closeAllConnections();
    await Promise.all([...helpers, disappearing?.server].map((h) => h && new Promise((r) => h.close(r))));
    if (dir) await rm(dir, { recursive: true, force: true });
    if (database) await disposeDatabase(database);
  });

  const samplesOf = (instanceId: string) =>
    database.db
      .select({
        at: schema.proxyLoadMetrics.recordedAt,
        requestRate: schema.proxyLoadMetrics.requestRate,
        cpuPercent: schema.proxyLoadMetrics.cpuPercent,
      })
      .from(schema.proxyLoadMetrics)
      .where(
        and(eq(schema.proxyLoadMetrics.proxyId, proxyId), eq(schema.proxyLoadMetrics.instanceId, instanceId)),
      )
      .orderBy(asc(schema.proxyLoadMetrics.recordedAt));

  it("stores a request rate that matches autocannon's own count within 10%, one sample per interval", async () => {
    // Two samples before the load: the base of the first interval the load falls in.
    await expect
      .poll(async () => (await samplesOf("haproxy-1")).length, { timeout: 20_000 })
      .toBeGreaterThan(1);
    const before = (await samplesOf("haproxy-1")).at(-1)!.at.getTime();
    const result = await autocannon({ url: frontUrl, connections: 10, duration: 5, overallRate: 300 });
    expect(result.errors).toBe(0);
    const endedAt = Date.now();
    // Until two samples after the load: the interval it ended in is complete.
    await expect
      .poll(async () => (await samplesOf("haproxy-1")).filter((s) => s.at.getTime() > endedAt).length, {
        timeout: 20_000,
      })
      .toBeGreaterThan(1);
    const samples = (await samplesOf("haproxy-1")).filter((s) => s.at.getTime() >= before);
    // Each sample's rate covers the time since the one before it.
    let scraped = 0;
    for (let i = 1; i < samples.length; i += 1) {
      scraped += samples[i]!.requestRate * ((samples[i]!.at.getTime() - samples[i - 1]!.at.getTime()) / 1000);
    }
    const sent = result.requests.total;
    console.log(`autocannon counted ${sent} requests; the scraped rates add up to ${scraped.toFixed(1)}`);
    expect(sent).toBeGreaterThan(500);
    expect(Math.abs(scraped - sent) / sent).toBeLessThan(0.1);
  }, 60_000);

  it("gives a hanging, a garbage and a vanished target no sample at all (missing, not zero), and says why", async () => {
    await expect
      .poll(async () => (await samplesOf("disappears")).length, { timeout: 20_000 })
      .toBeGreaterThan(0);
    disappearing.server.closeAllConnections();
    await new Promise((resolve) => disappearing.server.close(resolve));
    const gone = Date.now();
    await expect
      .poll(
        async () => {
          const health = await api.request("GET", `/api/proxies/${proxyId}/source-health`);
          const targets = health.body.health?.targets ?? [];
          return targets.find((t: { instance: string }) => t.instance === "disappears")?.ok;
        },
        { timeout: 20_000 },
      )
      .toBe(false);
    const health = (await api.request("GET", `/api/proxies/${proxyId}/source-health`)).body.health;
    const byInstance = Object.fromEntries(
      health.targets.map((t: { instance: string; ok: boolean; sampled: boolean; error: string | null }) => [
        t.instance,
        t,
      ]),
    );
    expect(byInstance.hangs).toMatchObject({ ok: false, sampled: false, error: "no answer within 500 ms" });
    expect(byInstance.garbage).toMatchObject({ ok: false, sampled: false });
    expect(byInstance.garbage.error).toContain("not a Prometheus text exposition");
    expect(byInstance.disappears).toMatchObject({ ok: false, sampled: false });
    expect(byInstance["haproxy-1"]).toMatchObject({ ok: true, sampled: true, error: null });
    expect(await samplesOf("hangs")).toEqual([]);
    expect(await samplesOf("garbage")).toEqual([]);
    // A round that had started before the close may still land; none after it.
    const lastRound = health.lastScrapeAt as number;
    expect(lastRound).toBeGreaterThan(gone);
    expect((await samplesOf("disappears")).filter((s) => s.at.getTime() > gone + 1_000)).toEqual([]);
  }, 60_000);

  it("has the control loop evaluate the proxy on the scraped samples, as on pushed ones", async () => {
    await expect
      .poll(
        async () =>
          (
            await database.db
              .select({ id: schema.scalingDecisions.id })
              .from(schema.scalingDecisions)
              .where(eq(schema.scalingDecisions.proxyId, proxyId))
          ).length,
        { timeout: 20_000 },
      )
      .toBeGreaterThan(0);
  });

  it("scrapes the replicas the local actuator runs from its haproxy template (targets from the actuator)", async () => {
    const created = await api.request("POST", "/api/proxies", {
      body: {
        name: unique("local-haproxy"),
        actuator: { kind: "local", upstreamUrl: upstream.url, replica: { template: "haproxy" } },
        metricsSource: { kind: "scrape", intervalSeconds: 1, timeoutMs: 500, mapping: "haproxy" },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    await expect
      .poll(
        async () =>
          (
            await database.db
              .select({ instanceId: schema.proxyLoadMetrics.instanceId })
              .from(schema.proxyLoadMetrics)
              .where(eq(schema.proxyLoadMetrics.proxyId, id))
          ).length,
        { timeout: 30_000 },
      )
      .toBeGreaterThan(0);
    const health = (await api.request("GET", `/api/proxies/${id}/source-health`)).body.health;
    const actuator = await control.ensureActuator(id);
    const targets = await actuator.targets!();
    expect(targets.length).toBeGreaterThan(0);
    expect(health.targets.map((t: { url: string }) => t.url).sort()).toEqual(
      targets.map((t) => t.url).sort(),
    );
    const stored = await database.db
      .select({ instanceId: schema.proxyLoadMetrics.instanceId })
      .from(schema.proxyLoadMetrics)
      .where(eq(schema.proxyLoadMetrics.proxyId, id));
    expect(new Set(targets.map((t) => t.instance))).toEqual(new Set(stored.map((row) => row.instanceId)));
  }, 60_000);

  it("shows the source on the proxy read", async () => {
    const proxy = await api.request("GET", `/api/proxies/${proxyId}`);
    expect(proxy.body.metricsSource).toMatchObject({
      kind: "scrape",
      mapping: "haproxy",
      intervalSeconds: 1,
    });
  });

  it("redacts a prometheus source's bearer token in the proxy read and the audit log", async () => {
    const admin = client(apiUrl, await token({ role: "admin" }));
    const created = await api.request("POST", "/api/proxies", {
      body: {
        name: unique("prom-fleet"),
        metricsSource: {
          kind: "prometheus",
          url: "http://127.0.0.1:9090",
          bearerToken: "prom-secret-value",
          queries: [{ field: "requestRate", promql: "sum(rate(haproxy_frontend_http_requests_total[1m]))" }],
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.metricsSource.bearerToken).toBe("[redacted]");
    const read = await api.request("GET", `/api/proxies/${created.body.id}`);
    const audit = await admin.request("GET", `/api/audit?entityId=${created.body.id}`);
    expect(audit.status).toBe(200);
    expect(audit.body.items.length).toBeGreaterThan(0);
    for (const body of [created.body, read.body, audit.body]) {
      expect(JSON.stringify(body)).not.toContain("prom-secret-value");
    }
  });

  it("refuses a bad source with 400 naming the field", async () => {
    const response = await api.request("POST", "/api/proxies", {
      body: { name: unique("bad-source"), metricsSource: { kind: "scrape", mapping: "traefik" } },
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain("metricsSource.mapping");
  });
});
