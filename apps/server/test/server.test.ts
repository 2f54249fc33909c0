import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import SwaggerParser from "@apidevtools/swagger-parser";
import { INTERNAL_ERROR_MESSAGE } from "@proxyscale/api";
import { type Database, openDatabase } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/logger.ts";
import {
  type Client,
  client,
  HIGH_LOAD,
  POSTGRES_URL,
  postgresAvailable,
  registerProxy,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  token,
  unique,
} from "./support.ts";

interface TrpcResult<T> {
  result: { data: T };
}

interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4): every line is a HELP, a TYPE or a sample of a
 * declared family, labels are quoted, values are numbers (NaN and Inf in any case, as Prometheus's own parser,
 * Go's ParseFloat, accepts them; prom-client writes "Nan"). Throws on anything else.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: PromSample[] } {
  const types = new Map<string, string>();
  const samples: PromSample[] = [];
  const familyOf = (name: string) =>
    types.has(name) ? name : (/^(.*)_(bucket|sum|count)$/.exec(name)?.[1] ?? name);
  for (const [index, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]?[Ii]nf)( -?\d+)?$/.exec(line);
    if (!sample) throw new Error(`line ${index + 1} is not Prometheus text: ${line}`);
    const name = sample[1]!;
    if (!types.has(familyOf(name))) throw new Error(`line ${index + 1}: sample ${name} has no TYPE`);
    const labels: Record<string, string> = {};
    const labelText = sample[3] ?? "";
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let consumed = 0;
    while (consumed < labelText.length) {
      labelPattern.lastIndex = consumed;
      const label = labelPattern.exec(labelText);
      if (!label) throw new Error(`line ${index + 1}: bad labels ${labelText}`);
      labels[label[1]!] = label[2]!;
      consumed = labelPattern.lastIndex;
    }
    samples.push({ name, labels, value: Number(sample[4]) });
  }
  return { types, samples };
}

