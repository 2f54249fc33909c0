import { type Database, listDecisions, schema } from "@proxyscale/db";
import { disposeDatabase } from "@proxyscale/db/testing";
import { count, inArray, max } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Client, client, MID_LOAD, TEST_SECRET, testDriverList, token, unique } from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/**
 * Nothing is lost on the push path under load: every push answered 201 is stored, and every proxy that pushed
 * is evaluated by the control loop at least once after its last push (its newest decision is no older than its
 * newest sample), however the pushes were batched and coalesced.
 */
const PROXIES = 100;
const PUSHES = 2_000;
const CONCURRENCY = 40;

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`the push path under load [${driver.name}]`, () => {
    let database: Database;
    let node: ControlNode;
    let operator: Client;

    beforeAll(async () => {
      database = await driver.open({ poolMax: 10 });
      node = await startControlNode(database, TEST_SECRET, { timers: false });
      operator = client(node.url, await token({ role: "operator", sub: unique("fleet-owner") }));
    });

    afterAll(async () => {
      await node?.close();
      if (database) await disposeDatabase(database);
    });

    it("stores every accepted push and evaluates every proxy after its last push", async () => {
      const proxyIds: string[] = [];
      for (let index = 0; index < PROXIES; index++) {
        const created = await operator.request("POST", "/api/proxies", { body: { name: unique("fleet") } });
        expect(created.status).toBe(201);
        proxyIds.push(created.body.id as string);
      }
      let next = 0;
      let accepted = 0;
      const statuses = new Map<number, number>();
      const sender = async () => {
        while (next < PUSHES) {
          const index = next++;
          const response = await operator.request(
            "POST",
            `/api/proxy/scaling/metrics/${proxyIds[index % PROXIES]}`,
            { body: { ...MID_LOAD, instanceId: `r${index % 3}`, cpuPercent: 40 + (index % 30) } },
          );
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status === 201) accepted += 1;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, sender));
      expect(Object.fromEntries(statuses)).toEqual({ 201: PUSHES });
      await node.control.idle();

      const metrics = schema.proxyLoadMetrics;
      const [stored] = await database.db
        .select({ samples: count() })
        .from(metrics)
        .where(inArray(metrics.proxyId, proxyIds));
      expect(stored!.samples).toBe(accepted);

      const newest = await database.db
        .select({ proxyId: metrics.proxyId, at: max(metrics.recordedAt) })
        .from(metrics)
        .where(inArray(metrics.proxyId, proxyIds))
        .groupBy(metrics.proxyId);
      expect(newest).toHaveLength(PROXIES);
      const late: string[] = [];
      for (const { proxyId, at } of newest) {
        const [decision] = (await listDecisions(database.db, { proxyId, limit: 1 })).items;
        if (decision?.triggeredBy !== "auto" || decision.evaluatedAt < at!) late.push(proxyId);
      }
      expect(late, "proxies whose newest sample no loop decision followed").toEqual([]);
    });
  });
}
