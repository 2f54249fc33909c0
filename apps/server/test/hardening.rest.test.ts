import { sql } from "drizzle-orm";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import {
  type Client,
  client,
  forEachDriver,
  MID_LOAD,
  registerProxy,
  startTestServer,
  TEST_SECRET,
  token,
  unique,
} from "./support.ts";

const CONTROL_RULE = "must not contain control characters (NUL included: U+0000–U+001F, U+007F–U+009F)";
const MULTILINE_RULE =
  "must not contain control characters other than tab, line feed and carriage return (NUL included: U+0000–U+001F, U+007F–U+009F)";
const INTEGER_RULE = "must be at most 2147483647 (a PostgreSQL integer)";

const issuesOf = (body: { zodIssues?: Array<{ field: string; message: string }> }) =>
  (body.zodIssues ?? []).map((issue) => ({ field: issue.field, message: issue.message }));

/**
 * Every bound a boundary schema sets matches the column the value lands in: text PostgreSQL can store (no NUL,
 * no other control character, well-formed Unicode) and integers a PostgreSQL `integer` holds. Past them: a 400
 * naming the field and the rule, and nothing stored.
 */
forEachDriver("values refused at the edge by what PostgreSQL stores", (suite) => {
  let admin: Client;

  beforeAll(async () => {
    admin = client(suite().url, await token({ role: "admin", sub: unique("admin") }));
  });

  async function expectRefused(
    method: string,
    path: string,
    body: unknown,
    expected: { field: string; message: string },
  ) {
    const response = await admin.request(method, path, { body });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(issuesOf(response.body)).toContainEqual(expected);
  }

  describe("text with NUL or another control character", () => {
    it.each([
      ["a name with NUL", { name: "edge\u0000one" }, "name", CONTROL_RULE],
      ["a name with a tab", { name: "edge\tone" }, "name", CONTROL_RULE],
      ["a region with ESC", { name: "x", region: "eu\u001b[31m" }, "region", CONTROL_RULE],
      [
        "a region with an unpaired surrogate",
        { name: "x", region: "eu\ud800" },
        "region",
        "must be well-formed Unicode (no unpaired surrogate)",
      ],
      [
        "a webhook url with NUL",
        {
          name: "x",
          actuator: { kind: "webhook", url: "http://127.0.0.1:9/a\u0000", secret: "s".repeat(16) },
        },
        "actuator.url",
        CONTROL_RULE,
      ],
      [
        "a webhook secret with NUL",
        {
          name: "x",
          actuator: { kind: "webhook", url: "http://127.0.0.1:9/", secret: `${"s".repeat(16)}\u0000` },
        },
        "actuator.secret",
        CONTROL_RULE,
      ],
      [
        "a webhook header value with a line feed",
        {
          name: "x",
          actuator: {
            kind: "webhook",
            url: "http://127.0.0.1:9/",
            secret: "s".repeat(16),
            headers: { Authorization: "Bearer a\nX-Injected: 1" },
          },
        },
        "actuator.headers.Authorization",
        CONTROL_RULE,
      ],
      [
        "a command env value with NUL",
        {
          name: "x",
          actuator: { kind: "command", command: ["/bin/true", "{replicas}"], env: { A: "a\u0000" } },
        },
        "actuator.env.A",
        MULTILINE_RULE,
      ],
    ])(
      "refuses %s at registration (400 naming the field and the rule) and stores nothing",
      async (_case, body, field, message) => {
        const name = unique("refused");
        await expectRefused(
          "POST",
          "/api/proxies",
          { ...body, name: body.name === "x" ? name : body.name },
          { field, message },
        );
        const listed = await admin.request("GET", "/api/proxies?limit=500");
        expect(listed.body.items.map((proxy: { name: string }) => proxy.name)).not.toContain(name);
      },
    );

    it("keeps a line feed in free text (a scale's reason) but refuses NUL there", async () => {
      const proxyId = await registerProxy(admin);
      await expectRefused(
        "POST",
        `/api/proxy/scaling/execute/${proxyId}`,
        { newReplicaCount: 2, reason: "night\u0000shift" },
        { field: "reason", message: MULTILINE_RULE },
      );
      const scaled = await admin.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 2, reason: "night shift\nasked by ops" },
      });
      expect(scaled.status, JSON.stringify(scaled.body)).toBeLessThan(300);
    });

    it("refuses a sample whose instanceId has NUL, and an audit filter with NUL", async () => {
      const proxyId = await registerProxy(admin);
      await expectRefused(
        "POST",
        `/api/proxy/scaling/metrics/${proxyId}`,
        { ...MID_LOAD, instanceId: "pod\u0000a" },
        { field: "instanceId", message: CONTROL_RULE },
      );
      expect((await admin.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body.samples).toEqual([]);
      const audit = await admin.request("GET", "/api/audit?actorId=a%00b");
      expect(audit.status).toBe(400);
      expect(issuesOf(audit.body)).toContainEqual({ field: "actorId", message: CONTROL_RULE });
    });

    it("refuses a token whose sub has NUL with 401 naming the claim, where it was a 500", async () => {
      const signed = await new SignJWT({ role: "admin", tier: "enterprise" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("user\u0000x")
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(TEST_SECRET));
      const response = await client(suite().url, signed).request("POST", "/api/proxies", {
        body: { name: unique("sub") },
      });
      expect(response.status).toBe(401);
      expect(response.body.message).toContain(`sub: ${CONTROL_RULE}`);
    });
  });

  describe("durations past their bound (docs/engine.md)", () => {
    it.each([
      [
        "metricsMaxAgeSeconds of 2^52",
        { metricsMaxAgeSeconds: 2 ** 52 },
        "metricsMaxAgeSeconds",
        "must be at most 86400 (a day)",
      ],
      [
        "a scale-up cooldown over a day",
        { scaleUpCooldownSeconds: 86_401 },
        "scaleUpCooldownSeconds",
        "must be at most 86400 (a day)",
      ],
      [
        "a stabilization window over an hour",
        { behavior: { scaleDown: { stabilizationWindowSeconds: 3_601 } } },
        "behavior.scaleDown.stabilizationWindowSeconds",
        "must be at most 3600 (HPA's limit)",
      ],
    ])(
      "refuses %s at write (400 naming the field and the bound), and the proxy still evaluates",
      async (_case, body, field, message) => {
        const proxyId = await registerProxy(admin);
        await expectRefused("POST", `/api/proxy/scaling/policies/${proxyId}`, body, { field, message });
        expect((await admin.request("GET", `/api/proxy/scaling/policies/${proxyId}`)).body.source).not.toBe(
          "proxy",
        );
        expect(
          (await admin.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} })).status,
        ).toBe(200);
      },
    );

    it("evaluates a target-tracking policy whose target is 5e-324 against a huge rate (200, finite numbers)", async () => {
      const proxyId = await registerProxy(admin);
      const stored = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { strategy: "targetTracking", targetRequestRate: 5e-324 },
      });
      expect(stored.status, JSON.stringify(stored.body)).toBeLessThan(300);
      await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: { ...MID_LOAD, requestRate: 1e15 },
      });
      const evaluated = await admin.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} });
      expect(evaluated.status, JSON.stringify(evaluated.body)).toBe(200);
      expect(evaluated.body.recommendedReplicas).toBe(2 ** 31 - 1);
      for (const metric of evaluated.body.metrics) expect(Number.isFinite(metric.ratio)).toBe(true);
    });

    it("reads a policy stored before the bound (metricsMaxAgeSeconds 2^52 in the row) as the bound, and evaluates it", async () => {
      const proxyId = await registerProxy(admin);
      const stored = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { metricsMaxAgeSeconds: 120 },
      });
      expect(stored.status).toBeLessThan(300);
      const { database } = suite();
      await database.db.execute(
        sql`update proxy_scaling_policies set strategy_settings = jsonb_set(strategy_settings, '{metricsMaxAgeSeconds}', ${String(2 ** 52)}::jsonb) where proxy_id = ${proxyId}`,
      );
      await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
      const evaluated = await admin.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} });
      expect(evaluated.status, JSON.stringify(evaluated.body)).toBe(200);
      const read = await admin.request("GET", `/api/proxy/scaling/policies/${proxyId}`);
      expect(read.body.policy.metricsMaxAgeSeconds).toBe(86_400);
    });
  });

  describe("samples from the future (the clock-skew allowance, PROXYSCALE_MAX_CLOCK_SKEW_SECONDS)", () => {
    const SKEW_RULE =
      /^must not be more than 60 s ahead of the server's clock \(the clock-skew allowance, PROXYSCALE_MAX_CLOCK_SKEW_SECONDS\); it is \d+ s ahead$/;

    it.each([
      ["61 s ahead (epoch ms)", () => Date.now() + 61_000, SKEW_RULE],
      ["in year 9999 (ISO 8601)", () => "9999-12-31T23:59:59Z", SKEW_RULE],
      // Past what a timestamp holds at all: the schema's bound answers first.
      ["at 2^53 − 1 ms", () => 2 ** 53 - 1, /^must be at most 253402300799999 \(the end of year 9999\)$/],
    ])("refuses a sample %s: 400 naming recordedAt and the rule, nothing stored", async (_case, at, rule) => {
      const proxyId = await registerProxy(admin);
      const response = await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: { ...MID_LOAD, recordedAt: at() },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      expect(response.body.zodIssues).toHaveLength(1);
      expect(response.body.zodIssues[0].field).toBe("recordedAt");
      expect(response.body.zodIssues[0].message).toMatch(rule);
      expect((await admin.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body.samples).toEqual([]);
    });

    it("stores a sample within the allowance (30 s ahead) and one from the past", async () => {
      const proxyId = await registerProxy(admin);
      for (const recordedAt of [Date.now() + 30_000, Date.now() - 3_600_000]) {
        const response = await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
          body: { ...MID_LOAD, recordedAt },
        });
        expect(response.status, JSON.stringify(response.body)).toBe(201);
      }
    });

    it("names the batch's offending sample, and stores none of the batch", async () => {
      const proxyId = await registerProxy(admin);
      const response = await admin.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples: [{ ...MID_LOAD }, { ...MID_LOAD, recordedAt: Date.now() + 3_600_000 }] },
      });
      expect(response.status).toBe(400);
      expect(response.body.zodIssues.map((issue: { field: string }) => issue.field)).toEqual([
        "samples.1.recordedAt",
      ]);
      expect((await admin.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body.samples).toEqual([]);
    });

    it("takes its allowance from the server's config (PROXYSCALE_MAX_CLOCK_SKEW_SECONDS=5)", async () => {
      expect(loadConfig({}).maxClockSkewSeconds).toBe(60);
      const config = loadConfig({ PROXYSCALE_MAX_CLOCK_SKEW_SECONDS: "5" });
      const strict = await startTestServer(suite().database, {
        maxClockSkewSeconds: config.maxClockSkewSeconds,
      });
      try {
        const api = client(strict.url, await token({ role: "admin", sub: unique("admin") }));
        const proxyId = await registerProxy(api);
        const response = await api.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
          body: { ...MID_LOAD, recordedAt: Date.now() + 30_000 },
        });
        expect(response.status).toBe(400);
        expect(response.body.zodIssues[0].message).toMatch(/^must not be more than 5 s ahead/);
      } finally {
        await strict.close();
      }
      expect(() => loadConfig({ PROXYSCALE_MAX_CLOCK_SKEW_SECONDS: "-1" })).toThrow(
        /PROXYSCALE_MAX_CLOCK_SKEW_SECONDS/,
      );
    });
  });

  describe("measurements and times PostgreSQL can sum and hold", () => {
    it.each([
      [
        "a request rate of 1e308",
        { ...MID_LOAD, requestRate: 1e308 },
        "requestRate",
        "must be at most 1e15 (sums of samples must stay finite)",
      ],
      [
        "a custom metric of 1e308",
        { ...MID_LOAD, custom: { queue: 1e308 } },
        "custom.queue",
        "must be at most 1e15 (sums of samples must stay finite)",
      ],
      [
        "a recordedAt before 1970 (ISO 8601)",
        { ...MID_LOAD, recordedAt: "0000-01-01T00:00:00Z" },
        "recordedAt",
        "must not be before 1970-01-01T00:00:00Z",
      ],
    ])(
      "refuses a sample with %s (400 naming the field), where reads or the push were a 500",
      async (_case, body, field, message) => {
        const proxyId = await registerProxy(admin);
        await expectRefused("POST", `/api/proxy/scaling/metrics/${proxyId}`, body, { field, message });
      },
    );

    it("refuses a range past the end of year 9999 (400 naming to), where it was a 500", async () => {
      const proxyId = await registerProxy(admin);
      const response = await admin.request(
        "GET",
        `/api/proxy/scaling/metrics/${proxyId}/range?to=${2 ** 52}`,
      );
      expect(response.status).toBe(400);
      expect(issuesOf(response.body)).toContainEqual({
        field: "to",
        message: "must be at most 253402300799999 (the end of year 9999)",
      });
    });
  });

  describe("integers past a PostgreSQL integer", () => {
    it.each([
      ["a sample's replicas", "metrics", { ...MID_LOAD, replicas: 2 ** 31 }, "replicas"],
      [
        "a sample's unhealthyReplicas",
        "metrics",
        { ...MID_LOAD, unhealthyReplicas: 2 ** 53 - 1 },
        "unhealthyReplicas",
      ],
      [
        "a policy's scaleUpCooldownSeconds",
        "policy",
        { scaleUpCooldownSeconds: 2 ** 31 },
        "scaleUpCooldownSeconds",
      ],
      ["a policy's maxReplicas", "policy", { maxReplicas: 2 ** 31 }, "maxReplicas"],
      ["a policy's fallback replicas", "policy", { fallback: { replicas: 2 ** 31 } }, "fallback.replicas"],
      ["evaluate's currentReplicas", "evaluate", { currentReplicas: 2 ** 31 }, "currentReplicas"],
      [
        "a health report's unhealthyReplicas",
        "health",
        { health: "degraded", unhealthyReplicas: 2 ** 31 },
        "unhealthyReplicas",
      ],
    ])(
      "refuses %s of 2^31 or more (400 naming the field and the bound)",
      async (_case, target, body, field) => {
        const proxyId = await registerProxy(admin);
        const [method, path] = {
          metrics: ["POST", `/api/proxy/scaling/metrics/${proxyId}`],
          policy: ["POST", `/api/proxy/scaling/policies/${proxyId}`],
          evaluate: ["POST", `/api/proxy/scaling/evaluate/${proxyId}`],
          health: ["PUT", `/api/proxies/${proxyId}/health`],
        }[target] as [string, string];
        await expectRefused(method, path, body, { field, message: INTEGER_RULE });
      },
    );
  });
});
