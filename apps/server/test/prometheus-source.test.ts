import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, schema } from "@proxyscale/db";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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

const PROMETHEUS = "/usr/bin/prometheus";
const prometheusMissing = !existsSync(PROMETHEUS);
if (prometheusMissing) {
  console.warn(
    `prometheus-source tests skipped: ${PROMETHEUS} is missing (Debian: apt-get install prometheus)`,
  );
}

/** A port free now (the OS's pick for port 0), for Prometheus' listen address. */
async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A replica Prometheus scrapes: its request counter grows at `ratePerSecond` (ticked every 100 ms, so the
 * served counter is the real count so far), beside a cpu gauge.
 */
async function replica(ratePerSecond: number, cpuPercent: number) {
  const state = { ratePerSecond, cpuPercent, requests: 0 };
  const ticker = setInterval(() => {
    state.requests += state.ratePerSecond / 10;
  }, 100);
  const server = http.createServer((_req, res) => {
    res.setHeader("content-type", "text/plain; version=0.0.4");
    res.end(
      [
        "# TYPE my_requests_total counter",
        `my_requests_total ${state.requests}`,
        "# TYPE my_cpu_percent gauge",
        `my_cpu_percent ${state.cpuPercent}`,
        "",
      ].join("\n"),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    address,
    close: async () => {
      clearInterval(ticker);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Prometheus' rate() extrapolates over a window of a few scrapes: near the served rate, not exact. */
const within10Percent = (expected: number) => (rate: number | undefined) =>
  rate !== undefined && Math.abs(rate - expected) / expected < 0.1;

const driver = testDriverList().find((candidate) => candidate.available)!;

describe.skipIf(prometheusMissing)("the prometheus metrics source against a real Prometheus 2.42", () => {
  let database: Database;
  let node: ControlNode;
  let api: Client;
  let prometheus: ChildProcess;
  let prometheusUrl: string;
  let dir: string;
  let replicas: Array<Awaited<ReturnType<typeof replica>>>;
  let proxyId: string;
  let badQueryProxyId: string;
  const BEARER = "prom-bearer-secret-value";

  beforeAll(async () => {
    database = await driver.open({ poolMax: 8 });
    node = await startScrapingNode(database, TEST_SECRET, { refreshIntervalMs: 200 });
    api = client(node.url, await token({ sub: unique("prometheus-owner") }));

    replicas = [await replica(50, 30), await replica(100, 50)];
    dir = await mkdtemp(join(tmpdir(), "proxyscale-prometheus-"));
    await writeFile(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: replicas",
        "    static_configs:",
        `      - targets: [${replicas.map((r) => `"${r.address}"`).join(", ")}]`,
        "",
      ].join("\n"),
    );
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    await vi.waitFor(
      async () => {
        if ((await fetch(`${prometheusUrl}/-/ready`)).status !== 200)
          throw new Error("prometheus is not ready yet");
      },
      { timeout: 20_000, interval: 200 },
    );

    const created = await api.request("POST", "/api/proxies", {
      body: {
        name: unique("prometheus-fleet"),
        metricsSource: {
          kind: "prometheus",
          url: prometheusUrl,
          bearerToken: BEARER,
          intervalSeconds: 1,
          timeoutMs: 800,
          queries: [
            // Per replica: one series per `instance`.
            { field: "requestRate", promql: "rate(my_requests_total[5s])" },
            // The fleet's: one series without `instance`, given to every replica.
            { field: "cpuPercent", promql: "avg(my_cpu_percent)" },
          ],
        },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    proxyId = created.body.id;
    const bad = await api.request("POST", "/api/proxies", {
      body: {
        name: unique("prometheus-bad-query"),
        metricsSource: {
          kind: "prometheus",
          url: prometheusUrl,
          intervalSeconds: 1,
          timeoutMs: 800,
          queries: [
            { field: "requestRate", promql: "rate(my_requests_total[5s])" },
            { field: "cpuPercent", promql: "avg(my_cpu_percent" },
          ],
        },
      },
    });
    expect(bad.status, JSON.stringify(bad.body)).toBe(201);
    badQueryProxyId = bad.body.id;
  }, 60_000);

  afterAll(async () => {
    await node?.close();
    prometheus?.kill("SIGTERM");
    await Promise.all((replicas ?? []).map((r) => r.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
    if (database) await disposeDatabase(database);
  });

  const samplesOf = (id: string, instanceId?: string) =>
    database.db
      .select({
        at: schema.proxyLoadMetrics.recordedAt,
        instanceId: schema.proxyLoadMetrics.instanceId,
        requestRate: schema.proxyLoadMetrics.requestRate,
        cpuPercent: schema.proxyLoadMetrics.cpuPercent,
      })
      .from(schema.proxyLoadMetrics)
      .where(
        instanceId === undefined
          ? eq(schema.proxyLoadMetrics.proxyId, id)
          : and(eq(schema.proxyLoadMetrics.proxyId, id), eq(schema.proxyLoadMetrics.instanceId, instanceId)),
      )
      .orderBy(asc(schema.proxyLoadMetrics.recordedAt));

  const latestRate = async (instanceId: string) => (await samplesOf(proxyId, instanceId)).at(-1)?.requestRate;

  it("stores one sample per replica instance whose request rate follows the counter the replica served", async () => {
    const [first, second] = replicas as [
      Awaited<ReturnType<typeof replica>>,
      Awaited<ReturnType<typeof replica>>,
    ];
    await expect.poll(() => latestRate(first.address), { timeout: 30_000 }).toSatisfy(within10Percent(50));
    await expect.poll(() => latestRate(second.address), { timeout: 30_000 }).toSatisfy(within10Percent(100));
    // The fleet query's value (the two gauges' average) fills every replica's sample.
    expect((await samplesOf(proxyId, first.address)).at(-1)?.cpuPercent).toBe(40);
    first.state.ratePerSecond = 200;
    await expect.poll(() => latestRate(first.address), { timeout: 30_000 }).toSatisfy(within10Percent(200));
    const instances = new Set((await samplesOf(proxyId)).map((sample) => sample.instanceId));
    expect(instances).toEqual(new Set([first.address, second.address]));
  }, 90_000);

  it("has the control loop record a decision for the proxy from the queried samples", async () => {
    await expect
      .poll(
        async () =>
          (
            await database.db
              .select({ id: schema.scalingDecisions.id })
              .from(schema.scalingDecisions)
              .where(eq(schema.scalingDecisions.proxyId, proxyId))
          ).length,
        { timeout: 30_000 },
      )
      .toBeGreaterThan(0);
  });

  it("stores nothing for a proxy whose query Prometheus refuses, and its health names the query's error", async () => {
    await expect
      .poll(
        async () => {
          const health = (await api.request("GET", `/api/proxies/${badQueryProxyId}/source-health`)).body
            .health;
          return health?.queries?.find((q: { field: string }) => q.field === "cpuPercent");
        },
        { timeout: 20_000 },
      )
      .toMatchObject({ ok: false, error: expect.stringContaining("bad_data") });
    const health = (await api.request("GET", `/api/proxies/${badQueryProxyId}/source-health`)).body.health;
    expect(health.kind).toBe("prometheus");
    expect(health.queries.find((q: { field: string }) => q.field === "requestRate")).toMatchObject({
      ok: true,
      error: null,
    });
    expect(health.targets.length).toBeGreaterThan(0);
    for (const target of health.targets) {
      expect(target).toMatchObject({
        sampled: false,
        error: expect.stringContaining("no value for cpuPercent"),
      });
    }
    expect(await samplesOf(badQueryProxyId)).toEqual([]);
  }, 30_000);

  it("stores no new samples once Prometheus is gone, and health says every query failed", async () => {
    await expect.poll(async () => (await samplesOf(proxyId)).length, { timeout: 20_000 }).toBeGreaterThan(0);
    const exited = new Promise((resolve) => prometheus.once("exit", resolve));
    prometheus.kill("SIGTERM");
    await exited;
    const gone = Date.now();
    await expect
      .poll(
        async () => {
          const health = (await api.request("GET", `/api/proxies/${proxyId}/source-health`)).body.health;
          return health.lastScrapeAt > gone && health.queries.every((q: { ok: boolean }) => !q.ok);
        },
        { timeout: 20_000 },
      )
      .toBe(true);
    const health = (await api.request("GET", `/api/proxies/${proxyId}/source-health`)).body.health;
    for (const query of health.queries) expect(query.error).toEqual(expect.any(String));
    for (const target of health.targets) expect(target.sampled).toBe(false);
    expect(JSON.stringify(health)).not.toContain(BEARER);
    // A round that had started before the exit may still land; none after it.
    expect((await samplesOf(proxyId)).filter((sample) => sample.at.getTime() > gone + 1_000)).toEqual([]);
  }, 30_000);
});
