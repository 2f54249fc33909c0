/**
 * The monthly budget through the live control loop: a push over target on a budgeted proxy is scaled only to
 * what the rest of the month's budget affords, and the stored decision says the budget, not the load, set it.
 */
import { listDecisions } from "@proxyscale/db";
import { describe, expect, it, vi } from "vitest";
import { HIGH_LOAD } from "../support.ts";
import { fleetSuite, registerFleetProxy } from "./harness.ts";

const WAIT = { timeout: 20_000 };
const HOUR = 3_600_000;
const suite = fleetSuite("budget");

/** Hours from now to the end of this UTC month. */
function hoursLeftInMonth(now: number): number {
  const date = new Date(now);
  return (Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) - now) / HOUR;
}

describe("a monthly budget through the control loop", () => {
  it("scales a push over target only to the replicas the rest of the month affords, and says so", async () => {
    // At 1 per replica-hour, 3.5 replicas' worth of the month's remaining hours: the budget affords 3 (the
    // replica-hours already run since registration, seconds, do not bring it under 3).
    const monthlyBudget = Math.ceil(3.5 * hoursLeftInMonth(Date.now()));
    const { database, operator, receiver } = suite();
    const proxyId = await registerFleetProxy({
      ...suite(),
      db: database.db,
      policy: {
        strategy: "targetTracking",
        targetCpuPercent: 10,
        maxReplicas: 20,
        costPerReplicaHour: 1,
        monthlyBudget,
        timeZone: "UTC",
      },
      replicas: 1,
    });
    const pushed = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
      body: HIGH_LOAD,
    });
    expect(pushed.status).toBe(201);

    await expect.poll(() => receiver.callsFor(proxyId).map((call) => call.toReplicas), WAIT).toEqual([3]);
    const decision = await vi.waitFor(async () => {
      const scaled = (await listDecisions(database.db, { proxyId })).items.find(
        (item) => item.decision.desiredReplicas === 3,
      );
      expect(scaled).toBeDefined();
      return scaled!.decision;
    }, WAIT);
    expect(decision.recommendedReplicas).toBeGreaterThan(3);
    const budget = decision.limits.find((limit) => limit.kind === "budget");
    expect(budget).toMatchObject({ kind: "budget", value: 3, to: 3, monthlyBudget });
    expect(decision.explanation).toMatch(/budget/);
  });
});
