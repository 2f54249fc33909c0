import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import addFormats from "ajv-formats";
import OpenAPIBackend, { type Document, type Operation } from "openapi-backend";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, HIGH_LOAD, MID_LOAD, token, unique } from "./support.ts";

type Response = Awaited<ReturnType<Client["request"]>>;

/**
 * Real responses, over real HTTP from a real server, validated against the schemas that server publishes in
 * /api/openapi.json (openapi-backend, with ajv-formats for uuid, date-time and uri). Every operation of the
 * document gets at least one checked response.
 */
forEachDriver("REST responses match /api/openapi.json", (suite) => {
  let api: OpenAPIBackend;
  let admin: Client;
  let operator: Client;
  const checked = new Set<string>();

  /** An external actuator that accepts every scale and finishes later (202), so `complete` has work to do. */
  let receiver: Server;
  let receiverUrl: string;

  beforeAll(async () => {
    const document = (await (await fetch(`${suite().url}/api/openapi.json`)).json()) as Document;
    // quick: openapi-backend's own check of the document knows OpenAPI 3.0 only (server.test.ts checks this 3.1
    // document with swagger-parser); its response validation works on the dereferenced schemas.
    api = new OpenAPIBackend({
      definition: document,
      apiRoot: "/api",
      quick: true,
      customizeAjv: (ajv) => addFormats(ajv),
    });
    await api.init();
    admin = client(suite().url, await token({ role: "admin", sub: unique("admin") }));
    operator = client(suite().url, await token({ role: "operator", sub: unique("operator") }));
    receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(202).end());
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/scale`;
  });

  afterAll(async () => {
    receiver?.close();
  });

  function operationOf(method: string, path: string): Operation {
    const operation = api.router.matchOperation({ method, path: path.split("?")[0]!, headers: {} });
    if (!operation) throw new Error(`no operation in /api/openapi.json for ${method} ${path}`);
    return operation;
  }

  /** The document's verdict on a real response: its status must be documented and its body match the schema. */
  function verdict(method: string, path: string, response: Response) {
    const operation = operationOf(method, path);
    expect(Object.keys(operation.responses ?? {}), `${method} ${path}`).toContain(String(response.status));
    return api.validateResponse(response.body, operation, response.status);
  }

  /** Sends the request and expects `status` with a body that matches the document. */
  async function call(
    api: Client,
    method: string,
    path: string,
    status: number,
    body?: unknown,
    // biome-ignore lint/suspicious/noExplicitAny: bodies are read field by field to chain the next requests
  ): Promise<any> {
    const response = await api.request(method, path, body === undefined ? {} : { body });
    expect(response.status, `${method} ${path}: ${JSON.stringify(response.body)}`).toBe(status);
    const result = verdict(method, path, response);
    expect(result.errors, `${method} ${path}`).toBeNull();
    checked.add(operationOf(method, path).operationId!);
    return response.body;
  }

  it("validates the response of every operation, errors included, against its schema", async () => {
    const proxy = await call(operator, "POST", "/api/proxies", 201, {
      name: unique("edge"),
      region: "eu-west-1",
      actuator: { kind: "webhook", url: receiverUrl, secret: "s".repeat(32), headers: { "x-key": "v" } },
    });
    expect(proxy.actuator).toMatchObject({ secret: "[redacted]", headers: { "x-key": "[redacted]" } });
    const id = proxy.id as string;
    await call(operator, "GET", `/api/proxies/${id}`, 200);
    await call(operator, "GET", `/api/proxies/${id}/source-health`, 200);
    await call(operator, "GET", "/api/proxies?limit=2", 200);
    await call(operator, "PATCH", `/api/proxies/${id}`, 200, { region: null });
    await call(operator, "PUT", `/api/proxies/${id}/health`, 200, {
      health: "degraded",
      unhealthyReplicas: 0,
    });

    await call(admin, "POST", `/api/proxy/scaling/policies/${id}`, 201, {
      minReplicas: 1,
      maxReplicas: 8,
      strategy: "targetTracking",
      customMetricTargets: { queueDepth: 10 },
    });
    await call(admin, "POST", `/api/proxy/scaling/policies/${id}`, 200, { minReplicas: 1, maxReplicas: 8 });
    await call(operator, "GET", `/api/proxy/scaling/policies/${id}`, 200);
    await call(operator, "GET", "/api/policies/presets", 200);
    await call(operator, "POST", "/api/policies/validate", 200, { policy: { maxReplicas: 2 } });
    await call(operator, "POST", "/api/policies/validate", 200, { policy: { minReplicas: -1 } });
    const environment = unique("env");
    await call(admin, "PUT", `/api/policies/environments/${environment}`, 201, { maxReplicas: 4 });
    await call(operator, "GET", `/api/policies/environments/${environment}`, 200);
    await call(operator, "GET", "/api/policies/environments", 200);

    await call(operator, "POST", `/api/proxy/scaling/metrics/${id}`, 201, {
      ...HIGH_LOAD,
      instanceId: "a",
      custom: { queueDepth: 30 },
    });
    await call(operator, "POST", `/api/proxy/scaling/metrics/${id}`, 201, MID_LOAD);
    await call(operator, "POST", `/api/proxy/scaling/metrics/${id}/batch`, 201, {
      samples: [
        { ...HIGH_LOAD, instanceId: "b" },
        { ...HIGH_LOAD, instanceId: "c", recordedAt: new Date().toISOString() },
      ],
    });
    await call(operator, "GET", `/api/proxy/scaling/metrics/${id}`, 200);
    await call(operator, "GET", `/api/proxy/scaling/metrics/${id}/range?points=10`, 200);

    const decision = await call(operator, "POST", `/api/proxy/scaling/evaluate/${id}`, 200);
    expect(decision.limits.length + decision.metrics.length).toBeGreaterThan(0);
    await call(operator, "GET", `/api/proxy/scaling/decisions/${id}`, 200);

    const event = await call(operator, "POST", `/api/proxy/scaling/execute/${id}`, 202, {
      newReplicaCount: 3,
      reason: "openapi test",
    });
    await call(operator, "POST", "/api/proxy/scaling/complete", 200, {
      eventId: event.id,
      status: "completed",
      observedReplicas: 3,
    });
    await call(operator, "POST", "/api/proxy/scaling/complete", 409, { eventId: event.id, status: "failed" });
    await call(operator, "GET", `/api/proxy/scaling/events/${id}?limit=1`, 200);
    await call(operator, "GET", `/api/proxy/scaling/summary/${id}?hoursBack=1`, 200);
    await call(operator, "GET", `/api/proxy/scaling/forecast/${id}?hoursBack=1&hoursAhead=1`, 200);
    await call(operator, "POST", "/api/proxy/scaling/simulate", 200, {
      trace: "t_seconds,requests\n0,600\n60,6000\n",
      policies: [{ name: "target", policy: { strategy: "targetTracking" } }],
    });
    await call(operator, "POST", "/api/proxy/scaling/simulate", 400, { trace: "x", policies: [] });
    await call(operator, "POST", `/api/proxy/scaling/simulate/${id}`, 200, {
      from: Date.now() - 3_600_000,
      to: Date.now(),
    });
    await call(admin, "GET", `/api/audit?entityId=${id}`, 200);
    await call(operator, "GET", "/api/audit", 200);

    await call(operator, "POST", `/api/proxy/scaling/evaluate/${id}`, 400, { currentReplicas: -1 });
    await call(operator, "GET", `/api/proxies/${crypto.randomUUID()}`, 404);
    await call(operator, "DELETE", `/api/proxy/scaling/policies/${id}`, 403);
    await call(admin, "DELETE", `/api/proxy/scaling/policies/${id}`, 200);
    await call(operator, "DELETE", `/api/proxies/${id}`, 200);

    const operations = api.router.getOperations().map((operation) => operation.operationId!);
    expect([...checked].sort()).toEqual([...operations].sort());
  });

  describe("the check has teeth", () => {
    it("rejects a real response whose field breaks its schema, and one with a field the schema lacks", async () => {
      const proxy = await operator.request("POST", "/api/proxies", { body: { name: unique("edge") } });
      expect(verdict("POST", "/api/proxies", proxy).valid).toBe(true);
      const wrongType = {
        ...proxy,
        body: { ...proxy.body, currentReplicas: String(proxy.body.currentReplicas) },
      };
      expect(verdict("POST", "/api/proxies", wrongType).errors?.[0]).toMatchObject({
        instancePath: "/currentReplicas",
      });
      const extraField = { ...proxy, body: { ...proxy.body, secret: "leaked" } };
      expect(verdict("POST", "/api/proxies", extraField).valid).toBe(false);
      const badDate = { ...proxy, body: { ...proxy.body, createdAt: "yesterday" } };
      expect(verdict("POST", "/api/proxies", badDate).errors?.[0]).toMatchObject({
        instancePath: "/createdAt",
      });
    });
  });
});
