import { DEFAULT_POLICY, parsePolicy } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  CapExceededError,
  ConflictError,
  countProxies,
  createProxy,
  type Db,
  deleteEnvironmentPolicy,
  deletePolicy,
  deleteProxy,
  existingProxyIds,
  getEffectivePolicy,
  getEnvironmentPolicy,
  getPolicy,
  getProxy,
  listAudit,
  listAutomaticProxyIds,
  listEnvironmentPolicies,
  listProxies,
  loadObservedStates,
  NotFoundError,
  openDatabase,
  setEnvironmentPolicy,
  setObservedReplicas,
  setProxyHealth,
  updateProxy,
  upsertPolicy,
  violatedConstraint,
} from "../src/index.ts";
import { forEachDriver, inFreshSchema, POSTGRES_URL, unique } from "./drivers.ts";

forEachDriver("proxies and policies", ({ database, driver }) => {
  const db = () => database().db;

  /** Handles on the same data: on PostgreSQL two more pools, so registrations really run at once. */
  async function concurrentHandles(): Promise<{ dbs: Db[]; close(): Promise<void> }> {
    if (driver.name === "pglite") return { dbs: [db()], close: async () => {} };
    const others = await Promise.all(
      [0, 1].map(() =>
        openDatabase({
          driver: "postgres",
          url: POSTGRES_URL,
          pgSchema: database().schema,
          poolMax: 6,
          migrate: false,
        }),
      ),
    );
    return {
      dbs: others.map((other) => other.db),
      close: async () => {
        await Promise.all(others.map((other) => other.close()));
      },
    };
  }

  describe("proxies", () => {
    it("creates a proxy with defaults and audits it with the after state", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "edge", actorId: ownerId });
      expect(proxy).toMatchObject({
        ownerId,
        name: "edge",
        environment: "production",
        region: null,
        actuator: { kind: "none", config: {} },
        currentReplicas: 1,
        desiredReplicas: 1,
        health: "healthy",
        unhealthyReplicas: 0,
      });
      expect(proxy.createdAt).toBeInstanceOf(Date);
      const audit = await listAudit(db(), { entityId: proxy.id });
      expect(audit.items).toHaveLength(1);
      expect(audit.items[0]).toMatchObject({ actorId: ownerId, action: "proxy.create", before: null });
      expect((audit.items[0]!.after as { name: string }).name).toBe("edge");
    });

    it("redacts actuator secrets in the audit log but stores them on the proxy", async () => {
      const ownerId = unique("owner");
      const secret = "a-webhook-secret-of-some-length";
      const proxy = await createProxy(db(), {
        ownerId,
        name: "hooked",
        actuator: {
          kind: "webhook",
          config: { url: "http://hooks.test/scale", secret, headers: { Authorization: "b" } },
        },
        actorId: ownerId,
      });
      expect(proxy.actuator.config.secret).toBe(secret);
      const [entry] = (await listAudit(db(), { entityId: proxy.id })).items;
      const after = entry!.after as { actuator: { kind: string; config: Record<string, unknown> } };
      expect(after.actuator.kind).toBe("webhook");
      expect(after.actuator.config).toMatchObject({
        url: "http://hooks.test/scale",
        secret: "[redacted]",
        headers: { Authorization: "[redacted]" },
      });
      expect(JSON.stringify(entry)).not.toContain(secret);
    });

    it("redacts every value of an actuator config core cannot parse", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), {
        ownerId,
        name: "odd",
        actuator: { kind: "command", config: { token: "tok-123", anything: "x" } },
        actorId: ownerId,
      });
      const [entry] = (await listAudit(db(), { entityId: proxy.id })).items;
      expect((entry!.after as { actuator: unknown }).actuator).toEqual({
        kind: "command",
        config: { token: "[redacted]", anything: "[redacted]" },
      });
    });

    it("refuses a second proxy with the same name for the same owner with ConflictError", async () => {
      const ownerId = unique("owner");
      await createProxy(db(), { ownerId, name: "dup", actorId: ownerId });
      await expect(createProxy(db(), { ownerId, name: "dup", actorId: ownerId })).rejects.toBeInstanceOf(
        ConflictError,
      );
      const other = await createProxy(db(), { ownerId: unique("owner"), name: "dup", actorId: "x" });
      expect(other.name).toBe("dup");
      expect(await countProxies(db(), { ownerId })).toBe(1);
    });

    it("refuses a proxy past maxProxiesPerOwner with CapExceededError, writing nothing", async () => {
      const ownerId = unique("owner");
      for (const name of ["a", "b"]) {
        await createProxy(db(), { ownerId, ownerTier: "pro", name, actorId: ownerId, maxProxiesPerOwner: 2 });
      }
      const refused = createProxy(db(), {
        ownerId,
        ownerTier: "pro",
        name: "c",
        actorId: ownerId,
        maxProxiesPerOwner: 2,
      });
      await expect(refused).rejects.toBeInstanceOf(CapExceededError);
      await expect(refused).rejects.toMatchObject({
        cap: "maxProxiesPerOwner",
        tier: "pro",
        allowed: 2,
        requested: 3,
        message: "tier cap maxProxiesPerOwner: tier pro allows at most 2, requested 3",
      });
      expect(await countProxies(db(), { ownerId })).toBe(2);
      expect((await listAudit(db(), { actorId: ownerId, limit: 10 })).items).toHaveLength(2);
      // Another owner's count is their own.
      const other = unique("owner");
      await createProxy(db(), { ownerId: other, name: "a", actorId: other, maxProxiesPerOwner: 1 });
      expect(await countProxies(db(), { ownerId: other })).toBe(1);
    });

    it("lets exactly maxProxiesPerOwner of many concurrent registrations of one owner succeed", async () => {
      const { dbs, close } = await concurrentHandles();
      try {
        const cap = 4;
        const attempts = 16;
        const ownerId = unique("owner");
        const outcomes = await Promise.allSettled(
          Array.from({ length: attempts }, (_, index) =>
            createProxy(dbs[index % dbs.length]!, {
              ownerId,
              name: `racer-${index}`,
              actorId: ownerId,
              maxProxiesPerOwner: cap,
            }),
          ),
        );
        const created = outcomes.filter((outcome) => outcome.status === "fulfilled");
        const refused = outcomes.flatMap((outcome) =>
          outcome.status === "rejected" ? [outcome.reason] : [],
        );
        expect(created).toHaveLength(cap);
        expect(refused).toHaveLength(attempts - cap);
        for (const error of refused) expect(error).toBeInstanceOf(CapExceededError);
        expect(await countProxies(db(), { ownerId })).toBe(cap);
      } finally {
        await close();
      }
    });

    it("hides another owner's proxy from get, update and delete", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "mine", actorId: ownerId });
      expect(await getProxy(db(), { id: proxy.id, ownerId: "someone-else" })).toBeNull();
      expect((await getProxy(db(), { id: proxy.id, ownerId }))?.id).toBe(proxy.id);
      expect((await getProxy(db(), { id: proxy.id }))?.id).toBe(proxy.id);
      await expect(
        updateProxy(db(), { id: proxy.id, ownerId: "someone-else", patch: { name: "x" }, actorId: "x" }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        deleteProxy(db(), { id: proxy.id, ownerId: "someone-else", actorId: "x" }),
      ).rejects.toBeInstanceOf(NotFoundError);
      expect(await getProxy(db(), { id: "not-a-uuid" })).toBeNull();
    });

    it("updates a proxy and audits before and after", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "old", actorId: ownerId });
      const updated = await updateProxy(db(), {
        id: proxy.id,
        ownerId,
        patch: { name: "new", region: "eu-west-1", desiredReplicas: 4 },
        actorId: "admin-1",
      });
      expect(updated).toMatchObject({
        name: "new",
        region: "eu-west-1",
        desiredReplicas: 4,
        environment: "production",
      });
      expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(proxy.updatedAt.getTime());
      const [entry] = (await listAudit(db(), { entityId: proxy.id, limit: 1 })).items;
      expect(entry).toMatchObject({ action: "proxy.update", actorId: "admin-1" });
      expect((entry!.before as { name: string }).name).toBe("old");
      expect((entry!.after as { name: string }).name).toBe("new");
    });

    it("deletes a proxy with its policy by cascade and audits it", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "gone", actorId: ownerId });
      await upsertPolicy(db(), { proxyId: proxy.id, policy: DEFAULT_POLICY, actorId: ownerId });
      const deleted = await deleteProxy(db(), { id: proxy.id, ownerId, actorId: ownerId });
      expect(deleted.id).toBe(proxy.id);
      expect(await getProxy(db(), { id: proxy.id })).toBeNull();
      expect(await getPolicy(db(), { proxyId: proxy.id })).toBeNull();
      const [entry] = (await listAudit(db(), { entityId: proxy.id, limit: 1 })).items;
      expect(entry).toMatchObject({ action: "proxy.delete", after: null });
      await expect(deleteProxy(db(), { id: proxy.id, actorId: ownerId })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    });

    it("tells which of a list of ids still name a proxy, ignoring deleted ones and non-uuids", async () => {
      const ownerId = unique("owner");
      const kept = await createProxy(db(), { ownerId, name: "kept", actorId: ownerId });
      const deleted = await createProxy(db(), { ownerId, name: "deleted", actorId: ownerId });
      await deleteProxy(db(), { id: deleted.id, actorId: ownerId });
      expect(await existingProxyIds(db(), { proxyIds: [kept.id, deleted.id, "not-a-uuid"] })).toEqual(
        new Set([kept.id]),
      );
      expect(await existingProxyIds(db(), { proxyIds: [] })).toEqual(new Set());
    });

    it("pages proxies newest first with a cursor, scoped to the owner", async () => {
      const ownerId = unique("owner");
      const created = [];
      for (let i = 0; i < 5; i++)
        created.push(await createProxy(db(), { ownerId, name: `p${i}`, actorId: ownerId }));
      const first = await listProxies(db(), { ownerId, limit: 2 });
      const second = await listProxies(db(), { ownerId, limit: 2, cursor: first.nextCursor });
      const third = await listProxies(db(), { ownerId, limit: 2, cursor: second.nextCursor });
      const names = [...first.items, ...second.items, ...third.items].map((proxy) => proxy.name);
      expect(names).toEqual(["p4", "p3", "p2", "p1", "p0"]);
      expect(third.nextCursor).toBeNull();
      expect(await countProxies(db(), { ownerId })).toBe(5);
    });

    it("stores the owner's tier (free by default), changes it by update, and refuses an unknown tier", async () => {
      const ownerId = unique("owner");
      const free = await createProxy(db(), { ownerId, name: "free", actorId: ownerId });
      expect(free.ownerTier).toBe("free");
      const pro = await createProxy(db(), { ownerId, ownerTier: "pro", name: "pro", actorId: ownerId });
      expect((await getProxy(db(), { id: pro.id }))?.ownerTier).toBe("pro");
      const upgraded = await updateProxy(db(), {
        id: free.id,
        patch: { ownerTier: "enterprise" },
        actorId: "admin-1",
      });
      expect(upgraded.ownerTier).toBe("enterprise");
      const [entry] = (await listAudit(db(), { entityId: free.id, limit: 1 })).items;
      expect(entry).toMatchObject({
        action: "proxy.update",
        before: { ownerTier: "free" },
        after: { ownerTier: "enterprise" },
      });
      await expect(
        db().execute(sql`update proxies set owner_tier = 'platinum' where id = ${free.id}`),
      ).rejects.toSatisfy((error) => violatedConstraint(error)?.constraint === "proxies_owner_tier_valid");
    });

    it("records health and observed replicas", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "h", actorId: ownerId });
      const degraded = await setProxyHealth(db(), { id: proxy.id, health: "degraded", unhealthyReplicas: 2 });
      expect(degraded).toMatchObject({ health: "degraded", unhealthyReplicas: 2 });
      const observed = await setObservedReplicas(db(), { id: proxy.id, currentReplicas: 7 });
      expect(observed.currentReplicas).toBe(7);
      await expect(
        setObservedReplicas(db(), { id: "00000000-0000-4000-8000-000000000000", currentReplicas: 1 }),
      ).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  describe("policies", () => {
    const custom = parsePolicy({
      minReplicas: 2,
      maxReplicas: 20,
      scaleUpThreshold: 75,
      strategy: "targetTracking",
      targetLatencyMs: 120,
      customMetricTargets: { queue_depth: 50 },
      behavior: { scaleDown: { stabilizationWindowSeconds: 600 } },
    });

    it("round-trips a full policy through columns and jsonb", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "p", actorId: ownerId });
      const first = await upsertPolicy(db(), { proxyId: proxy.id, policy: custom, actorId: "admin" });
      expect(first.created).toBe(true);
      expect(first.policy).toEqual(custom);
      expect(await getPolicy(db(), { proxyId: proxy.id })).toEqual(custom);
      const second = await upsertPolicy(db(), {
        proxyId: proxy.id,
        policy: { ...custom, maxReplicas: 30 },
        actorId: "admin",
      });
      expect(second).toEqual({ policy: { ...custom, maxReplicas: 30 }, created: false });
      const audit = (await listAudit(db(), { entityId: proxy.id, entityType: "policy" })).items;
      expect(audit.map((entry) => entry.action)).toEqual(["policy.update", "policy.create"]);
      expect((audit[0]!.before as { maxReplicas: number }).maxReplicas).toBe(20);
      expect((audit[0]!.after as { maxReplicas: number }).maxReplicas).toBe(30);
    });

    it("keeps the seed's columns consistent with the stored policy", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "p", actorId: ownerId });
      await upsertPolicy(db(), { proxyId: proxy.id, policy: custom, actorId: "admin" });
      const { proxyScalingPolicies } = await import("../src/schema/index.ts");
      const { eq } = await import("drizzle-orm");
      const [row] = await db()
        .select()
        .from(proxyScalingPolicies)
        .where(eq(proxyScalingPolicies.proxyId, proxy.id));
      expect(row).toMatchObject({
        ownerId,
        createdBy: "admin",
        minReplicas: 2,
        maxReplicas: 20,
        targetCpuPercent: 70,
        scaleUpThreshold: 75,
        scaleDownThreshold: 30,
        scaleUpCooldownSeconds: 60,
        scaleDownCooldownSeconds: 300,
        strategy: "targetTracking",
      });
      expect(row!.behavior.scaleDown.stabilizationWindowSeconds).toBe(600);
      expect(row!.strategySettings).toMatchObject({
        targetLatencyMs: 120,
        customMetricTargets: { queue_depth: 50 },
      });
    });

    it("rejects an invalid policy before writing anything", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "p", actorId: ownerId });
      await expect(
        upsertPolicy(db(), { proxyId: proxy.id, policy: { ...custom, minReplicas: 50 }, actorId: "admin" }),
      ).rejects.toThrow(/maxReplicas/);
      expect(await getPolicy(db(), { proxyId: proxy.id })).toBeNull();
    });

    it("throws NotFoundError for the policy of an unknown proxy", async () => {
      await expect(
        upsertPolicy(db(), { proxyId: "00000000-0000-4000-8000-000000000000", policy: custom, actorId: "a" }),
      ).rejects.toBeInstanceOf(NotFoundError);
    });

    it("resolves the effective policy: proxy, then environment, then default", async () => {
      await inFreshSchema(database(), async (tx) => {
        const proxy = await createProxy(tx, {
          ownerId: "o",
          name: "p",
          environment: "staging",
          actorId: "o",
        });
        expect(await getEffectivePolicy(tx, { proxyId: proxy.id })).toEqual({
          policy: DEFAULT_POLICY,
          source: "default",
        });
        const staging = parsePolicy({ maxReplicas: 4 });
        expect(
          (await setEnvironmentPolicy(tx, { environment: "staging", policy: staging, actorId: "admin" }))
            .created,
        ).toBe(true);
        expect(await getEffectivePolicy(tx, { proxyId: proxy.id })).toEqual({
          policy: staging,
          source: "environment",
        });
        await upsertPolicy(tx, { proxyId: proxy.id, policy: custom, actorId: "admin" });
        expect(await getEffectivePolicy(tx, { proxyId: proxy.id })).toEqual({
          policy: custom,
          source: "proxy",
        });
        await deletePolicy(tx, { proxyId: proxy.id, actorId: "admin" });
        expect((await getEffectivePolicy(tx, { proxyId: proxy.id }))?.source).toBe("environment");
        expect(await getEffectivePolicy(tx, { proxyId: "00000000-0000-4000-8000-000000000000" })).toBeNull();
      });
    });

    it("applies one effective-policy rule everywhere: the observed state, the effective policy and the reconcile list agree", async () => {
      await inFreshSchema(database(), async (tx) => {
        const auto = parsePolicy({ mode: "auto" });
        const off = parsePolicy({ mode: "off" });
        await setEnvironmentPolicy(tx, { environment: "runs", policy: auto, actorId: "admin" });
        await setEnvironmentPolicy(tx, { environment: "paused", policy: off, actorId: "admin" });
        const cases = [
          { name: "own off over environment auto", environment: "runs", own: off, mode: "off" },
          {
            name: "own dryRun over environment off",
            environment: "paused",
            own: parsePolicy({ mode: "dryRun" }),
            mode: "dryRun",
          },
          { name: "environment off", environment: "paused", own: null, mode: "off" },
          { name: "environment auto", environment: "runs", own: null, mode: "auto" },
          { name: "the default", environment: "elsewhere", own: null, mode: DEFAULT_POLICY.mode },
        ];
        const ids: string[] = [];
        for (const entry of cases) {
          const proxy = await createProxy(tx, {
            ownerId: "o",
            name: entry.name,
            environment: entry.environment,
            actorId: "o",
          });
          if (entry.own) await upsertPolicy(tx, { proxyId: proxy.id, policy: entry.own, actorId: "admin" });
          ids.push(proxy.id);
        }
        const observed = await loadObservedStates(tx, {
          proxyIds: ids,
          now: Date.now(),
          historySeconds: 60,
          reconcileIntervalMs: 10_000,
        });
        const listed = await listAutomaticProxyIds(tx, { shards: [0], shardCount: 1, limit: 100 });
        for (const [index, entry] of cases.entries()) {
          const id = ids[index]!;
          const effective = await getEffectivePolicy(tx, { proxyId: id });
          expect(effective?.policy.mode, entry.name).toBe(entry.mode);
          expect(observed.get(id)?.policy, entry.name).toEqual(effective?.policy);
          expect(observed.get(id)?.policySource, entry.name).toBe(effective?.source);
          expect(listed.includes(id), entry.name).toBe(entry.mode !== "off");
        }
      });
    });

    it("sets, lists and deletes environment policies with audit entries", async () => {
      await inFreshSchema(database(), async (tx) => {
        const prod = parsePolicy({ minReplicas: 3 });
        await setEnvironmentPolicy(tx, { environment: "production", policy: prod, actorId: "admin" });
        const updated = await setEnvironmentPolicy(tx, {
          environment: "production",
          policy: { ...prod, maxReplicas: 12 },
          actorId: "admin",
        });
        expect(updated.created).toBe(false);
        await setEnvironmentPolicy(tx, { environment: "dev", policy: DEFAULT_POLICY, actorId: "admin" });
        const list = await listEnvironmentPolicies(tx);
        expect(list.map((entry) => [entry.environment, entry.policy.maxReplicas])).toEqual([
          ["dev", 10],
          ["production", 12],
        ]);
        expect(await getEnvironmentPolicy(tx, { environment: "staging" })).toBeNull();
        await deleteEnvironmentPolicy(tx, { environment: "dev", actorId: "admin" });
        expect(await getEnvironmentPolicy(tx, { environment: "dev" })).toBeNull();
        await expect(
          deleteEnvironmentPolicy(tx, { environment: "dev", actorId: "admin" }),
        ).rejects.toBeInstanceOf(NotFoundError);
        const actions = (await listAudit(tx, { entityType: "environment_policy" })).items.map(
          (entry) => entry.action,
        );
        expect(actions.sort()).toEqual([
          "environment_policy.create",
          "environment_policy.create",
          "environment_policy.delete",
          "environment_policy.update",
        ]);
      });
    });

    it("deletePolicy of a proxy without one throws NotFoundError", async () => {
      const ownerId = unique("owner");
      const proxy = await createProxy(db(), { ownerId, name: "p", actorId: ownerId });
      await expect(deletePolicy(db(), { proxyId: proxy.id, actorId: "a" })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    });
  });
});
