/**
 * KEDA's activation for actuators without a front (here `webhook`): a fleet at 0 is scaled to 1 once the metric
 * source's request rate is above its activationThreshold, through a real control node and a real receiver.
 */
import { describe, expect, it } from "vitest";
import { LOW_LOAD } from "../support.ts";
import { fleetSuite, registerFleetProxy } from "./harness.ts";

const suite = fleetSuite("activation");

describe("activation from 0 on a webhook fleet (no buffering)", () => {
  it("stays at 0 while the pushed request rate is at or under the source's activationThreshold, and scales to 1 above it", async () => {
    const { database, node, receiver, admin, operator } = suite();
    const proxyId = await registerFleetProxy({
      db: database.db,
      operator,
      admin,
      receiver,
      replicas: 0,
      policy: { minReplicas: 0, maxReplicas: 4, strategy: "targetTracking", targetRequestRate: 100 },
    });
    const source = await operator.request("PATCH", `/api/proxies/${proxyId}`, {
      body: { metricsSource: { kind: "push", activationThreshold: 5 } },
    });
    expect(source.status, JSON.stringify(source.body)).toBe(200);
    const push = (requestRate: number) =>
      operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: { ...LOW_LOAD, requestRate },
      });

    expect((await push(5)).status).toBe(201);
    await node.control.idle();
    expect(receiver.calls.filter((call) => call.proxyId === proxyId)).toEqual([]);

    expect((await push(8)).status).toBe(201);
    await expect
      .poll(() => receiver.calls.filter((call) => call.proxyId === proxyId).map((call) => call.toReplicas))
      .toEqual([1]);
    await node.control.idle();
    const events = await admin.request("GET", `/api/proxy/scaling/events/${proxyId}?limit=5`);
    expect(events.body.items).toEqual([
      expect.objectContaining({
        previousReplicas: 0,
        newReplicas: 1,
        triggeredBy: "activation",
        reason: expect.stringContaining("request rate 8/s above activation threshold 5: raised to 1"),
      }),
    ]);
  });
});
