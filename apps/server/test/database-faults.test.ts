/**
 * The real server process against a private PostgreSQL cluster that the tests freeze (SIGSTOP), drop and stop:
 * every request answers 503 within the query deadline, and SIGTERM ends the process within the shutdown deadline.
 * The deadlines are short so the file is quick; the bounds are generous multiples of them (correctness, not speed).
 */
import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import { type PrivateCluster, startPrivateCluster } from "@proxyscale/db/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServerProcess } from "./process.ts";

const QUERY_TIMEOUT_MS = 1_000;
const SHUTDOWN_TIMEOUT_MS = 3_000;
/** From SIGTERM to the process being gone, past the deadline: the last log lines and the exit itself. */
const EXIT_MARGIN_MS = 2_000;
const SECRET = `faults-${randomBytes(24).toString("hex")}`;
const SAMPLE = { cpuPercent: 50, memoryPercent: 40, requestRate: 100, avgLatencyMs: 10, errorRatePercent: 0 };
const STEPS = [
  "the HTTP server's close",
  "retention's close",
  "the control loop's close",
  "the database pool close",
];

let cluster: PrivateCluster;
let server: ServerProcess | undefined;

beforeAll(async () => {
  cluster = await startPrivateCluster();
});
afterEach(async () => {
  cluster.thaw();
  await server?.dispose();
  server = undefined;
});
afterAll(async () => {
  await cluster?.dispose();
});

interface Answer {
  status: number;
  ms: number;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are asserted field by field
  body: any;
}

async function call(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Answer> {
  const startedAt = performance.now();
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, ms: performance.now() - startedAt, body: text ? JSON.parse(text) : null };
}

/** A server on its own new database of the cluster, with one proxy that has reported once. */
async function serve(): Promise<{ url: string; token: string; proxyId: string; database: string }> {
  const database = `faults_${randomBytes(4).toString("hex")}`;
  server = await startServerProcess({
    DATABASE_URL: await cluster.createDatabase(database),
    PROXYSCALE_JWT_SECRET: SECRET,
    PROXYSCALE_QUERY_TIMEOUT_SECONDS: String(QUERY_TIMEOUT_MS / 1000),
    PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_MS / 1000),
    LOG_LEVEL: "info",
  });
  const token = await signToken({ sub: "faults", role: "operator", tier: "enterprise", secret: SECRET });
  const created = await call(server.url, "POST", "/api/proxies", token, { name: "edge" });
  expect(created.status).toBe(201);
  const proxyId = created.body.id as string;
  expect(
    (await call(server.url, "POST", `/api/proxy/scaling/metrics/${proxyId}`, token, SAMPLE)).status,
  ).toBe(201);
  return { url: server.url, token, proxyId, database };
}

/** SIGTERM, then how long the process took to be gone, its exit code and its log line on stopping. */
async function terminate(running: ServerProcess) {
  const sentAt = performance.now();
  running.child.kill("SIGTERM");
  const { code, at } = await running.exited;
  const stopped = running.logs().filter((line) => line.msg?.startsWith("proxyscale server stopped"));
  expect(stopped).toHaveLength(1);
  return { ms: at - sentAt, code, stopped: stopped[0]! };
}

describe("with PostgreSQL frozen", () => {
  it("answers a metrics push, an evaluate, a list and /readyz with 503 within the query deadline, and serves again once it is thawed", async () => {
    const { url, token, proxyId } = await serve();
    cluster.freeze();
    const [push, evaluate, list, ready] = await Promise.all([
      call(url, "POST", `/api/proxy/scaling/metrics/${proxyId}`, token, SAMPLE),
      call(url, "POST", `/api/proxy/scaling/evaluate/${proxyId}`, token),
      call(url, "GET", "/api/proxies", token),
      call(url, "GET", "/readyz"),
    ]);
    for (const answer of [push, evaluate, list]) {
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
      expect(answer.ms).toBeLessThan(QUERY_TIMEOUT_MS * 3);
    }
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(2_000);
    expect((await call(url, "GET", "/healthz")).status).toBe(200);

    cluster.thaw();
    await expect.poll(async () => (await call(url, "GET", "/readyz")).status, { timeout: 15_000 }).toBe(200);
    expect((await call(url, "POST", `/api/proxy/scaling/metrics/${proxyId}`, token, SAMPLE)).status).toBe(
      201,
    );
    const evaluated = await call(url, "POST", `/api/proxy/scaling/evaluate/${proxyId}`, token);
    expect(evaluated.status).toBe(200);
    expect(evaluated.body.proxyId).toBe(proxyId);
  });

  it("exits on SIGTERM at the shutdown deadline, logging what it abandoned", async () => {
    await serve();
    cluster.freeze();
    const { ms, code, stopped } = await terminate(server!);
    expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
    expect(code).toBe(1);
    expect(stopped.msg).toMatch(/^proxyscale server stopped at its shutdown deadline, abandoning: /);
    const abandoned = stopped.abandoned as string[];
    expect(abandoned.length).toBeGreaterThan(0);
    for (const step of abandoned) expect(STEPS.some((name) => step.startsWith(name))).toBe(true);
    expect(server!.output().stderr).toContain("stopped at the shutdown deadline, abandoning: ");
  });

  it("exits at once on a second SIGTERM", async () => {
    await serve();
    cluster.freeze();
    server!.child.kill("SIGTERM");
    await expect.poll(() => server!.output().stderr).toContain("SIGTERM: stopping");
    const sentAt = performance.now();
    server!.child.kill("SIGTERM");
    const { code, at } = await server!.exited;
    const ms = at - sentAt;
    expect(code).toBe(1);
    expect(ms).toBeLessThan(EXIT_MARGIN_MS);
    expect(server!.output().stderr).toContain("SIGTERM again: exiting now");
  });
});

describe("SIGTERM", () => {
  it("with its database dropped while serving: drains everything and exits within the shutdown deadline", async () => {
    const { url, database } = await serve();
    await cluster.dropDatabase(database);
    await expect.poll(async () => (await call(url, "GET", "/readyz")).status, { timeout: 10_000 }).toBe(503);
    const { ms, code, stopped } = await terminate(server!);
    expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
    expect(stopped.msg).toBe("proxyscale server stopped");
    expect(code).toBe(0);
  });

  it("with PostgreSQL cleanly stopped: exits promptly", async () => {
    const { url } = await serve();
    await cluster.stop();
    try {
      await expect
        .poll(async () => (await call(url, "GET", "/readyz")).status, { timeout: 10_000 })
        .toBe(503);
      const { ms, code, stopped } = await terminate(server!);
      expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      expect(stopped.msg).toBe("proxyscale server stopped");
      expect(code).toBe(0);
    } finally {
      await cluster.start();
    }
  });
});
