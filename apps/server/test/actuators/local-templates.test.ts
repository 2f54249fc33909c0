import { existsSync } from "node:fs";
import { type LocalActuatorConfig, parseActuatorConfig } from "@proxyscale/core";
import autocannon from "autocannon";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type HelloUpstream, LocalActuator, startHelloUpstream } from "../../src/actuators/index.ts";
import { INSTANCE_HEADER } from "../../src/actuators/local/protocol.ts";
import { findProgram } from "../../src/actuators/local/template-replica.ts";
import { isAlive } from "./processes.ts";

const TEST_TIMEOUT = 90_000;
const WAIT = { timeout: 30_000, interval: 50 };

const programs = {
  haproxy: findProgram("haproxy"),
  nginx: findProgram("nginx"),
  exporter: findProgram("prometheus-nginx-exporter"),
};
const missing = (name: string) => `${name} is not installed (apt-get install ${name})`;

let upstream: HelloUpstream;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  upstream = await startHelloUpstream({ latencyMs: 2 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await upstream.close();
});

async function startLocal(initialReplicas: number, replica: Record<string, unknown>, overrides = {}) {
  const config = parseActuatorConfig({
    kind: "local",
    upstreamUrl: upstream.url,
    replica,
    ...overrides,
  }) as LocalActuatorConfig;
  const actuator = await LocalActuator.create(config, { proxyId: "edge", initialReplicas });
  cleanups.push(async () => {
    const pids = actuator.replicasInfo().map((info) => info.pid);
    await actuator.close();
    // Belt and braces: a process group close() missed must not outlive the test.
    for (const pid of pids) if (pid !== undefined && isAlive(pid)) process.kill(-pid, "SIGKILL");
  });
  return actuator;
}

function scale(actuator: LocalActuator, replicas: number, fromReplicas: number) {
  return actuator.setReplicas(replicas, { proxyId: "edge", eventId: `to-${replicas}`, fromReplicas });
}

/** Requests answered per replica, by the instance header each template adds. */
function countByInstance() {
  const counts = new Map<string, number>();
  const onResponse = (_status: number, _body: string, _context: unknown, headers: Record<string, string>) => {
    const instance = Object.entries(headers).find(([name]) => name.toLowerCase() === INSTANCE_HEADER)?.[1];
    if (instance) counts.set(instance, (counts.get(instance) ?? 0) + 1);
  };
  return { counts, onResponse };
}

const templates = [
  { name: "haproxy", replica: { template: "haproxy", command: programs.haproxy }, skip: !programs.haproxy },
  {
    name: "nginx",
    replica: { template: "nginx", command: programs.nginx, exporter: false },
    skip: !programs.nginx,
  },
] as const;

describe.each(templates)("local actuator with the $name template", ({ name, replica, skip }) => {
  it.skipIf(skip)(
    `scales 1 → 3 → 1 under autocannon load through the front, and no client request fails during the scale-in${skip ? ` (skipped: ${missing(name)})` : ""}`,
    async () => {
      const actuator = await startLocal(1, replica);
      const [first] = actuator.replicasInfo();
      const { counts, onResponse } = countByInstance();
      const load = autocannon({
        url: `${actuator.url}/orders?delayMs=20`,
        connections: 12,
        duration: 120,
        // POSTs as well as GETs: the front retries a GET a replica dropped, never a POST.
        requests: [
          { method: "GET", onResponse },
          {
            method: "POST",
            body: '{"order":1}',
            headers: { "content-type": "application/json" },
            onResponse,
          },
        ],
      });
      try {
        await expect.poll(() => counts.get(first!.instanceId) ?? 0, WAIT).toBeGreaterThan(50);

        await scale(actuator, 3, 1);
        const three = actuator.replicasInfo();
        expect(three.map((info) => info.state)).toEqual(["ready", "ready", "ready"]);
        const servedAtThree = new Map(
          three.map((info) => [info.instanceId, counts.get(info.instanceId) ?? 0]),
        );
        // Every replica takes a share of the load before the scale-in, so requests are in flight on those removed.
        await expect
          .poll(
            () =>
              three.every(
                (info) => (counts.get(info.instanceId) ?? 0) > (servedAtThree.get(info.instanceId) ?? 0) + 50,
              ),
            WAIT,
          )
          .toBe(true);

        await scale(actuator, 1, 3);
        const [survivor] = actuator.replicasInfo();
        expect(actuator.replicasInfo()).toHaveLength(1);
        const servedAtOne = counts.get(survivor!.instanceId) ?? 0;
        await expect
          .poll(() => counts.get(survivor!.instanceId) ?? 0, WAIT)
          .toBeGreaterThan(servedAtOne + 50);
        const stopped = three.filter((info) => info.instanceId !== survivor!.instanceId);
        expect(stopped).toHaveLength(2);
        for (const info of stopped) expect(isAlive(info.pid!)).toBe(false);
      } finally {
        load.stop();
      }
      const result = await load;
      expect(result["2xx"]).toBeGreaterThan(0);
      expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({
        errors: 0,
        timeouts: 0,
        non2xx: 0,
      });
      // And no request needed a second try on another replica: none was dropped.
      expect(actuator.frontStats()).toMatchObject({ failures: 0, retries: 0 });
    },
    TEST_TIMEOUT,
  );
});

