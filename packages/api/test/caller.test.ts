import { randomBytes } from "node:crypto";
import { type Database, type ScalingEventRecord, silentLogger } from "@proxyscale/db";
import { disposeDatabase, probePostgres, testDrivers } from "@proxyscale/db/testing";
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../src/auth.ts";
import { type ApiDeps, type ContextFactory, createContext } from "../src/context.ts";
import { createCaller } from "../src/root.ts";

const postgresAvailable = await probePostgres("@proxyscale/api");
const SECRET = `caller-secret-${randomBytes(16).toString("hex")}`;
const silent = silentLogger;
const HIGH_LOAD = {
  cpuPercent: 95,
  memoryPercent: 90,
  requestRate: 1500,
  avgLatencyMs: 40,
  errorRatePercent: 2,
};

const drivers = testDrivers(postgresAvailable, "caller");

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`tRPC caller over injected dependencies [${driver.name}]`, () => {
    let database: Database;
    let now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const submitted: ScalingEventRecord[] = [];
    let deps: ApiDeps;
    const statements: string[] = [];

    beforeAll(async () => {
      database = await driver.open({ logger: { logQuery: (query) => statements.push(query) } });
      deps = {
        db: database.db,
        clock: () => now,
        logger: silent,
        executor: { submit: (event) => submitted.push(event) },
        auth: { jwtSecret: SECRET },
      };
    });
    const factories: ContextFactory[] = [];
    const contextFor = (dependencies: ApiDeps) => {
      const factory = createContext(dependencies);
      factories.push(factory);
      return factory;
    };
    afterAll(async () => {
      for (const factory of factories) factory.close();
      await disposeDatabase(database);
    });

    async function callerFor(
      role: "viewer" | "operator" | "admin",
      sub = `user-${randomBytes(3).toString("hex")}`,
    ) {
      const bearer = await signToken({ sub, role, tier: "pro", secret: SECRET, now, expiresIn: "1h" });
      return createCaller(contextFor(deps)({ authorization: `Bearer ${bearer}` }));
    }

    it("refuses a caller without a token", async () => {
      const anonymous = createCaller(contextFor(deps)({}));
      await expect(anonymous.proxies.list({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    });

    it("evaluations that arrive together share one read of their proxies and one write of their decisions", async () => {
      const operator = await callerFor("operator");
      const proxies = await Promise.all(
        ["batch-a", "batch-b", "batch-c"].map((name) => operator.proxies.register({ name })),
      );
      for (const proxy of proxies) await operator.metrics.record({ proxyId: proxy.id, ...HIGH_LOAD });
      await operator.scaling.evaluate({ proxyId: proxies[0]!.id });
      statements.length = 0;
      const decisions = await Promise.all(
        Array.from({ length: 12 }, (_, index) =>
          operator.scaling.evaluate({ proxyId: proxies[index % 3]!.id }),
        ),
      );
      // One evaluation alone takes six statements (five reads, one insert): twelve would take 72.
      expect(statements.length).toBeLessThanOrEqual(12);
      expect(new Set(decisions.map((decision) => decision.decisionId)).size).toBe(12);
      expect(decisions.map((decision) => decision.proxyId)).toEqual(
        Array.from({ length: 12 }, (_, index) => proxies[index % 3]!.id),
      );
      const stored = await operator.scaling.decisions({ proxyId: proxies[1]!.id, limit: 50 });
      expect(stored.items).toHaveLength(4);
    });

    it("runs register → record → evaluate → execute → complete against the test database with the injected clock and executor", async () => {
      const operator = await callerFor("operator");
      const proxy = await operator.proxies.register({ name: "caller-proxy" });
      const recorded = await operator.metrics.record({ proxyId: proxy.id, ...HIGH_LOAD });
      expect(recorded.sample.at).toBe(now);

      now += 1_000;
      const decision = await operator.scaling.evaluate({ proxyId: proxy.id });
      expect(decision).toMatchObject({
        action: "scale_up",
        evaluatedAt: now,
        currentReplicas: 1,
        desiredReplicas: 2,
      });

      const event = await operator.scaling.execute({
        proxyId: proxy.id,
        newReplicaCount: decision.desiredReplicas,
      });
      expect(submitted.map((entry) => entry.id)).toContain(event.id);
      expect(event.status).toBe("pending");

      const finished = await operator.scaling.complete({
        eventId: event.id,
        status: "completed",
        observedReplicas: 2,
      });
      expect(finished.status).toBe("completed");
      expect((await operator.proxies.get({ proxyId: proxy.id })).currentReplicas).toBe(2);
    });

    it("validates input with core's schemas and maps db errors to tRPC codes", async () => {
      const operator = await callerFor("operator");
      const proxy = await operator.proxies.register({ name: "validated" });
      const invalid = operator.metrics.record({ proxyId: proxy.id, ...HIGH_LOAD, cpuPercent: 101 });
      await expect(invalid).rejects.toBeInstanceOf(TRPCError);
      await expect(invalid).rejects.toMatchObject({ code: "BAD_REQUEST" });
      await expect(operator.proxies.register({ name: "validated" })).rejects.toMatchObject({
        code: "CONFLICT",
      });
      const viewer = await callerFor("viewer");
      await expect(viewer.proxies.get({ proxyId: proxy.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(viewer.proxies.register({ name: "nope" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    });

    it("serves a range of only the asked fields over tRPC and refuses an empty list naming fields", async () => {
      const operator = await callerFor("operator");
      const proxy = await operator.proxies.register({ name: "ranged" });
      await operator.metrics.record({ proxyId: proxy.id, ...HIGH_LOAD, recordedAt: now - 1_000 });
      const range = await operator.metrics.range({ proxyId: proxy.id, points: 2, fields: ["requestRate"] });
      expect(range.columns).toEqual({ at: [expect.any(Number)], samples: [1], requestRate: [1500] });
      await expect(operator.metrics.range({ proxyId: proxy.id, fields: [] })).rejects.toMatchObject({
        code: "BAD_REQUEST",
        cause: {
          issues: [expect.objectContaining({ path: ["fields"], message: "must name at least 1 field" })],
        },
      });
    });

    it("checks token expiry against the injected clock", async () => {
      const bearer = await signToken({
        sub: "clocked",
        role: "viewer",
        tier: "free",
        secret: SECRET,
        now,
        expiresIn: 60,
      });
      const context = contextFor(deps);
      await expect(
        createCaller(context({ authorization: `Bearer ${bearer}` })).proxies.list({}),
      ).resolves.toBeDefined();
      now += 61_000;
      await expect(
        createCaller(context({ authorization: `Bearer ${bearer}` })).proxies.list({}),
      ).rejects.toMatchObject({
        code: "UNAUTHORIZED",
        message: "token has expired",
      });
    });
  });
}
