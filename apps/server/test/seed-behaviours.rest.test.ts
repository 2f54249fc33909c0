import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Client,
  client,
  forEachDriver,
  HIGH_LOAD,
  LOW_LOAD,
  MID_LOAD,
  registerProxy,
  TEST_SECRET,
  token,
} from "./support.ts";

/** The seed's 23 tests, grouped and named as the seed names them, each through the REST paths over HTTP. */
forEachDriver("seed behaviours through REST", (suite) => {
  let admin: Client;
  let operator: Client;

  beforeAll(async () => {
    admin = client(suite().url, await token({ role: "admin", sub: "seed-admin" }));
    operator = client(suite().url, await token({ role: "operator", sub: "seed-operator" }));
  });

  const policyPath = (proxyId: string) => `/api/proxy/scaling/policies/${proxyId}`;
  const metricsPath = (proxyId: string) => `/api/proxy/scaling/metrics/${proxyId}`;
  const evaluatePath = (proxyId: string) => `/api/proxy/scaling/evaluate/${proxyId}`;
  const executePath = (proxyId: string) => `/api/proxy/scaling/execute/${proxyId}`;

  async function proxyWithPolicy(policy: Record<string, unknown> = {}): Promise<string> {
    const proxyId = await registerProxy(operator);
    if (Object.keys(policy).length > 0) {
      const stored = await admin.request("POST", policyPath(proxyId), { body: policy });
      expect(stored.status).toBe(201);
    }
    return proxyId;
  }

  function fieldsOf(body: { zodIssues?: Array<{ field: string }> }): string[] {
    return (body.zodIssues ?? []).map((issue) => issue.field);
  }

  describe("Scaling Policy Management", () => {
    it("Create policy with valid configuration", async () => {
      const proxyId = await proxyWithPolicy();
      const created = await admin.request("POST", policyPath(proxyId), {
        body: { minReplicas: 2, maxReplicas: 8, scaleUpThreshold: 75, scaleDownThreshold: 25 },
      });
      expect(created.status).toBe(201);
      expect(created.body.policy).toMatchObject({ minReplicas: 2, maxReplicas: 8, scaleUpThreshold: 75 });
      expect(created.body.policy.targetCpuPercent).toBe(70);

      const read = await operator.request("GET", policyPath(proxyId));
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ source: "proxy", policy: { minReplicas: 2, maxReplicas: 8 } });

      const updated = await admin.request("POST", policyPath(proxyId), {
        body: { minReplicas: 3, maxReplicas: 8 },
      });
      expect(updated.status).toBe(200);
      expect(updated.body.policy.minReplicas).toBe(3);
    });

    it("Reject invalid minReplicas", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await admin.request("POST", policyPath(proxyId), { body: { minReplicas: -1 } });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toContain("minReplicas");
    });

    it("Reject maxReplicas < minReplicas", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await admin.request("POST", policyPath(proxyId), {
        body: { minReplicas: 5, maxReplicas: 2 },
      });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toEqual(["maxReplicas"]);
      expect(response.body.zodIssues[0].message).toContain("minReplicas");
    });

    it("Reject invalid CPU percent", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await admin.request("POST", policyPath(proxyId), { body: { targetCpuPercent: 150 } });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toEqual(["targetCpuPercent"]);
    });

    it("Reject invalid threshold configuration", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await admin.request("POST", policyPath(proxyId), {
        body: { scaleUpThreshold: 40, scaleDownThreshold: 60 },
      });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toEqual(["scaleDownThreshold"]);
      const stored = await admin.request("GET", policyPath(proxyId));
      expect(stored.body.source).toBe("default");
    });
  });

  describe("Load Metrics Recording", () => {
    it("Record metrics with valid data", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", metricsPath(proxyId), { body: MID_LOAD });
      expect(response.status).toBe(201);
      expect(response.body.sample).toMatchObject(MID_LOAD);
      expect(typeof response.body.loadScore).toBe("number");
      const latest = await operator.request("GET", metricsPath(proxyId));
      expect(latest.status).toBe(200);
      expect(latest.body.samples).toHaveLength(1);
      expect(latest.body.samples[0]).toMatchObject({ cpuPercent: 50, loadScore: response.body.loadScore });
    });

    it("Reject metrics with missing fields", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", metricsPath(proxyId), { body: { cpuPercent: 50 } });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body).sort()).toEqual(
        ["avgLatencyMs", "errorRatePercent", "memoryPercent", "requestRate"].sort(),
      );
    });

    it("Calculate load score correctly", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", metricsPath(proxyId), { body: MID_LOAD });
      // 0.4·50 + 0.3·60 + 0.2·(500/1000·100) + 0.1·2
      expect(response.body.loadScore).toBeCloseTo(48.2, 6);
    });

    it("Cap load score at 100", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", metricsPath(proxyId), {
        body: {
          cpuPercent: 100,
          memoryPercent: 100,
          requestRate: 50_000,
          avgLatencyMs: 900,
          errorRatePercent: 100,
        },
      });
      expect(response.status).toBe(201);
      expect(response.body.loadScore).toBe(100);
    });
  });

  describe("Scaling Evaluation", () => {
    it("No scaling when load within thresholds", async () => {
      const proxyId = await proxyWithPolicy();
      await operator.request("POST", metricsPath(proxyId), { body: MID_LOAD });
      const response = await operator.request("POST", evaluatePath(proxyId));
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ action: "none", currentReplicas: 1, desiredReplicas: 1 });
      expect(response.body.loadScore).toBeCloseTo(48.2, 6);
      expect(response.body.explanation).toEqual(expect.any(String));
    });

    it("Recommend scale up when load exceeds threshold", async () => {
      const proxyId = await proxyWithPolicy();
      await operator.request("POST", metricsPath(proxyId), { body: HIGH_LOAD });
      const response = await operator.request("POST", evaluatePath(proxyId));
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ action: "scale_up", currentReplicas: 1, desiredReplicas: 2 });
      const stored = await operator.request("GET", `/api/proxy/scaling/decisions/${proxyId}`);
      expect(stored.body.items[0].id).toBe(response.body.decisionId);
    });

    it("Recommend scale down when load below threshold", async () => {
      const proxyId = await proxyWithPolicy();
      await operator.request("POST", metricsPath(proxyId), { body: LOW_LOAD });
      const response = await operator.request("POST", evaluatePath(proxyId), {
        body: { currentReplicas: 3 },
      });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ action: "scale_down", currentReplicas: 3, desiredReplicas: 2 });
    });

    it("Respect minimum replicas when scaling down", async () => {
      const proxyId = await proxyWithPolicy({ minReplicas: 2, maxReplicas: 10 });
      await operator.request("POST", metricsPath(proxyId), { body: LOW_LOAD });
      const response = await operator.request("POST", evaluatePath(proxyId), {
        body: { currentReplicas: 2 },
      });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ action: "none", currentReplicas: 2, desiredReplicas: 2 });
      expect(response.body.limits.map((limit: { kind: string }) => limit.kind)).toContain("minReplicas");
    });

    it("Respect maximum replicas when scaling up", async () => {
      const proxyId = await proxyWithPolicy({ minReplicas: 1, maxReplicas: 3 });
      await operator.request("POST", metricsPath(proxyId), { body: HIGH_LOAD });
      const response = await operator.request("POST", evaluatePath(proxyId), {
        body: { currentReplicas: 3 },
      });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ action: "none", currentReplicas: 3, desiredReplicas: 3 });
      expect(response.body.limits.map((limit: { kind: string }) => limit.kind)).toContain("maxReplicas");
    });
  });

  describe("Scaling Execution", () => {
    it("Execute scaling with valid parameters", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", executePath(proxyId), {
        body: { newReplicaCount: 4, reason: "traffic spike expected", triggeredBy: "manual" },
      });
      expect(response.status).toBe(202);
      expect(response.body).toMatchObject({
        proxyId,
        eventType: "scale_up",
        previousReplicas: 1,
        newReplicas: 4,
        triggeredBy: "manual",
        status: "pending",
        reason: "traffic spike expected",
      });
      expect(response.body.id).toEqual(expect.any(String));
    });

    it("Reject scaling with invalid replica count", async () => {
      const proxyId = await proxyWithPolicy({ minReplicas: 1, maxReplicas: 5 });
      for (const newReplicaCount of [-1, 2.5, "three", 6]) {
        const response = await operator.request("POST", executePath(proxyId), {
          body: { newReplicaCount, reason: "bad" },
        });
        expect(response.status, `newReplicaCount ${newReplicaCount}`).toBe(400);
        expect(fieldsOf(response.body)).toEqual(["newReplicaCount"]);
      }
      const events = await operator.request("GET", `/api/proxy/scaling/events/${proxyId}`);
      expect(events.body.items).toEqual([]);
    });
  });

  describe("Scaling Event Completion", () => {
    it("Reject invalid status", async () => {
      const proxyId = await proxyWithPolicy();
      const event = await operator.request("POST", executePath(proxyId), { body: { newReplicaCount: 2 } });
      const response = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: event.body.id, status: "done" },
      });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toEqual(["status"]);
      const events = await operator.request("GET", `/api/proxy/scaling/events/${proxyId}`);
      expect(events.body.items[0].status).toBe("pending");
    });

    it("Reject missing eventId", async () => {
      const response = await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { status: "completed" },
      });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body)).toEqual(["eventId"]);
    });
  });

  describe("Scaling History and Summary", () => {
    it("Retrieve scaling events", async () => {
      const proxyId = await proxyWithPolicy();
      const first = await operator.request("POST", executePath(proxyId), { body: { newReplicaCount: 3 } });
      await operator.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: first.body.id, status: "completed", observedReplicas: 3 },
      });
      const second = await operator.request("POST", executePath(proxyId), { body: { newReplicaCount: 2 } });
      const all = await operator.request("GET", `/api/proxy/scaling/events/${proxyId}`);
      expect(all.status).toBe(200);
      expect(all.body.items.map((event: { id: string }) => event.id)).toEqual([
        second.body.id,
        first.body.id,
      ]);
      expect(all.body.items[1]).toMatchObject({ status: "completed", eventType: "scale_up" });
      expect(all.body.items[0]).toMatchObject({
        status: "pending",
        eventType: "scale_down",
        previousReplicas: 3,
      });

      const page = await operator.request("GET", `/api/proxy/scaling/events/${proxyId}?limit=1`);
      expect(page.body.items).toHaveLength(1);
      const next = await operator.request(
        "GET",
        `/api/proxy/scaling/events/${proxyId}?limit=1&cursor=${encodeURIComponent(page.body.nextCursor)}`,
      );
      expect(next.body.items[0].id).toBe(first.body.id);
    });

    it("Retrieve scaling summary", async () => {
      const proxyId = await proxyWithPolicy();
      await operator.request("POST", metricsPath(proxyId), { body: MID_LOAD });
      await operator.request("POST", metricsPath(proxyId), { body: HIGH_LOAD });
      await operator.request("POST", executePath(proxyId), { body: { newReplicaCount: 2 } });
      const response = await operator.request("GET", `/api/proxy/scaling/summary/${proxyId}?hoursBack=6`);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        proxyId,
        hoursBack: 6,
        events: { total: 1, byType: { scale_up: 1, scale_down: 0 }, byStatus: { pending: 1 } },
        samples: 2,
      });
      expect(response.body.loadScore.max).toBeCloseTo(0.4 * 95 + 0.3 * 90 + 0.2 * 100 + 0.1 * 2, 6);
      const defaults = await operator.request("GET", `/api/proxy/scaling/summary/${proxyId}`);
      expect(defaults.body.hoursBack).toBe(24);
    });
  });

  describe("Error Handling", () => {
    it("Throw error when proxyId missing", async () => {
      const missing = await operator.request("POST", "/api/proxy/scaling/evaluate/");
      expect(missing.status).toBe(404);
      const malformed = await operator.request("POST", "/api/proxy/scaling/evaluate/not-a-uuid");
      expect(malformed.status).toBe(400);
      expect(fieldsOf(malformed.body)).toEqual(["proxyId"]);
    });

    it("Throw error when userId missing", async () => {
      const proxyId = await proxyWithPolicy();
      const anonymous = await operator.request("POST", evaluatePath(proxyId), { token: null });
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.message).toContain("Authorization");
      const withoutSubject = await new SignJWT({ role: "operator", tier: "pro" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(TEST_SECRET));
      const noSubject = await operator.request("POST", evaluatePath(proxyId), { token: withoutSubject });
      expect(noSubject.status).toBe(401);
      expect(noSubject.body.message).toContain("sub");
    });

    it("Throw error when metrics invalid", async () => {
      const proxyId = await proxyWithPolicy();
      const response = await operator.request("POST", metricsPath(proxyId), {
        body: { ...MID_LOAD, cpuPercent: 150, requestRate: -3 },
      });
      expect(response.status).toBe(400);
      expect(fieldsOf(response.body).sort()).toEqual(["cpuPercent", "requestRate"]);
      const latest = await operator.request("GET", metricsPath(proxyId));
      expect(latest.body.samples).toEqual([]);
    });
  });
});
