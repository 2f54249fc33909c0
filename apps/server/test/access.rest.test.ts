import { TIER_LIMITS } from "@proxyscale/core";
import { queryRows } from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Client,
  client,
  forEachDriver,
  HIGH_LOAD,
  MID_LOAD,
  registerProxy,
  startTestServer,
  token,
  unique,
} from "./support.ts";

forEachDriver("roles, tiers and ownership", (suite) => {
  let admin: Client;

  beforeAll(async () => {
    admin = client(suite().url, await token({ role: "admin", sub: unique("admin") }));
  });

  describe("another owner's proxy", () => {
    it("answers 404 on every endpoint and changes nothing", async () => {
      const owner = client(suite().url, await token({ role: "operator", sub: unique("owner") }));
      const intruder = client(suite().url, await token({ role: "operator", sub: unique("intruder") }));
      const proxyId = await registerProxy(owner);
      await owner.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD });
      const event = await owner.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 2 },
      });
      const before = {
        proxy: (await owner.request("GET", `/api/proxies/${proxyId}`)).body,
        events: (await owner.request("GET", `/api/proxy/scaling/events/${proxyId}`)).body,
        metrics: (await owner.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body,
        decisions: (await owner.request("GET", `/api/proxy/scaling/decisions/${proxyId}`)).body,
      };

      const attempts: Array<[string, string, unknown?]> = [
        ["GET", `/api/proxies/${proxyId}`],
        ["PATCH", `/api/proxies/${proxyId}`, { name: "stolen" }],
        ["DELETE", `/api/proxies/${proxyId}`],
        ["PUT", `/api/proxies/${proxyId}/health`, { health: "unhealthy", unhealthyReplicas: 1 }],
        ["GET", `/api/proxy/scaling/policies/${proxyId}`],
        ["POST", `/api/proxy/scaling/metrics/${proxyId}`, MID_LOAD],
        ["POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, { samples: [MID_LOAD] }],
        ["GET", `/api/proxy/scaling/metrics/${proxyId}`],
        ["GET", `/api/proxy/scaling/metrics/${proxyId}/range`],
        ["POST", `/api/proxy/scaling/evaluate/${proxyId}`],
        ["POST", `/api/proxy/scaling/execute/${proxyId}`, { newReplicaCount: 3 }],
        ["POST", "/api/proxy/scaling/complete", { eventId: event.body.id, status: "cancelled" }],
        ["GET", `/api/proxy/scaling/events/${proxyId}`],
        ["GET", `/api/proxy/scaling/summary/${proxyId}`],
        ["GET", `/api/proxy/scaling/decisions/${proxyId}`],
        ["GET", `/api/audit?entityId=${proxyId}`],
        ["GET", `/api/audit?entityId=${event.body.id}`],
      ];
      for (const [method, path, body] of attempts) {
        const response = await intruder.request(method, path, body === undefined ? {} : { body });
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(JSON.stringify(response.body), `${method} ${path} leaks no owner`).not.toContain("owner-");
      }
      const listed = await intruder.request("GET", "/api/proxies");
      expect(listed.body.items).toEqual([]);

      // The answer for someone else's proxy is the answer for a proxy that does not exist.
      const missing = await intruder.request("GET", "/api/proxies/00000000-0000-4000-8000-000000000000");
      const foreign = await intruder.request("GET", `/api/proxies/${proxyId}`);
      expect(foreign.body.code).toBe(missing.body.code);
      expect(foreign.body.message.replace(proxyId, "ID")).toBe(
        missing.body.message.replace(/[0-9a-f-]{36}/, "ID"),
      );

      expect({
        proxy: (await owner.request("GET", `/api/proxies/${proxyId}`)).body,
        events: (await owner.request("GET", `/api/proxy/scaling/events/${proxyId}`)).body,
        metrics: (await owner.request("GET", `/api/proxy/scaling/metrics/${proxyId}`)).body,
        decisions: (await owner.request("GET", `/api/proxy/scaling/decisions/${proxyId}`)).body,
      }).toEqual(before);
    });

    it("is visible to admins, who may act on it", async () => {
      const owner = client(suite().url, await token({ role: "operator", sub: unique("owner") }));
      const proxyId = await registerProxy(owner);
      expect((await admin.request("GET", `/api/proxies/${proxyId}`)).status).toBe(200);
      const listed = await admin.request("GET", "/api/proxies?limit=500");
      expect(listed.body.items.map((proxy: { id: string }) => proxy.id)).toContain(proxyId);
      const scaled = await admin.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 2 },
      });
      expect(scaled.status).toBe(202);
      expect(scaled.body.triggeredBy).toBe("admin");
    });
  });

  describe("roles", () => {
    it("lets a viewer read its own proxies and nothing more", async () => {
      const sub = unique("viewer");
      const operator = client(suite().url, await token({ role: "operator", sub }));
      const viewer = client(suite().url, await token({ role: "viewer", sub }));
      const proxyId = await registerProxy(operator);
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });

      for (const path of [
        `/api/proxies/${proxyId}`,
        `/api/proxy/scaling/policies/${proxyId}`,
        `/api/proxy/scaling/metrics/${proxyId}`,
        `/api/proxy/scaling/events/${proxyId}`,
        `/api/proxy/scaling/summary/${proxyId}`,
        `/api/proxy/scaling/decisions/${proxyId}`,
        "/api/policies/presets",
      ]) {
        expect((await viewer.request("GET", path)).status, path).toBe(200);
      }
      const writes: Array<[string, string, unknown?]> = [
        ["POST", "/api/proxies", { name: unique("viewer-proxy") }],
        ["PATCH", `/api/proxies/${proxyId}`, { name: "nope" }],
        ["DELETE", `/api/proxies/${proxyId}`],
        ["POST", `/api/proxy/scaling/metrics/${proxyId}`, MID_LOAD],
        ["POST", `/api/proxy/scaling/evaluate/${proxyId}`],
        ["POST", `/api/proxy/scaling/execute/${proxyId}`, { newReplicaCount: 2 }],
        ["PUT", `/api/proxies/${proxyId}/health`, { health: "degraded" }],
      ];
      for (const [method, path, body] of writes) {
        const response = await viewer.request(method, path, body === undefined ? {} : { body });
        expect(response.status, `${method} ${path}`).toBe(403);
        expect(response.body.message).toContain("requires role operator");
        expect(response.body.message).toContain("viewer");
      }
    });

    it("keeps policy management to admins", async () => {
      const operator = client(suite().url, await token({ role: "operator", sub: unique("operator") }));
      const proxyId = await registerProxy(operator);
      for (const [method, path] of [
        ["POST", `/api/proxy/scaling/policies/${proxyId}`],
        ["DELETE", `/api/proxy/scaling/policies/${proxyId}`],
        ["PUT", "/api/policies/environments/production"],
      ] as const) {
        const response = await operator.request(
          method,
          path,
          method === "DELETE" ? {} : { body: { maxReplicas: 4 } },
        );
        expect(response.status, `${method} ${path}`).toBe(403);
        expect(response.body.message).toBe("requires role admin or above; your token has role operator");
      }
      expect((await operator.request("GET", `/api/proxy/scaling/policies/${proxyId}`)).body.source).toBe(
        "default",
      );
    });

    it("lets only admins mark a scale as triggered by an admin", async () => {
      const operator = client(suite().url, await token({ role: "operator", sub: unique("operator") }));
      const proxyId = await registerProxy(operator);
      const response = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 2, triggeredBy: "admin" },
      });
      expect(response.status).toBe(403);
      expect(response.body.message).toContain("triggeredBy admin requires role admin");
    });
  });

  describe("tiers", () => {
    it("caps the proxies a free owner may register (403 naming maxProxiesPerOwner)", async () => {
      const free = client(suite().url, await token({ role: "operator", tier: "free", sub: unique("free") }));
      const cap = TIER_LIMITS.free.maxProxiesPerOwner;
      for (let index = 0; index < cap; index++) await registerProxy(free);
      const over = await free.request("POST", "/api/proxies", { body: { name: unique("one-too-many") } });
      expect(over.status).toBe(403);
      expect(over.body.message).toBe(
        `tier cap maxProxiesPerOwner: tier free allows at most ${cap}, requested ${cap + 1}`,
      );
      expect((await free.request("GET", "/api/proxies")).body.items).toHaveLength(cap);
    });

    it("lets exactly maxProxiesPerOwner of many concurrent registrations through (403 for the rest)", async () => {
      const sub = unique("racing");
      const free = client(suite().url, await token({ role: "operator", tier: "free", sub }));
      const cap = TIER_LIMITS.free.maxProxiesPerOwner;
      const attempts = 12;
      const responses = await Promise.all(
        Array.from({ length: attempts }, (_, index) =>
          free.request("POST", "/api/proxies", { body: { name: `${sub}-${index}` } }),
        ),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 201)).toHaveLength(cap);
      expect(statuses.filter((status) => status === 403)).toHaveLength(attempts - cap);
      for (const response of responses.filter((response) => response.status === 403)) {
        expect(response.body.message).toBe(
          `tier cap maxProxiesPerOwner: tier free allows at most ${cap}, requested ${cap + 1}`,
        );
      }
      expect((await free.request("GET", "/api/proxies")).body.items).toHaveLength(cap);
    });

    it("caps the replicas each tier may scale to (403 naming maxReplicasPerProxy)", async () => {
      for (const tier of ["free", "pro"] as const) {
        const user = client(suite().url, await token({ role: "operator", tier, sub: unique(tier) }));
        const proxyId = await registerProxy(user);
        const cap = TIER_LIMITS[tier].maxReplicasPerProxy;
        const policy = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
          body: { maxReplicas: cap },
        });
        expect(policy.status, tier).toBe(201);
        const over = await user.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
          body: { newReplicaCount: cap + 1 },
        });
        expect(over.status, tier).toBe(403);
        expect(over.body.message).toBe(
          `tier cap maxReplicasPerProxy: the owner's tier ${tier} allows at most ${cap}, requested ${cap + 1}`,
        );
        const within = await user.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
          body: { newReplicaCount: cap },
        });
        expect(within.status, tier).toBe(202);
      }
    });

    it("stores the registering owner's tier on the proxy", async () => {
      const pro = client(suite().url, await token({ role: "operator", tier: "pro", sub: unique("pro") }));
      const proxyId = await registerProxy(pro);
      expect((await pro.request("GET", `/api/proxies/${proxyId}`)).body.ownerTier).toBe("pro");
    });

    it("caps an admin's scale of a free owner's proxy by the owner's tier, not the admin's", async () => {
      const free = client(suite().url, await token({ role: "operator", tier: "free", sub: unique("free") }));
      const proxyId = await registerProxy(free);
      const cap = TIER_LIMITS.free.maxReplicasPerProxy;
      // The default policy allows up to 10, and the admin's enterprise tier far more: only the owner's tier refuses.
      const over = await admin.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: cap + 1 },
      });
      expect(over.status).toBe(403);
      expect(over.body.message).toBe(
        `tier cap maxReplicasPerProxy: the owner's tier free allows at most ${cap}, requested ${cap + 1}`,
      );
      expect((await free.request("GET", `/api/proxy/scaling/events/${proxyId}`)).body.items).toEqual([]);
    });

    it("caps an admin's evaluation of a free owner's proxy by the owner's tier", async () => {
      const free = client(suite().url, await token({ role: "operator", tier: "free", sub: unique("free") }));
      const proxyId = await registerProxy(free);
      await free.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD });
      const cap = TIER_LIMITS.free.maxReplicasPerProxy;
      for (const caller of [free, admin]) {
        const decision = await caller.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, {
          body: { currentReplicas: cap },
        });
        expect(decision.body).toMatchObject({ currentReplicas: cap, desiredReplicas: cap });
        expect(decision.body.limits).toContainEqual({ kind: "tierCap", value: cap, from: cap + 1, to: cap });
      }
    });

    it("refuses a proxy policy above its owner's tier cap, even from an enterprise admin", async () => {
      const free = client(suite().url, await token({ role: "operator", tier: "free", sub: unique("free") }));
      const proxyId = await registerProxy(free);
      const cap = TIER_LIMITS.free.maxReplicasPerProxy;
      const response = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { maxReplicas: 20 },
      });
      expect(response.status).toBe(403);
      expect(response.body.message).toBe(
        `tier cap maxReplicasPerProxy: the owner's tier free allows at most ${cap}, requested 20`,
      );
    });

    it("bounds an environment default policy (no owner) by the caller's tier", async () => {
      const freeAdmin = client(
        suite().url,
        await token({ role: "admin", tier: "free", sub: unique("free-admin") }),
      );
      const response = await freeAdmin.request("PUT", `/api/policies/environments/${unique("env")}`, {
        body: { maxReplicas: 20 },
      });
      expect(response.status).toBe(403);
      expect(response.body.message).toBe(
        `tier cap maxReplicasPerProxy: tier free allows at most ${TIER_LIMITS.free.maxReplicasPerProxy}, requested 20`,
      );
    });

    it("lets only admins change a proxy's owner tier, which then caps it", async () => {
      const sub = unique("free");
      const owner = client(suite().url, await token({ role: "operator", tier: "free", sub }));
      const proxyId = await registerProxy(owner);
      const cap = TIER_LIMITS.free.maxReplicasPerProxy;
      const selfUpgrade = await client(
        suite().url,
        await token({ role: "operator", tier: "enterprise", sub }),
      ).request("PATCH", `/api/proxies/${proxyId}`, { body: { ownerTier: "enterprise" } });
      expect(selfUpgrade.status).toBe(403);
      expect(selfUpgrade.body.message).toBe(
        "ownerTier: changing the owner's tier requires role admin; your token has role operator",
      );
      expect(
        (
          await owner.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
            body: { newReplicaCount: cap + 1 },
          })
        ).status,
      ).toBe(403);

      const upgraded = await admin.request("PATCH", `/api/proxies/${proxyId}`, {
        body: { ownerTier: "pro" },
      });
      expect(upgraded.status).toBe(200);
      expect(upgraded.body.ownerTier).toBe("pro");
      const scaled = await owner.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: cap + 1 },
      });
      expect(scaled.status).toBe(202);
      const audit = await admin.request("GET", `/api/audit?entityId=${proxyId}&limit=10`);
      const update = audit.body.items.find((entry: { action: string }) => entry.action === "proxy.update");
      expect(update).toMatchObject({ before: { ownerTier: "free" }, after: { ownerTier: "pro" } });
    });

    it("rate-limits a user once across servers that share the database, not once per server", async () => {
      const options = { requestsPerMinute: { free: 4 }, rateLimitSyncMs: 20 };
      const [first, second] = [
        await startTestServer(suite().database, options),
        await startTestServer(suite().database, options),
      ];
      const sub = unique("roaming");
      const bearer = await token({ role: "viewer", tier: "free", sub });
      const witnessSub = unique("witness");
      const witness = client(first.url, await token({ role: "viewer", tier: "free", sub: witnessSub }));
      /** Waits until the database holds `requests` admitted requests of `userId`, from all servers. */
      const told = async (requests: number, userId = sub) =>
        expect
          .poll(async () => {
            const rows = await queryRows<{ requests: number }>(
              suite().database.db,
              sql`select coalesce(sum(requests), 0)::int as requests from rate_limit_windows where user_id = ${userId}`,
            );
            return rows[0]!.requests;
          })
          .toBe(requests);
      try {
        for (let index = 0; index < 2; index++)
          expect((await client(first.url, bearer).request("GET", "/api/proxies")).status).toBe(200);
        await told(2);
        // The second server admits its first request before it has heard of the other two, then learns of them
        // (a user new to a server is charged the other servers' requests of the current minute).
        expect((await client(second.url, bearer).request("GET", "/api/proxies")).status).toBe(200);
        await told(3);
        const statuses: number[] = [];
        for (let index = 0; index < 3; index++)
          statuses.push((await client(second.url, bearer).request("GET", "/api/proxies")).status);
        expect(statuses).toEqual([200, 429, 429]);
        await told(4);
        // The first server's next exchange brings the second's requests into its bucket. Another user's requests
        // to the first server show when it has run: the first is stored by an exchange that started after the
        // four were (so it read them), the second only by a later exchange, which starts once that one is done.
        for (let witnessed = 1; witnessed <= 2; witnessed++) {
          expect((await witness.request("GET", "/api/proxies")).status).toBe(200);
          await told(witnessed, witnessSub);
        }
        expect((await client(first.url, bearer).request("GET", "/api/proxies")).status).toBe(429);
      } finally {
        await first.close();
        await second.close();
      }
    });

    it("rate-limits each user by tier (429) without affecting other users", async () => {
      const limited = await startTestServer(suite().database, { requestsPerMinute: { free: 3 } });
      try {
        const first = client(
          limited.url,
          await token({ role: "viewer", tier: "free", sub: unique("chatty") }),
        );
        const second = client(
          limited.url,
          await token({ role: "viewer", tier: "free", sub: unique("quiet") }),
        );
        const statuses: number[] = [];
        for (let index = 0; index < 5; index++)
          statuses.push((await first.request("GET", "/api/proxies")).status);
        expect(statuses).toEqual([200, 200, 200, 429, 429]);
        const refused = await first.request("GET", "/api/proxies");
        expect(refused.body.message).toContain("rate limit: tier free allows 3 requests per minute");
        expect((await second.request("GET", "/api/proxies")).status).toBe(200);
      } finally {
        await limited.close();
      }
    });
  });
});
