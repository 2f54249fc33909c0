import { beforeAll, describe, expect, it } from "vitest";
import {
  type Client,
  client,
  forEachDriver,
  HIGH_LOAD,
  LOW_LOAD,
  MID_LOAD,
  registerProxy,
  token,
  unique,
} from "./support.ts";

const fields = (body: { zodIssues?: Array<{ field: string }> }) =>
  (body.zodIssues ?? []).map((issue) => issue.field);

forEachDriver("REST endpoints and status codes", (suite) => {
  let admin: Client;
  let operator: Client;
  let operatorId: string;

  beforeAll(async () => {
    admin = client(suite().url, await token({ role: "admin", sub: unique("admin") }));
    operatorId = unique("operator");
    operator = client(suite().url, await token({ role: "operator", sub: operatorId }));
  });

  describe("/api/proxies CRUD", () => {
    it("registers (201), reads, lists, updates and deletes a proxy, auditing each change", async () => {
      const created = await operator.request("POST", "/api/proxies", {
        body: { name: unique("edge"), environment: "staging", region: "eu-west-1" },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        ownerId: operatorId,
        environment: "staging",
        region: "eu-west-1",
      });
      const id = created.body.id as string;

      expect((await operator.request("GET", `/api/proxies/${id}`)).body.id).toBe(id);
      const listed = await operator.request("GET", "/api/proxies?limit=500");
      expect(listed.status).toBe(200);
      expect(listed.body.items.map((proxy: { id: string }) => proxy.id)).toContain(id);

      const renamed = await operator.request("PATCH", `/api/proxies/${id}`, {
        body: { name: "renamed-edge" },
      });
      expect(renamed.status).toBe(200);
      expect(renamed.body.name).toBe("renamed-edge");

      const deleted = await operator.request("DELETE", `/api/proxies/${id}`);
      expect(deleted.status).toBe(200);
      expect(deleted.body).toEqual({ proxyId: id, deleted: true });
      expect((await operator.request("GET", `/api/proxies/${id}`)).status).toBe(404);

      const audit = await admin.request("GET", `/api/audit?entityId=${id}`);
      const actions = audit.body.items.map((entry: { action: string }) => entry.action);
      expect(actions).toEqual(["proxy.delete", "proxy.update", "proxy.create"]);
      const update = audit.body.items[1];
      expect(update).toMatchObject({
        actorId: operatorId,
        before: { name: created.body.name },
        after: { name: "renamed-edge" },
      });
    });

    it("redacts actuator secrets in responses", async () => {
      const created = await operator.request("POST", "/api/proxies", {
        body: {
          name: unique("hooked"),
          actuator: { kind: "webhook", url: "http://127.0.0.1:9/scale", secret: "s3cr3t-value-long-enough" },
        },
      });
      expect(created.status).toBe(201);
      expect(JSON.stringify(created.body)).not.toContain("s3cr3t-value-long-enough");
      expect(created.body.actuator.kind).toBe("webhook");
    });

    it("answers 409 for a second proxy with the same name of the same owner", async () => {
      const name = unique("twin");
      expect((await operator.request("POST", "/api/proxies", { body: { name } })).status).toBe(201);
      const duplicate = await operator.request("POST", "/api/proxies", { body: { name } });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.message).toContain(name);
    });
  });

  describe("policies", () => {
    it("resolves the effective policy: proxy's own, else its environment's default, else the global default", async () => {
      const environment = unique("env").toLowerCase();
      const proxyId = await registerProxy(operator, { environment });
      expect((await operator.request("GET", `/api/proxy/scaling/policies/${proxyId}`)).body.source).toBe(
        "default",
      );

      const setDefault = await admin.request("PUT", `/api/policies/environments/${environment}`, {
        body: { minReplicas: 2, maxReplicas: 6 },
      });
      expect(setDefault.status).toBe(201);
      const replaced = await admin.request("PUT", `/api/policies/environments/${environment}`, {
        body: { minReplicas: 3, maxReplicas: 6 },
      });
      expect(replaced.status).toBe(200);
      const fromEnvironment = await operator.request("GET", `/api/proxy/scaling/policies/${proxyId}`);
      expect(fromEnvironment.body).toMatchObject({ source: "environment", policy: { minReplicas: 3 } });
      const environments = await operator.request("GET", "/api/policies/environments");
      expect(environments.body.items).toContainEqual(
        expect.objectContaining({ environment, policy: expect.objectContaining({ minReplicas: 3 }) }),
      );
      expect((await operator.request("GET", `/api/policies/environments/${environment}`)).status).toBe(200);
      expect((await operator.request("GET", "/api/policies/environments/nowhere-env")).status).toBe(404);

      await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { minReplicas: 1, maxReplicas: 4 },
      });
      const own = await operator.request("GET", `/api/proxy/scaling/policies/${proxyId}`);
      expect(own.body).toMatchObject({ source: "proxy", policy: { maxReplicas: 4 } });

      const removed = await admin.request("DELETE", `/api/proxy/scaling/policies/${proxyId}`);
      expect(removed.status).toBe(200);
      expect(removed.body.source).toBe("environment");
      expect((await admin.request("DELETE", `/api/proxy/scaling/policies/${proxyId}`)).status).toBe(404);
    });

    it("lists presets and validates a policy without saving it", async () => {
      const presets = await operator.request("GET", "/api/policies/presets");
      expect(presets.status).toBe(200);
      expect(presets.body.presets.map((preset: { name: string }) => preset.name)).toEqual(
        expect.arrayContaining(["balanced", "aggressive", "conservative"]),
      );

      const valid = await operator.request("POST", "/api/policies/validate", {
        body: { policy: { maxReplicas: 4 } },
      });
      expect(valid.status).toBe(200);
      expect(valid.body).toMatchObject({
        valid: true,
        issues: [],
        policy: { maxReplicas: 4, minReplicas: 1 },
      });

      const invalid = await operator.request("POST", "/api/policies/validate", {
        body: { policy: { minReplicas: 9, maxReplicas: 2, targetCpuPercent: 0 } },
      });
      expect(invalid.status).toBe(200);
      expect(invalid.body.valid).toBe(false);
      expect(invalid.body.issues.map((issue: { field: string }) => issue.field).sort()).toEqual([
        "maxReplicas",
        "targetCpuPercent",
      ]);
    });
  });

  describe("metrics", () => {
    it("records a batch in one request (201) and serves a downsampled range", async () => {
      const proxyId = await registerProxy(operator);
      const now = Date.now();
      const samples = Array.from({ length: 120 }, (_, index) => ({
        ...MID_LOAD,
        cpuPercent: index % 100,
        instanceId: `replica-${index % 3}`,
        recordedAt: now - (120 - index) * 1000,
      }));
      const batch = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples },
      });
      expect(batch.status).toBe(201);
      expect(batch.body.recorded).toBe(120);

      const latest = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}`);
      expect(latest.body.samples.map((sample: { instanceId: string }) => sample.instanceId).sort()).toEqual([
        "replica-0",
        "replica-1",
        "replica-2",
      ]);

      const range = await operator.request(
        "GET",
        `/api/proxy/scaling/metrics/${proxyId}/range?from=${now - 130_000}&to=${now}&points=12`,
      );
      expect(range.status).toBe(200);
      const { columns } = range.body;
      expect(columns.at.length).toBeGreaterThan(0);
      expect(columns.at.length).toBeLessThanOrEqual(12);
      for (const values of Object.values(columns)) expect(values).toHaveLength(columns.at.length);
      expect(columns.samples.reduce((sum: number, samples: number) => sum + samples, 0)).toBe(120);
    });

    it("serves only the range fields named by repeated `fields` query parameters, with the full range's values", async () => {
      const proxyId = await registerProxy(operator);
      const now = Date.now();
      const samples = Array.from({ length: 30 }, (_, index) => ({
        ...MID_LOAD,
        cpuPercent: index,
        replicas: 1 + (index % 4),
        recordedAt: now - (30 - index) * 1000,
      }));
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, { body: { samples } });
      const window = `/api/proxy/scaling/metrics/${proxyId}/range?from=${now - 40_000}&to=${now}&points=5`;
      const full = (await operator.request("GET", window)).body.columns;

      const some = await operator.request("GET", `${window}&fields=replicas&fields=cpuPercent`);
      expect(some.status).toBe(200);
      expect(some.body.columns).toEqual({
        at: full.at,
        samples: full.samples,
        cpuPercent: full.cpuPercent,
        replicas: full.replicas,
      });
      const one = await operator.request("GET", `${window}&fields=loadScore`);
      expect(one.body.columns).toEqual({ at: full.at, samples: full.samples, loadScore: full.loadScore });
    });

    it.each([
      [
        "an unknown name",
        "fields=cpuPercent&fields=cpu",
        "fields.1",
        "must be one of cpuPercent, memoryPercent",
      ],
      ["a name twice", "fields=loadScore&fields=loadScore", "fields", "must not name a field twice"],
      ["an empty name", "fields=", "fields.0", "must be one of cpuPercent, memoryPercent"],
    ])("refuses range fields with %s (400 naming fields and the rule)", async (_case, query, field, rule) => {
      const proxyId = await registerProxy(operator);
      const response = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}/range?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.zodIssues).toEqual([
        expect.objectContaining({ field, message: expect.stringContaining(rule) }),
      ]);
    });

    it("rejects an empty batch and one over 5,000 samples, naming the field", async () => {
      const proxyId = await registerProxy(operator);
      const empty = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples: [] },
      });
      expect(empty.status).toBe(400);
      expect(fields(empty.body)).toEqual(["samples"]);
      const oversized = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples: Array.from({ length: 5_001 }, () => LOW_LOAD) },
      });
      expect(oversized.status).toBe(400);
      expect(fields(oversized.body)).toEqual(["samples"]);
    });

    it("takes replicas and unhealthyReplicas from samples into the evaluation", async () => {
      const proxyId = await registerProxy(operator);
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: { ...HIGH_LOAD, replicas: 4, unhealthyReplicas: 1 },
      });
      expect((await operator.request("GET", `/api/proxies/${proxyId}`)).body.currentReplicas).toBe(4);
      const decision = await operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`);
      expect(decision.body.currentReplicas).toBe(4);
      expect(decision.body.action).toBe("scale_up");
    });
  });

  describe("concurrent evaluations", () => {
    it("answers each with its own stored decision, and another owner's proxy with 404, when they share a batch", async () => {
      const own = [await registerProxy(operator), await registerProxy(operator)];
      const stranger = client(suite().url, await token({ role: "operator", sub: unique("stranger") }));
      const foreign = await registerProxy(stranger);
      for (const proxyId of [...own, foreign]) {
        await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD });
      }
      const requests = [
        ...Array.from({ length: 30 }, (_, index) => own[index % 2]!),
        ...Array.from({ length: 5 }, () => foreign),
      ];
      const answers = await Promise.all(
        requests.map((proxyId) => operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`)),
      );
      expect(answers.slice(30).map((answer) => answer.status)).toEqual([404, 404, 404, 404, 404]);
      const decided = answers.slice(0, 30);
      expect(decided.map((answer) => answer.status)).toEqual(Array(30).fill(200));
      decided.forEach((answer, index) => {
        expect(answer.body).toMatchObject({ proxyId: requests[index], action: "scale_up" });
      });
      const ids = decided.map((answer) => answer.body.decisionId as string);
      expect(new Set(ids).size).toBe(30);
      const stored = await Promise.all(
        own.map((proxyId) => operator.request("GET", `/api/proxy/scaling/decisions/${proxyId}?limit=100`)),
      );
      const storedIds = stored.flatMap((page) => page.body.items.map((item: { id: string }) => item.id));
      expect(storedIds.sort()).toEqual([...ids].sort());
      const foreignDecisions = await stranger.request("GET", `/api/proxy/scaling/decisions/${foreign}`);
      expect(foreignDecisions.body.items).toEqual([]);
    });
  });

  describe("scaling lifecycle", () => {
    it("executes (202), refuses a second scale in flight (409), completes (200) once, then 409", async () => {
      const proxyId = await registerProxy(operator);
      const event = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 3, reason: "launch" },
      });
      expect(event.status).toBe(202);
      expect((await operator.request("GET", `/api/proxies/${proxyId}`)).body.desiredReplicas).toBe(3);

      const second = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 4 },
      });
      expect(second.status).toBe(409);
      expect(second.body.message).toContain(event.body.id);

      const completed = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: event.body.id, status: "completed", observedReplicas: 3 },
      });
      expect(completed.status).toBe(200);
      expect(completed.body).toMatchObject({ status: "completed", durationMs: expect.any(Number) });
      expect((await operator.request("GET", `/api/proxies/${proxyId}`)).body.currentReplicas).toBe(3);

      const again = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: event.body.id, status: "failed", error: "late" },
      });
      expect(again.status).toBe(409);

      const unknown = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: "00000000-0000-4000-8000-000000000000", status: "completed" },
      });
      expect(unknown.status).toBe(404);
    });

    it("records a failed scale with its error and audits manual scales with before and after", async () => {
      const proxyId = await registerProxy(operator);
      const event = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 2 },
      });
      const failed = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: event.body.id, status: "failed", error: "quota exceeded" },
      });
      expect(failed.body).toMatchObject({ status: "failed", error: "quota exceeded" });
      const audit = await operator.request("GET", `/api/audit?entityId=${event.body.id}`);
      expect(audit.status).toBe(200);
      expect(audit.body.items).toHaveLength(1);
      expect(audit.body.items[0]).toMatchObject({
        action: "scaling.execute",
        actorId: operatorId,
        before: { proxyId, desiredReplicas: 1 },
        after: { id: event.body.id, newReplicas: 2 },
      });
      const mine = await operator.request("GET", "/api/audit?limit=500");
      expect(mine.body.items.every((entry: { actorId: string }) => entry.actorId === operatorId)).toBe(true);
      expect(mine.body.items.map((entry: { entityId: string }) => entry.entityId)).toContain(event.body.id);
    });

    it("counts unhealthy replicas out of capacity once health is set", async () => {
      const proxyId = await registerProxy(operator);
      const health = await operator.request("PUT", `/api/proxies/${proxyId}/health`, {
        body: { health: "degraded", unhealthyReplicas: 1 },
      });
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ health: "degraded", unhealthyReplicas: 1 });
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
      const decision = await operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, {
        body: { currentReplicas: 2 },
      });
      expect(decision.body.limits.map((limit: { kind: string }) => limit.kind)).toContain("health");
      const audit = await operator.request("GET", `/api/audit?entityId=${proxyId}`);
      expect(audit.body.items[0]).toMatchObject({
        action: "proxy.health.set",
        before: { health: "healthy", unhealthyReplicas: 0 },
        after: { health: "degraded", unhealthyReplicas: 1 },
      });
      const invalid = await operator.request("PUT", `/api/proxies/${proxyId}/health`, {
        body: { health: "sick" },
      });
      expect(invalid.status).toBe(400);
      expect(fields(invalid.body)).toEqual(["health"]);
    });
  });

  describe("malformed requests", () => {
    it("answers 400 for bad JSON, naming the problem", async () => {
      const proxyId = await registerProxy(operator);
      const response = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        rawBody: "{cpu: 1",
      });
      expect(response.status).toBe(400);
      expect(response.body.message).toContain("JSON");
      const notObject = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        rawBody: "[1,2]",
      });
      expect(notObject.status).toBe(400);
    });

    it("answers 400 for wrong types and unknown fields without coercing them", async () => {
      const proxyId = await registerProxy(operator);
      const response = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: { ...MID_LOAD, cpuPercent: "50", memoryPercent: null, requestRate: true, cpu: 1 },
      });
      expect(response.status).toBe(400);
      expect(fields(response.body).sort()).toEqual(["cpu", "cpuPercent", "memoryPercent", "requestRate"]);
      const query = await operator.request("GET", `/api/proxy/scaling/events/${proxyId}?limit=lots`);
      expect(query.status).toBe(400);
      expect(fields(query.body)).toEqual(["limit"]);
    });

    it("answers 413 for a body over the limit and 415 for a body that is not JSON", async () => {
      const proxyId = await registerProxy(operator);
      const huge = JSON.stringify({ samples: [{ ...MID_LOAD, instanceId: "x".repeat(5 * 1024 * 1024) }] });
      const tooLarge = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        rawBody: huge,
      });
      expect(tooLarge.status).toBe(413);
      const text = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        rawBody: "cpuPercent=5",
        headers: { "content-type": "text/plain" },
      });
      expect(text.status).toBe(415);
    });

    it("answers 404 for unknown routes and 405 for a known path with the wrong method", async () => {
      expect((await operator.request("GET", "/api/nothing-here")).status).toBe(404);
      const proxyId = await registerProxy(operator);
      const wrongMethod = await operator.request("GET", `/api/proxy/scaling/execute/${proxyId}`);
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get("allow")).toBe("POST");
    });

    it("changes nothing when given bad input", async () => {
      const proxyId = await registerProxy(operator);
      await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, { body: { maxReplicas: 6 } });
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
      const snapshot = async () => ({
        proxy: (await operator.request("GET", `/api/proxies/${proxyId}`)).body,
        policy: (await operator.request("GET", `/api/proxy/scaling/policies/${proxyId}`)).body,
        metrics: (await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body,
        events: (await operator.request("GET", `/api/proxy/scaling/events/${proxyId}`)).body,
        decisions: (await operator.request("GET", `/api/proxy/scaling/decisions/${proxyId}`)).body,
        audit: (await admin.request("GET", `/api/audit?entityId=${proxyId}`)).body,
      });
      const before = await snapshot();

      const bad: Array<[string, string, Record<string, unknown>]> = [
        ["POST", `/api/proxy/scaling/policies/${proxyId}`, { body: { minReplicas: 4, maxReplicas: 2 } }],
        ["POST", `/api/proxy/scaling/policies/${proxyId}`, { body: { maxReplicas: 3, surprise: true } }],
        ["POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: { ...MID_LOAD, errorRatePercent: 101 } }],
        [
          "POST",
          `/api/proxy/scaling/metrics/${proxyId}/batch`,
          { body: { samples: [MID_LOAD, { cpuPercent: 1 }] } },
        ],
        ["POST", `/api/proxy/scaling/metrics/${proxyId}`, { rawBody: "{not json" }],
        ["POST", `/api/proxy/scaling/execute/${proxyId}`, { body: { newReplicaCount: 7 } }],
        [
          "POST",
          `/api/proxy/scaling/execute/${proxyId}`,
          { body: { newReplicaCount: 2, triggeredBy: "auto" } },
        ],
        ["POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: { currentReplicas: -1 } }],
        ["PATCH", `/api/proxies/${proxyId}`, { body: { name: "" } }],
        ["PATCH", `/api/proxies/${proxyId}`, { body: { actuator: { kind: "teleport" } } }],
        ["PUT", `/api/proxies/${proxyId}/health`, { body: { health: "unhealthy", unhealthyReplicas: -2 } }],
      ];
      for (const [method, path, options] of bad) {
        const response = await admin.request(method, path, options);
        expect(response.status, `${method} ${path} ${JSON.stringify(options)}`).toBe(400);
        expect(response.body.zodIssues?.length ?? 0, `${method} ${path} names a field`).toBeGreaterThan(0);
      }
      expect(await snapshot()).toEqual(before);
    });
  });
});
