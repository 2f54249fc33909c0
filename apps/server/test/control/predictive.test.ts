import type { PredictiveBasis } from "@proxyscale/core";
import { listDecisions } from "@proxyscale/db";
import { storeDailyRollups } from "@proxyscale/db/testing";
import { describe, expect, it, vi } from "vitest";
import { MID_LOAD } from "../support.ts";
import { fleetSuite, registerFleetProxy } from "./harness.ts";

const WAIT = { timeout: 20_000 };
const suite = fleetSuite("predictive");

async function latestBasis(proxyId: string): Promise<PredictiveBasis> {
  return vi.waitFor(async () => {
    const [latest] = (await listDecisions(suite().database.db, { proxyId })).items;
    expect(latest?.decision.basis?.strategy).toBe("predictive");
    return latest!.decision.basis as PredictiveBasis;
  }, WAIT);
}

describe("predictive policy through the control loop", () => {
  it("forecasts from the stored per-minute rollups and records it in the decision", async () => {
    const { database, operator, receiver } = suite();
    const proxyId = await registerFleetProxy({
      ...suite(),
      db: database.db,
      policy: { strategy: "predictive", mode: "forecastOnly", targetRequestRate: 100, maxReplicas: 50 },
      replicas: 2,
    });
    await storeDailyRollups(database, proxyId, 2 * 1440);
    expect(
      (await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD })).status,
    ).toBe(201);
    const basis = await latestBasis(proxyId);
    expect(basis.historyMinutes).toBe(2 * 1440);
    expect(basis.forecast).not.toBeNull();
    // Anchored on the pushed reading: 500 req/s per replica × 2 replicas, moved by the curve's change to now + 300 s.
    expect(basis.forecast!.anchor?.requestRate).toBe(MID_LOAD.requestRate * 2);
    expect(basis.forecast!.requestRate).toBeCloseTo(
      MID_LOAD.requestRate * 2 * (1 + basis.forecast!.anchor!.curveChange),
      6,
    );
    expect(basis.forecast!.series.length).toBeGreaterThan(1);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });

  it("says it lacks history when the rollups cover under a day", async () => {
    const { database, operator } = suite();
    const proxyId = await registerFleetProxy({
      ...suite(),
      db: database.db,
      policy: { strategy: "predictive", mode: "forecastOnly" },
      replicas: 2,
    });
    await storeDailyRollups(database, proxyId, 120);
    await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
    const basis = await latestBasis(proxyId);
    expect(basis.forecast).toBeNull();
    expect(basis.historyMinutes).toBe(120);
  });
});