describe("local actuator template replicas", () => {
  it.skipIf(!programs.haproxy)(
    `lists each haproxy replica's exporter as a target, answering haproxy_frontend_http_requests_total${programs.haproxy ? "" : ` (skipped: ${missing("haproxy")})`}`,
    async () => {
      const actuator = await startLocal(2, { template: "haproxy", command: programs.haproxy });
      for (let index = 0; index < 10; index++)
        expect((await fetch(`${actuator.url}/hello`)).status).toBe(200);
      const targets = await actuator.targets();
      expect(targets.map((target) => target.instance).sort()).toEqual(
        actuator
          .replicasInfo()
          .map((info) => info.instanceId)
          .sort(),
      );
      const served = await Promise.all(
        targets.map(async (target) => {
          expect(target.url).toBe(`http://${target.address}:${target.port}/metrics`);
          const text = await (await fetch(target.url!)).text();
          const line = text
            .split("\n")
            .find((row) => row.startsWith('haproxy_frontend_http_requests_total{proxy="proxy"}'));
          expect(line).toBeDefined();
          return Number(line!.split(" ").pop());
        }),
      );
      // The front spread the ten requests over both replicas; each replica's exporter counted its own.
      expect(served.reduce((sum, value) => sum + value, 0)).toBe(10);
    },
    TEST_TIMEOUT,
  );

  it.skipIf(!programs.nginx || !programs.exporter)(
    `runs prometheus-nginx-exporter beside each nginx replica, listed as its target${programs.nginx && programs.exporter ? "" : ` (skipped: ${missing("nginx")} or ${missing("prometheus-nginx-exporter")})`}`,
    async () => {
      const actuator = await startLocal(1, {
        template: "nginx",
        command: programs.nginx,
        exporterCommand: programs.exporter,
      });
      for (let index = 0; index < 5; index++) expect((await fetch(`${actuator.url}/hello`)).status).toBe(200);
      const [target] = await actuator.targets();
      expect(target?.instance).toBe(actuator.replicasInfo()[0]?.instanceId);
      // The exporter starts once nginx is ready; it counts the requests stub_status saw.
      await expect
        .poll(async () => {
          const text = await fetch(target!.url!).then(
            (res) => res.text(),
            () => "",
          );
          const line = text.split("\n").find((row) => row.startsWith("nginx_http_requests_total"));
          return line ? Number(line.split(" ").pop()) : 0;
        }, WAIT)
        .toBeGreaterThanOrEqual(5);
    },
    TEST_TIMEOUT,
  );

  it(
    "runs a custom template: its config file written with the placeholders filled, a TCP readiness probe, and SIGKILL after the stop timeout when the stop signal is ignored",
    async () => {
      // A server that reads its port and instance from the config file and ignores SIGTERM.
      const script = [
        "const config = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'));",
        "process.on('SIGTERM', () => {});",
        "require('node:http').createServer((req, res) => res.end(config.instance)).listen(config.port, '127.0.0.1');",
      ].join("\n");
      const actuator = await startLocal(1, {
        template: "custom",
        command: [process.execPath, "-e", script, "{configFile}"],
        configTemplate: '{ "port": {port}, "instance": "{instance}", "dir": "{dir}" }',
        configFileName: "server.json",
        readiness: { kind: "tcp" },
        stop: { signal: "SIGTERM", timeoutMs: 300 },
      });
      const [replica] = actuator.replicasInfo();
      const answer = await fetch(`${actuator.url}/`);
      expect(await answer.text()).toBe(replica!.instanceId);
      expect(await actuator.targets()).toEqual([]);

      const stoppedAt = performance.now();
      await scale(actuator, 0, 1);
      expect(isAlive(replica!.pid!)).toBe(false);
      // It ignored SIGTERM, so it was killed after the stop timeout, not before.
      expect(performance.now() - stoppedAt).toBeGreaterThanOrEqual(300);
    },
    TEST_TIMEOUT,
  );

  it.skipIf(!programs.haproxy)(
    "removes a replica's directory when it stops",
    async () => {
      const actuator = await startLocal(1, { template: "haproxy", command: programs.haproxy });
      const dirs = actuator.replicasInfo().map((info) => info.dir);
      expect(dirs).toHaveLength(1);
      expect(existsSync(`${dirs[0]}/haproxy.cfg`)).toBe(true);
      await scale(actuator, 0, 1);
      await vi.waitFor(() => expect(existsSync(dirs[0]!)).toBe(false), WAIT);
    },
    TEST_TIMEOUT,
  );

  it("fails the scale with how to install a template's program when it is missing", async () => {
    const actuator = await startLocal(0, { template: "haproxy", command: "/nonexistent/haproxy" });
    await expect(scale(actuator, 1, 0)).rejects.toMatchObject({
      code: "start_failed",
      message: expect.stringContaining("apt-get install haproxy"),
    });
    expect(await actuator.getReplicas()).toEqual({ replicas: 0, readyReplicas: 0, unhealthyReplicas: 0 });
  });
});
