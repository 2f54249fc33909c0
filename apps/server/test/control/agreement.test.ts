import { computeLoadScore, DEFAULT_POLICY } from "@proxyscale/core";
import { type Database, insertSamples, listDecisions } from "@proxyscale/db";
import { disposeDatabase } from "@proxyscale/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Client, client, HIGH_LOAD, TEST_SECRET, testDriverList, token, unique } from "../support.ts";
import { FleetReceiver, registerFleetProxy } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/**
 * REST evaluate and the control loop call the same core decision on the same observed state, so for the same
 * proxy at the same instant they give the same decision: count, limits and explanation. Each case sets a state
 * up without a push (samples straight into the store, so nothing evaluates before the preview), asks REST
 * evaluate over HTTP, then has the loop evaluate the same state and compares what it stored.
 */
const RECONCILE_MS = 60_000;

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`REST evaluate and the control loop agree [${driver.name}]`, () => {
    let database: Database;
    let node: ControlNode;
    let receiver: FleetReceiver;
    let operator: Client;
    let admin: Client;
    // Both sides read this clock: the same instant for the preview and for the loop.
    let now = Date.now();

    beforeAll(async () => {
      database = await driver.open({ poolMax: 8 });
      receiver = await new FleetReceiver().start();
      node = await startControlNode(database, TEST_SECRET, {
        clock: () => now,
        reconcileIntervalMs: RECONCILE_MS,
        timers: false,
      });
      const operatorId = unique("agreement-operator");
      operator = client(node.url, await token({ role: "operator", sub: operatorId }));
      admin = client(node.url, await token({ role: "admin", sub: "agreement-admin" }));
    });

    afterAll(async () => {
      await node?.close();
      await receiver?.close();
      if (database) await disposeDatabase(database);
    });

    const proxyWith = (policy: Record<string, unknown>) =>
      registerFleetProxy({ db: database.db, operator, admin, receiver, policy });

    const store = (proxyId: string, ageMs: number) =>
      insertSamples(database.db, [
        {
          proxyId,
          sample: { instanceId: "r0", at: now - ageMs, ...HIGH_LOAD },
          loadScore: computeLoadScore(HIGH_LOAD, DEFAULT_POLICY),
        },
      ]);

    /** The preview over HTTP, then the loop's stored decision for the same state and instant. */
    async function bothDecisions(proxyId: string) {
      // Frozen from here on; caught up with the database's clock, which stamps the events it stores.
      now = Date.now();
      const preview = await operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} });
      expect(preview.status, JSON.stringify(preview.body)).toBe(200);
      await node.control.evaluate(proxyId);
      const stored = (await listDecisions(database.db, { proxyId })).items.find(
        (entry) => entry.triggeredBy === "auto",
      );
      expect(stored, "the loop stored a decision").toBeDefined();
      const { decisionId: _id, proxyId: _proxy, policySource: _source, ...fromRest } = preview.body;
      // Through JSON, as REST sent it: undefined fields drop out the same way.
      return { rest: fromRest, loop: JSON.parse(JSON.stringify(stored!.decision)) };
    }

    it("on a plain scale-up", async () => {
      const proxyId = await proxyWith({});
      await store(proxyId, 2_000);
      const { rest, loop } = await bothDecisions(proxyId);
      expect(rest).toMatchObject({ action: "scale_up", desiredReplicas: 3 });
      expect(loop).toEqual(rest);
      await node.control.idle();
    });

    it("with metrics stale past the fallback threshold", async () => {
      const proxyId = await proxyWith({ fallback: { failureThreshold: 2, replicas: 4 } });
      await store(proxyId, 5 * 60_000);
      const { rest, loop } = await bothDecisions(proxyId);
      expect(rest).toMatchObject({ action: "scale_up", desiredReplicas: 4 });
      expect(rest.limits).toContainEqual(expect.objectContaining({ kind: "fallback", to: 4 }));
      expect(loop).toEqual(rest);
      await node.control.idle();
    });

    it("with a scale already in flight", async () => {
      // No cooldown, so the scale in flight is what holds the decision.
      const proxyId = await proxyWith({ scaleUpCooldownSeconds: 0 });
      // A manual scale the fleet takes its time over: in flight while both decide.
      receiver.behaviourOf.set(proxyId, { delayMs: 2_000 });
      const executed = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 5, reason: "agreement test" },
      });
      expect(executed.status, JSON.stringify(executed.body)).toBe(202);
      await store(proxyId, 2_000);
      const { rest, loop } = await bothDecisions(proxyId);
      expect(rest.limits).toContainEqual(
        expect.objectContaining({ kind: "inFlight", eventId: executed.body.id, toReplicas: 5 }),
      );
      expect(rest).toMatchObject({ action: "none", desiredReplicas: 2 });
      expect(loop).toEqual(rest);
      await node.control.idle();
    });

    it("in dryRun", async () => {
      const proxyId = await proxyWith({ mode: "dryRun" });
      await store(proxyId, 2_000);
      const { rest, loop } = await bothDecisions(proxyId);
      expect(rest.limits).toContainEqual({ kind: "mode", mode: "dryRun", from: 3, to: 3 });
      expect(loop).toEqual(rest);
      await node.control.idle();
      expect(receiver.callsFor(proxyId)).toEqual([]);
    });

    it("when off", async () => {
      const proxyId = await proxyWith({ mode: "off" });
      await store(proxyId, 2_000);
      const { rest, loop } = await bothDecisions(proxyId);
      expect(rest).toMatchObject({ action: "none", recommendedReplicas: 3, desiredReplicas: 2 });
      expect(rest.limits).toContainEqual({ kind: "mode", mode: "off", from: 3, to: 2 });
      expect(loop).toEqual(rest);
      await node.control.idle();
      expect(receiver.callsFor(proxyId)).toEqual([]);
    });

    it("a preview never acts, whatever the mode", async () => {
      const proxyId = await proxyWith({});
      await store(proxyId, 2_000);
      now = Date.now();
      const preview = await operator.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} });
      expect(preview.body).toMatchObject({ action: "scale_up" });
      await node.control.idle();
      expect(receiver.callsFor(proxyId)).toEqual([]);
      expect((await operator.request("GET", `/api/proxy/scaling/events/${proxyId}`)).body.items).toEqual([]);
    });
  });
}
