import { readFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type LocalActuatorConfig, loadMetricsSchema, parseActuatorConfig } from "@proxyscale/core";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  ActuatorError,
  createActuator,
  type HelloUpstream,
  LocalActuator,
  type LocalReplicaInfo,
  type ReplicaCounts,
  startHelloUpstream,
} from "../../src/actuators/index.ts";
import { INSTANCE_HEADER } from "../../src/actuators/local/protocol.ts";
import { isAlive } from "./processes.ts";

const TEST_TIMEOUT = 60_000;
/** How long a wait for a worker process (start, restart, exit) may take on a loaded machine. */
const WAIT = { timeout: 20_000, interval: 20 };

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

function localConfig(overrides: Record<string, unknown> = {}): LocalActuatorConfig {
  return parseActuatorConfig({
    kind: "local",
    upstreamUrl: upstream.url,
    reporting: { enabled: false },
    ...overrides,
  }) as LocalActuatorConfig;
}

async function startLocal(
  initialReplicas: number,
  overrides: Record<string, unknown> = {},
  deps: Partial<Parameters<typeof LocalActuator.create>[1]> = {},
) {
  const actuator = await LocalActuator.create(localConfig(overrides), {
    proxyId: "edge",
    initialReplicas,
    ...deps,
  });
  cleanups.push(async () => {
    const pids = actuator.replicasInfo().map((info) => info.pid);
    await actuator.close();
    // Belt and braces: whatever close() missed must not outlive the test.
    for (const pid of pids) if (pid !== undefined && isAlive(pid)) process.kill(pid, "SIGKILL");
  });
  return actuator;
}

/**
 * After `victim` was lost: the front serves from `survivor` alone, then a live replacement makes both slots ready
 * again.
 */
async function expectSurvivorThenReplacement(
  actuator: LocalActuator,
  events: ReplicaCounts[],
  victim: LocalReplicaInfo,
  survivor: LocalReplicaInfo,
) {
  const during = await fetch(`${actuator.url}/during`);
  expect(during.status).toBe(200);
  expect(during.headers.get(INSTANCE_HEADER)).toBe(survivor.instanceId);
  await expect
    .poll(() => events, WAIT)
    .toContainEqual(expect.objectContaining({ readyReplicas: 2, unhealthyReplicas: 0 }));
  const replaced = actuator.replicasInfo();
  expect(replaced).toHaveLength(2);
  expect(replaced.map((info) => info.pid)).not.toContain(victim.pid);
  expect(replaced.map((info) => info.instanceId)).toContain(survivor.instanceId);
  const replacement = replaced.find((info) => info.instanceId !== survivor.instanceId);
  expect(isAlive(replacement!.pid!)).toBe(true);
  expect(await actuator.getReplicas()).toEqual({ replicas: 2, readyReplicas: 2, unhealthyReplicas: 0 });
}

interface Answer {
  status: number;
  instance: string | undefined;
  startedAt: number;
  endedAt: number;
}