function find(samples: PromSample[], name: string, labels: Record<string, string>): PromSample | undefined {
  return samples.find(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

describe("server", () => {
  let database: Database;
  let server: TestServer;
  let operator: Client;

  beforeAll(async () => {
    database = await openDatabase({ dataDir: "memory://" });
    server = await startTestServer(database);
    operator = client(server.url, await token({ role: "operator", sub: unique("operator") }));
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  describe("/metrics", () => {
    it("serves valid Prometheus text with request, evaluation, event, replica and load metrics", async () => {
      const proxyId = await registerProxy(operator);
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD });
      const decision = await operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`);
      const event = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 3 },
      });
      await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: event.body.id, status: "completed", observedReplicas: 3 },
      });
      await operator.request("GET", "/api/proxies/00000000-0000-4000-8000-000000000000");
      await operator.request("GET", `/api/no/such/route/${unique("x")}`);

      const response = await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${await token({ role: "admin" })}` },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain");
      const { types, samples } = parsePrometheus(await response.text());

      expect(types.get("proxyscale_http_requests_total")).toBe("counter");
      expect(types.get("proxyscale_http_request_duration_seconds")).toBe("histogram");
      expect(
        find(samples, "proxyscale_http_requests_total", {
          route: "/api/proxy/scaling/evaluate/{proxyId}",
          method: "POST",
          status: "200",
        })?.value,
      ).toBe(1);
      expect(
        find(samples, "proxyscale_http_request_duration_seconds_count", {
          route: "/api/proxy/scaling/metrics/{proxyId}",
          status: "201",
        })?.value,
      ).toBe(1);
      expect(
        find(samples, "proxyscale_http_requests_total", { route: "/api/proxies/{proxyId}", status: "404" })
          ?.value,
      ).toBe(1);
      expect(
        find(samples, "proxyscale_http_requests_total", { route: "unmatched", status: "404" })?.value,
      ).toBe(1);
      expect(samples.some((sample) => sample.labels.route?.includes("/no/such/route"))).toBe(false);
      expect(
        find(samples, "proxyscale_evaluations_total", { strategy: "threshold", action: decision.body.action })
          ?.value,
      ).toBe(1);
      expect(
        find(samples, "proxyscale_scaling_events_total", { type: "scale_up", status: "pending" })?.value,
      ).toBe(1);
      expect(
        find(samples, "proxyscale_scaling_events_total", { type: "scale_up", status: "completed" })?.value,
      ).toBe(1);
      expect(find(samples, "proxyscale_proxy_current_replicas", { proxy_id: proxyId })?.value).toBe(3);
      expect(find(samples, "proxyscale_proxy_desired_replicas", { proxy_id: proxyId })?.value).toBe(3);
      expect(find(samples, "proxyscale_proxy_load_score", { proxy_id: proxyId })?.value).toBeCloseTo(
        decision.body.loadScore,
        6,
      );

      await operator.request("DELETE", `/api/proxies/${proxyId}`);
      const after = parsePrometheus(
        await (
          await fetch(`${server.url}/metrics`, {
            headers: { authorization: `Bearer ${await token({ role: "admin" })}` },
          })
        ).text(),
      );
      expect(find(after.samples, "proxyscale_proxy_load_score", { proxy_id: proxyId })).toBeUndefined();
    });

    it("the strict parser rejects malformed exposition text", () => {
      expect(() => parsePrometheus("# TYPE x counter\nx{a=b} 1\n")).toThrow(/bad labels/);
      expect(() => parsePrometheus("y 1\n")).toThrow(/no TYPE/);
      expect(() => parsePrometheus("# TYPE x gauge\nx one\n")).toThrow(/not Prometheus text/);
    });
  });

  describe("OpenAPI and docs", () => {
    it("serves a valid OpenAPI 3 document describing every seed endpoint with its real status codes", async () => {
      const document = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as {
        openapi: string;
        servers: Array<{ url: string }>;
        paths: unknown;
      };
      await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeTruthy();
      expect(document.openapi).toMatch(/^3\./);
      expect(document.servers[0]?.url).toBe(`${server.url}/api`);
      const paths = document.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
      const seed: Array<[string, string, string]> = [
        ["post", "/proxy/scaling/policies/{proxyId}", "201"],
        ["get", "/proxy/scaling/policies/{proxyId}", "200"],
        ["post", "/proxy/scaling/metrics/{proxyId}", "201"],
        ["get", "/proxy/scaling/metrics/{proxyId}", "200"],
        ["post", "/proxy/scaling/evaluate/{proxyId}", "200"],
        ["post", "/proxy/scaling/execute/{proxyId}", "202"],
        ["get", "/proxy/scaling/events/{proxyId}", "200"],
        ["get", "/proxy/scaling/summary/{proxyId}", "200"],
        ["post", "/proxy/scaling/complete", "200"],
        ["post", "/proxies", "201"],
      ];
      for (const [method, path, status] of seed) {
        const operation = paths[path]?.[method];
        expect(operation, `${method} ${path}`).toBeDefined();
        expect(Object.keys(operation!.responses), `${method} ${path}`).toEqual(
          expect.arrayContaining([status, "400", "401", "403", "429", "503"]),
        );
      }
      expect(Object.keys(paths["/proxy/scaling/execute/{proxyId}"]!.post!.responses)).not.toContain("200");
    });

    it("renders a self-contained reference page at /api/docs", async () => {
      const response = await fetch(`${server.url}/api/docs`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/html");
      const html = await response.text();
      expect(html).toContain("/proxy/scaling/execute/{proxyId}");
      expect(html).toContain("Request body");
      expect(html).not.toMatch(/<script|<link[^>]+href="http/);
    });
  });

  describe("/trpc", () => {
    it("serves the same procedures over tRPC's HTTP protocol with auth and zod issues", async () => {
      const bearer = await token({ role: "operator", sub: unique("trpc-user") });
      const created = await fetch(`${server.url}/trpc/proxies.register`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify({ name: unique("via-trpc") }),
      });
      expect(created.status).toBe(200);
      const proxyId = ((await created.json()) as TrpcResult<{ id: string }>).result.data.id;

      const input = encodeURIComponent(JSON.stringify({ proxyId }));
      const read = await fetch(`${server.url}/trpc/proxies.get?input=${input}`, {
        headers: { authorization: `Bearer ${bearer}` },
      });
      expect(((await read.json()) as TrpcResult<{ id: string }>).result.data.id).toBe(proxyId);

      const anonymous = await fetch(`${server.url}/trpc/proxies.get?input=${input}`);
      expect(anonymous.status).toBe(401);

      const invalid = await fetch(`${server.url}/trpc/metrics.record`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify({ proxyId, cpuPercent: 500 }),
      });
      expect(invalid.status).toBe(400);
      const { error } = (await invalid.json()) as {
        error: { data: { zodIssues: Array<{ field: string }> } };
      };
      expect(error.data.zodIssues.map((issue: { field: string }) => issue.field)).toEqual(
        expect.arrayContaining(["cpuPercent", "memoryPercent"]),
      );
    });
  });

  describe("health", () => {
    it("answers /healthz and /readyz while the database is up", async () => {
      expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok" });
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect((await client(server.url).request("GET", "/api/proxies")).status).toBe(401);
    });

    it.skipIf(!postgresAvailable)(
      "answers 503 on /readyz and on API calls when the database becomes unreachable, and recovers with it",
      async () => {
        // PostgreSQL behind a loopback relay this test can cut, as a network partition or a dead database would.
        const target = new URL(POSTGRES_URL);
        const sockets = new Set<net.Socket>();
        const relayTo = () =>
          net.createServer((socket) => {
            const upstream = net.connect(Number(target.port || 5432), target.hostname);
            for (const end of [socket, upstream]) {
              sockets.add(end);
              end.on("error", () => end.destroy());
              end.on("close", () => sockets.delete(end));
            }
            socket.pipe(upstream).pipe(socket);
          });
        let relay = relayTo();
        await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
        const relayPort = (relay.address() as AddressInfo).port;
        const relayUrl = new URL(POSTGRES_URL);
        relayUrl.port = String(relayPort);
        const schema = `unreachable_${randomBytes(4).toString("hex")}`;
        const partitioned = await openDatabase({ url: relayUrl.toString(), pgSchema: schema, poolMax: 2 });
        const broken = await startTestServer(partitioned);
        const api = client(broken.url, await token({ role: "admin" }));
        try {
          expect((await api.request("GET", "/api/proxies")).status).toBe(200);
          const proxyId = await registerProxy(api, { name: unique("partitioned") });
          relay.close();
          for (const socket of sockets) socket.destroy();

          const ready = await fetch(`${broken.url}/readyz`);
          expect(ready.status).toBe(503);
          expect((await fetch(`${broken.url}/healthz`)).status).toBe(200);
          const listed = await api.request("GET", "/api/proxies");
          expect(listed.status).toBe(503);
          expect(listed.body).toMatchObject({
            code: "SERVICE_UNAVAILABLE",
            message: "database is unreachable",
          });
          expect((await api.request("POST", "/api/proxies", { body: { name: "down" } })).status).toBe(503);
          // Evaluations waiting in one batch all get the 503, and the batcher is not left stuck behind them.
          const evaluations = await Promise.all(
            [1, 2, 3].map(() => api.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`)),
          );
          expect(evaluations.map((answer) => answer.status)).toEqual([503, 503, 503]);

          relay = relayTo();
          await new Promise<void>((resolve) => relay.listen(relayPort, "127.0.0.1", resolve));
          await expect
            .poll(async () => (await fetch(`${broken.url}/readyz`)).status, { timeout: 10_000 })
            .toBe(200);
          const evaluated = await api.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`);
          expect(evaluated.status).toBe(200);
          expect(evaluated.body.proxyId).toBe(proxyId);
        } finally {
          relay.close();
          await broken.close();
          await partitioned.close().catch(() => {});
          const direct = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
          await direct.unsafe(`drop schema if exists "${schema}" cascade`);
          await direct.end();
        }
      },
    );
  });

  describe("errors", () => {
    it("hides an internal error's SQL and parameters from REST and tRPC clients", async () => {
      const bearer = await token({ role: "operator", sub: unique("internal-error") });
      const owner = client(server.url, bearer);
      const proxyId = await registerProxy(owner, { name: unique("internal-error") });
      await owner.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD });
      await database.db.execute(sql`alter table scaling_decisions rename to scaling_decisions_hidden`);
      try {
        const rest = await owner.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`);
        expect(rest.status).toBe(500);
        expect(rest.body).toMatchObject({ code: "INTERNAL_SERVER_ERROR", message: INTERNAL_ERROR_MESSAGE });
        expect(JSON.stringify(rest.body)).not.toMatch(/scaling_decisions|insert|select/i);

        const viaTrpc = await fetch(`${server.url}/trpc/scaling.evaluate`, {
          method: "POST",
          headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
          body: JSON.stringify({ proxyId }),
        });
        expect(viaTrpc.status).toBe(500);
        const body = await viaTrpc.text();
        expect(body).toContain(INTERNAL_ERROR_MESSAGE);
        expect(body).not.toMatch(/scaling_decisions|insert|select/i);
      } finally {
        await database.db.execute(sql`alter table scaling_decisions_hidden rename to scaling_decisions`);
      }
    });
  });

  describe("static admin files", () => {
    it("serves apps/admin/dist with a client-side-route fallback and no path traversal", async () => {
      const dist = mkdtempSync(join(tmpdir(), "proxyscale-admin-"));
      mkdirSync(join(dist, "assets"));
      writeFileSync(join(dist, "index.html"), "<!doctype html><title>admin</title>");
      writeFileSync(join(dist, "assets", "app.js"), "console.log('admin')");
      const withAdmin = await startTestServer(database, { adminDistDir: dist });
      try {
        const index = await fetch(`${withAdmin.url}/`);
        expect(await index.text()).toContain("<title>admin</title>");
        const route = await fetch(`${withAdmin.url}/proxies/123`);
        expect(route.headers.get("content-type")).toContain("text/html");
        const script = await fetch(`${withAdmin.url}/assets/app.js`);
        expect(script.headers.get("content-type")).toContain("javascript");
        expect(script.headers.get("cache-control")).toContain("immutable");
        expect((await fetch(`${withAdmin.url}/assets/missing.js`)).status).toBe(404);
        const traversal = await fetch(`${withAdmin.url}/..%2f..%2fetc%2fpasswd`);
        expect(await traversal.text()).not.toContain("root:");
        expect((await fetch(`${withAdmin.url}/..%2f..%2fetc%2fhosts.txt`)).status).toBe(404);
      } finally {
        await withAdmin.close();
        rmSync(dist, { recursive: true, force: true });
      }
    });
  });

  describe("logging", () => {
    it("never writes tokens or secrets to the log", async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      });
      const logger = createLogger("trace", sink);
      const logged = await startTestServer(database, { logger });
      try {
        const bearer = await token({ role: "operator", sub: unique("logged") });
        const api = client(logged.url, bearer);
        const proxyId = await registerProxy(api);
        await api.request("POST", `/api/proxy/scaling/execute/${proxyId}`, { body: { newReplicaCount: 2 } });
        await api.request("GET", "/api/proxies", { token: `${bearer}tampered` });
        logger.info(
          { authorization: `Bearer ${bearer}`, headers: { authorization: `Bearer ${bearer}` } },
          "probe",
        );
        logger.info({ config: { jwtSecret: TEST_SECRET }, token: bearer }, "probe");
        const output = lines.join("");
        expect(output).toContain('"msg":"request"');
        expect(output).toContain("scaling event pending");
        expect(output).toContain("[redacted]");
        expect(output).not.toContain(bearer);
        expect(output).not.toContain(TEST_SECRET);
      } finally {
        await logged.close();
      }
    });
  });

  describe("shutdown", () => {
    it("stops accepting, lets an in-flight request finish, then closes", async () => {
      const draining = await startTestServer(database);
      const bearer = await token({ role: "operator", sub: unique("draining") });
      const proxyId = await registerProxy(client(draining.url, bearer));
      const body = JSON.stringify({ ...HIGH_LOAD });
      const url = new URL(`${draining.url}/api/proxy/scaling/metrics/${proxyId}`);
      const { httpServer } = draining.server;
      const arrived = once(httpServer, "request");

      let request!: http.ClientRequest;
      const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
        request = http.request(
          url,
          {
            method: "POST",
            headers: {
              authorization: `Bearer ${bearer}`,
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
            },
          },
          (res) => {
            let text = "";
            res.on("data", (chunk) => {
              text += chunk;
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        request.on("error", reject);
      });
      request.write(body.slice(0, 10));
      // Closed while the server holds the request and its body is still on the way.
      await arrived;
      const sweeps = vi.spyOn(httpServer, "closeIdleConnections");
      const closed = draining.close();
      const sweptAtClose = sweeps.mock.calls.length;
      // Idle connections are closed at once and swept again every 25 ms: this busy one outlives a sweep.
      await expect.poll(() => sweeps.mock.calls.length).toBeGreaterThan(sweptAtClose);
      request.end(body.slice(10));

      const finished = await response;
      expect(finished.status).toBe(201);
      expect(JSON.parse(finished.body).loadScore).toBeGreaterThan(0);
      await closed;
      await expect(fetch(`${draining.url}/healthz`)).rejects.toThrow();
    });
  });
});
