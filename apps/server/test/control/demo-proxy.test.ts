import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type Database, latestSamplesPage, openDatabase } from "@proxyscale/db";
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalActuator } from "../../src/actuators/local/actuator.ts";
import { findProgram } from "../../src/actuators/local/template-replica.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { demoReplica, startDemo } from "../../src/demo/register.ts";
import { createLogger } from "../../src/logger.ts";
import type { RunningServer } from "../../src/start.ts";
import { startInMemoryServer } from "../running-server.ts";
import { TEST_SECRET } from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

const haproxy = findProgram("haproxy");

/** A logger whose lines a test reads. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: createLogger("info", destination), lines };
}

describe("PROXYSCALE_DEMO_PROXY", () => {
  it("chooses what demo-edge's replicas run, the Node worker by default, and refuses anything else naming the variable", () => {
    expect(loadConfig({}).demoProxy).toBe("worker");
    expect(loadConfig({ PROXYSCALE_DEMO_PROXY: "" }).demoProxy).toBe("worker");
    expect(loadConfig({ PROXYSCALE_DEMO_PROXY: "haproxy" }).demoProxy).toBe("haproxy");
    expect(loadConfig({ PROXYSCALE_DEMO_PROXY: "nginx" }).demoProxy).toBe("nginx");
    expect(() => loadConfig({ PROXYSCALE_DEMO_PROXY: "envoy" })).toThrow(ConfigError);
    expect(() => loadConfig({ PROXYSCALE_DEMO_PROXY: "envoy" })).toThrow(
      "PROXYSCALE_DEMO_PROXY: must be one of worker, haproxy, nginx",
    );
  });

  it("falls back to the Node workers when the program is missing, logging how to install it", () => {
    const { logger, lines } = capturingLogger();
    expect(demoReplica("haproxy", logger, () => undefined)).toEqual({ template: "worker" });
    expect(lines.map((line) => line.msg)).toEqual([
      "demo: haproxy is not installed (on Debian or Ubuntu: apt-get install haproxy); demo-edge runs the Node workers",
    ]);
  });

  it("runs nginx without its exporter when only the exporter is missing, saying so", () => {
    const { logger, lines } = capturingLogger();
    const found = (name: string) => (name === "nginx" ? "/usr/sbin/nginx" : undefined);
    expect(demoReplica("nginx", logger, found)).toEqual({
      template: "nginx",
      command: "/usr/sbin/nginx",
      exporter: false,
    });
    expect(String(lines[0]?.msg)).toContain("apt-get install prometheus-nginx-exporter");
  });
});

describe("the demo with PROXYSCALE_DEMO_PROXY=haproxy", () => {
  let database: Database;
  let node: ControlNode;

  beforeAll(async () => {
    database = await openDatabase({ dataDir: "memory://" });
    node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 1_000 });
  });
  afterAll(async () => {
    await node?.close();
    await database?.close();
  });

  it.skipIf(!haproxy)(
    `serves demo-edge through real HAProxy replicas, each listing its exporter as a target${haproxy ? "" : " (skipped: haproxy is not installed: apt-get install haproxy)"}`,
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-demo-"));
      const demo = await startDemo({
        database,
        control: node.control,
        logger: createLogger("silent"),
        serverUrl: node.url,
        port: 0,
        dataDir,
        proxy: "haproxy",
      });
      try {
        const response = await fetch(demo.info.frontUrl);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ hello: "from the ProxyScale demo upstream" });
        const actuator = (await node.control.ensureActuator(demo.info.proxyId)) as LocalActuator;
        const [replica] = actuator.replicasInfo();
        expect(readFileSync(`/proc/${replica!.pid}/comm`, "utf8").trim()).toBe("haproxy");
        const [target] = await actuator.targets();
        expect(await (await fetch(target!.url!)).text()).toContain("haproxy_frontend_http_requests_total");
      } finally {
        await demo.close();
        await node.control.registry.close(demo.info.proxyId);
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

describe("npm start with PROXYSCALE_DEMO_PROXY=haproxy", () => {
  let running: RunningServer | undefined;
  afterAll(async () => {
    await running?.close();
  });

  it.skipIf(!haproxy)(
    `scrapes demo-edge's HAProxy replicas through their exporters: load through the front becomes stored samples${haproxy ? "" : " (skipped: haproxy is not installed: apt-get install haproxy)"}`,
    async () => {
      running = await startInMemoryServer({
        PROXYSCALE_DEMO: "1",
        PROXYSCALE_DEMO_PROXY: "haproxy",
      });
      const demo = running.demo;
      expect(demo).not.toBeNull();
      const load = autocannon({ url: demo!.frontUrl, connections: 4, duration: 60, overallRate: 100 });
      try {
        // The first scrape of a counter gives no rate; the next ones do.
        await expect
          .poll(
            async () => {
              const page = await latestSamplesPage(running!.database.db, { proxyId: demo!.proxyId });
              return page.items.some((sample) => (sample.requestRate ?? 0) > 0);
            },
            { timeout: 30_000, interval: 250 },
          )
          .toBe(true);
      } finally {
        load.stop();
      }
      const result = await load;
      expect(result.non2xx).toBe(0);
    },
    90_000,
  );
});