/** One HTTP exchange through a keep-alive agent, like a real client. */
function send(url: string, agent: Agent, method: "GET" | "POST" = "GET"): Promise<Answer> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const body = method === "POST" ? JSON.stringify({ order: Math.random() }) : undefined;
    const req = request(
      url,
      { method, agent, headers: body ? { "content-type": "application/json" } : {} },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            instance: res.headers[INSTANCE_HEADER] as string | undefined,
            startedAt,
            endedAt: performance.now(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("local actuator", () => {
  it(
    "scales 1 → 3 → 1 with real worker processes behind one front address",
    async () => {
      const actuator = await startLocal(1, { balance: "roundRobin" });
      expect(await actuator.getReplicas()).toEqual({ replicas: 1, readyReplicas: 1, unhealthyReplicas: 0 });
      const [first] = actuator.replicasInfo();
      expect(first?.pid).not.toBe(process.pid);
      expect(isAlive(first!.pid!)).toBe(true);

      await expect(
        actuator.setReplicas(3, { proxyId: "edge", eventId: "e1", fromReplicas: 1 }),
      ).resolves.toEqual({
        status: "completed",
        observedReplicas: 3,
      });
      expect(await actuator.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
      const three = actuator.replicasInfo();
      expect(new Set(three.map((info) => info.pid)).size).toBe(3);
      for (const info of three) expect(isAlive(info.pid!)).toBe(true);

      const agent = new Agent({ keepAlive: true });
      const answers = await Promise.all(
        Array.from({ length: 9 }, () => send(`${actuator.url}/hello`, agent)),
      );
      agent.destroy();
      expect(answers.every((answer) => answer.status === 200)).toBe(true);
      expect(new Set(answers.map((answer) => answer.instance))).toEqual(
        new Set(three.map((info) => info.instanceId)),
      );

      await expect(
        actuator.setReplicas(1, { proxyId: "edge", eventId: "e2", fromReplicas: 3 }),
      ).resolves.toEqual({
        status: "completed",
        observedReplicas: 1,
      });
      const [survivor] = actuator.replicasInfo();
      const stopped = three.filter((info) => info.instanceId !== survivor?.instanceId);
      expect(stopped).toHaveLength(2);
      for (const info of stopped) expect(isAlive(info.pid!)).toBe(false);
      expect((await fetch(`${actuator.url}/after`)).headers.get(INSTANCE_HEADER)).toBe(survivor?.instanceId);
    },
    TEST_TIMEOUT,
  );

  it(
    "drains on scale-in: a stream of GETs and POSTs through the front loses no request",
    async () => {
      const actuator = await startLocal(3);
      const agent = new Agent({ keepAlive: true, maxSockets: 6 });
      const answers: Answer[] = [];
      const failures: unknown[] = [];
      let streaming = true;
      const client = async (method: "GET" | "POST") => {
        while (streaming) {
          try {
            answers.push(await send(`${actuator.url}/orders?delayMs=150`, agent, method));
          } catch (error) {
            failures.push(error);
          }
        }
      };
      const clients = [0, 1, 2, 3, 4, 5].map((index) => client(index % 2 === 0 ? "GET" : "POST"));

      // Scale in only once the stream runs through all three replicas, so some of it is in flight on those removed.
      await expect.poll(() => new Set(answers.map((answer) => answer.instance)).size, WAIT).toBe(3);
      const before = new Set(actuator.replicasInfo().map((info) => info.instanceId));
      const scaleInAt = performance.now();
      await actuator.setReplicas(1, { proxyId: "edge", eventId: "in", fromReplicas: 3 });
      const scaledInAt = performance.now();
      const survivor = actuator.replicasInfo()[0]?.instanceId;
      // Keep streaming until as many requests as there are clients started after the scale-in and were answered.
      await expect
        .poll(() => answers.filter((answer) => answer.startedAt > scaledInAt).length, WAIT)
        .toBeGreaterThanOrEqual(6);
      streaming = false;
      await Promise.all(clients);
      agent.destroy();

      expect(failures).toEqual([]);
      expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
      // The removed replicas had requests in flight when the scale-in began, and finished them.
      const drained = answers.filter(
        (answer) =>
          answer.instance !== survivor && answer.startedAt < scaleInAt && answer.endedAt > scaleInAt,
      );
      expect(drained.length).toBeGreaterThan(0);
      expect(before.size).toBe(3);
      // Nothing started after the scale-in went anywhere but the survivor.
      const late = answers.filter((answer) => answer.startedAt > scaledInAt);
      expect(late.length).toBeGreaterThan(0);
      expect(late.every((answer) => answer.instance === survivor)).toBe(true);
      // And no request needed a second try on another replica.
      expect(actuator.frontStats()).toMatchObject({ failures: 0, retries: 0 });
    },
    TEST_TIMEOUT,
  );

  it(
    "notices a replica killed with SIGKILL, reports it unhealthy, and replaces it",
    async () => {
      const actuator = await startLocal(2, { restartDelayMs: 400 });
      const events: ReplicaCounts[] = [];
      const stopWatching = actuator.watch((counts) => events.push(counts));
      const [victim, bystander] = actuator.replicasInfo();

      process.kill(victim!.pid!, "SIGKILL");
      await expect.poll(() => events, WAIT).toContainEqual(expect.objectContaining({ unhealthyReplicas: 1 }));
      expect(events[0]).toEqual({ replicas: 2, readyReplicas: 1, unhealthyReplicas: 1 });
      expect(await actuator.getReplicas()).toMatchObject({ replicas: 2, unhealthyReplicas: 1 });
      await expectSurvivorThenReplacement(actuator, events, victim!, bystander!);
      stopWatching();
    },
    TEST_TIMEOUT,
  );

  it(
    "kills and replaces a replica that hangs (SIGSTOP) once it fails its liveness probe, serving from the others meanwhile",
    async () => {
      const actuator = await startLocal(2, {
        restartDelayMs: 100,
        livenessProbe: { periodMs: 100, timeoutMs: 200, failureThreshold: 2 },
      });
      const events: ReplicaCounts[] = [];
      const stopWatching = actuator.watch((counts) => events.push(counts));
      const [victim, bystander] = actuator.replicasInfo();
      // Alive to the kernel (no exit, its port still accepts connections) but answering nothing.
      process.kill(victim!.pid!, "SIGSTOP");
      cleanups.push(async () => {
        if (isAlive(victim!.pid!)) process.kill(victim!.pid!, "SIGKILL");
      });

      await expect.poll(() => events, WAIT).toContainEqual(expect.objectContaining({ unhealthyReplicas: 1 }));
      await expect.poll(() => isAlive(victim!.pid!), WAIT).toBe(false);
      await expectSurvivorThenReplacement(actuator, events, victim!, bystander!);
      stopWatching();
    },
    TEST_TIMEOUT,
  );

  it(
    "carries a protocol upgrade (WebSocket-style) through the front and a worker both ways, and relays a refusal",
    async () => {
      const actuator = await startLocal(1);
      const [replica] = actuator.replicasInfo();
      const upgrade = (protocol: string) =>
        new Promise<{ status: number; instance: string | undefined; socket?: Duplex; body?: string }>(
          (resolve, reject) => {
            const req = request(`${actuator.url}/socket`, {
              headers: { connection: "Upgrade", upgrade: protocol },
            });
            req.on("upgrade", (res, socket) =>
              resolve({
                status: res.statusCode ?? 0,
                instance: res.headers[INSTANCE_HEADER] as string,
                socket,
              }),
            );
            req.on("response", (res) => {
              let body = "";
              res.setEncoding("utf8").on("data", (chunk: string) => {
                body += chunk;
              });
              res.on("end", () =>
                resolve({
                  status: res.statusCode ?? 0,
                  instance: res.headers[INSTANCE_HEADER] as string,
                  body,
                }),
              );
            });
            req.on("error", reject);
            req.end();
          },
        );

      const echo = await upgrade("echo");
      expect(echo.status).toBe(101);
      expect(echo.instance).toBe(replica?.instanceId);
      const socket = echo.socket!;
      const heard: string[] = [];
      socket.setEncoding("utf8").on("data", (chunk: string) => heard.push(chunk));
      socket.write("ping 1");
      await expect.poll(() => heard.join(""), WAIT).toBe("ping 1");
      socket.write(" ping 2");
      await expect.poll(() => heard.join(""), WAIT).toBe("ping 1 ping 2");
      expect(actuator.frontStats().backends[0]?.upgraded).toBe(1);
      socket.destroy();
      await expect.poll(() => actuator.frontStats().backends[0]?.upgraded, WAIT).toBe(0);

      const refused = await upgrade("something-else");
      expect(refused).toMatchObject({ status: 400, body: "only Upgrade: echo here\n" });
    },
    TEST_TIMEOUT,
  );

  it(
    "runs each replica's MetricsReporter against ProxyScale's metrics path, token kept out of argv",
    async () => {
      const pushes: Array<{ path: string; authorization: string | undefined; sample: unknown }> = [];
      const metricsServer = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { samples: unknown[] };
          for (const sample of body.samples) {
            pushes.push({ path: req.url ?? "", authorization: req.headers.authorization, sample });
          }
          res.writeHead(201).end("{}");
        });
      });
      await new Promise<void>((resolve) => metricsServer.listen(0, "127.0.0.1", resolve));
      cleanups.push(() => new Promise((resolve) => metricsServer.close(resolve)));
      const metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}`;

      const actuator = await startLocal(
        1,
        { reporting: { intervalMs: 200 } },
        { metricsReporting: { url: metricsUrl, token: "secret-token-abc" } },
      );
      const [replica] = actuator.replicasInfo();
      const cmdline = readFileSync(`/proc/${replica!.pid}/cmdline`, "utf8");
      expect(cmdline).not.toContain("secret-token-abc");

      const agent = new Agent({ keepAlive: true });
      for (let i = 0; i < 20; i++) await send(`${actuator.url}/load`, agent);
      agent.destroy();
      const busy = await vi.waitFor(() => {
        const push = pushes.find((candidate) => loadMetricsSchema.parse(candidate.sample).requestRate > 0);
        if (!push) throw new Error(`no push counts the requests yet: ${JSON.stringify(pushes)}`);
        return push;
      }, WAIT);
      expect(busy.path).toBe("/api/proxy/scaling/metrics/edge/batch");
      expect(busy.authorization).toBe("Bearer secret-token-abc");
      const sample = loadMetricsSchema.parse(busy.sample);
      expect(sample.instanceId).toBe(replica?.instanceId);
      expect(sample.errorRatePercent).toBe(0);
      expect(sample.avgLatencyMs).toBeGreaterThan(0);
    },
    TEST_TIMEOUT,
  );

  it(
    "serializes concurrent scales and ends at the last one asked for",
    async () => {
      const actuator = await startLocal(0);
      const results = await Promise.all([
        actuator.setReplicas(2, { proxyId: "edge", eventId: "a", fromReplicas: 0 }),
        actuator.setReplicas(1, { proxyId: "edge", eventId: "b", fromReplicas: 2 }),
      ]);
      expect(results).toEqual([
        { status: "completed", observedReplicas: 2 },
        { status: "completed", observedReplicas: 1 },
      ]);
      expect(await actuator.getReplicas()).toEqual({ replicas: 1, readyReplicas: 1, unhealthyReplicas: 0 });
    },
    TEST_TIMEOUT,
  );

  it(
    "fails a scale whose replicas are not ready in time, keeps none of them, and answers 503 meanwhile",
    async () => {
      const actuator = await startLocal(0, { readyTimeoutMs: 1 });
      const empty = await fetch(`${actuator.url}/nobody`);
      expect(empty.status).toBe(503);
      expect(await empty.text()).toBe("no ready replicas\n");

      const error = await actuator
        .setReplicas(2, { proxyId: "edge", eventId: "slow", fromReplicas: 0 })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ActuatorError);
      expect(error).toMatchObject({
        code: "start_failed",
        message: expect.stringContaining("not ready within 1 ms"),
      });
      expect(await actuator.getReplicas()).toEqual({ replicas: 0, readyReplicas: 0, unhealthyReplicas: 0 });
      expect(actuator.replicasInfo()).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "passes the upstream's own errors through and answers 502 when the upstream is unreachable",
    async () => {
      const actuator = await startLocal(1);
      const failing = await fetch(`${actuator.url}/boom?status=503`);
      expect(failing.status).toBe(503);
      expect(failing.headers.get(INSTANCE_HEADER)).toBe(actuator.replicasInfo()[0]?.instanceId);

      const unreachable = await startLocal(1, { upstreamUrl: "http://127.0.0.1:1" });
      const answer = await fetch(`${unreachable.url}/anything`);
      expect(answer.status).toBe(502);
      expect(await answer.text()).toBe("upstream unreachable\n");
      expect(unreachable.frontStats()).toMatchObject({ requests: 1, failures: 1 });
    },
    TEST_TIMEOUT,
  );

  it(
    "refuses clients while its front starts and stops, never answering 503 with no replica in rotation",
    async () => {
      const port = await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, "127.0.0.1", () => {
          const { port: free } = probe.address() as AddressInfo;
          probe.close(() => resolve(free));
        });
      });
      const answers = new Map<string, number>();
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const answer = await new Promise<string>((resolve) => {
            const req = request(`http://127.0.0.1:${port}/probe`, { agent: false }, (res) => {
              res.resume();
              res.on("end", () => resolve(String(res.statusCode)));
            });
            req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
            req.end();
          });
          answers.set(answer, (answers.get(answer) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const actuator = await LocalActuator.create(localConfig({ listenPort: port, drainTimeoutMs: 2_000 }), {
        proxyId: "edge",
        initialReplicas: 2,
      });
      await expect.poll(() => answers.get("200") ?? 0, WAIT).toBeGreaterThan(20);
      await actuator.close();
      const refusedAfterClose = answers.get("ECONNREFUSED") ?? 0;
      await expect.poll(() => answers.get("ECONNREFUSED") ?? 0, WAIT).toBeGreaterThan(refusedAfterClose + 5);
      probing = false;
      await prober;
      // Refused before the workers were ready and after close began; served in between; never a 503.
      expect(answers.get("503")).toBeUndefined();
      // (A reset is a request the closing front took just before it stopped accepting.)
      expect(Object.fromEntries(answers)).toEqual(
        Object.fromEntries(
          [...answers].filter(([answer]) => ["200", "ECONNREFUSED", "ECONNRESET"].includes(answer)),
        ),
      );
      expect(answers.get("ECONNREFUSED")).toBeGreaterThan(0);
    },
    TEST_TIMEOUT,
  );

  it("refuses reporting without a destination, naming the fix", async () => {
    await expect(
      createActuator(localConfig({ reporting: { enabled: true } }), { proxyId: "edge" }),
    ).rejects.toThrow("reporting is enabled but has no ProxyScale URL and token");
  });
});
