import type { PredictiveBasis } from "@proxyscale/core";
import { type Database, listDecisions, openDatabase } from "@proxyscale/db";
import { storeDailyRollups } from "@proxyscale/db/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Client, client, MID_LOAD, TEST_SECRET, token, unique } from "../support.ts";
import { FleetReceiver, registerFleetProxy } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

const WAIT = { timeout: 20_000 };

let database: Database;
let node: ControlNode;
let receiver: FleetReceiver;
let admin: Client;
let operator: Client;

beforeAll(async () => {
  database = await openDatabase({ dataDir: "memory://" });
  receiver = await new FleetReceiver().start();
  node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 60_000 });
  admin = client(node.url, await token({ role: "admin", sub: "predictive-admin" }));
  operator = client(node.url, await token({ role: "operator", sub: unique("predictive-operator") }));
});

afterAll(async () => {
  await node?.close();
  await receiver?.close();
  await database?.close();
});

async function latestBasis(proxyId: string): Promise<PredictiveBasis> {
  return vi.waitFor(async () => {
    const [latest] = (await listDecisions(database.db, { proxyId })).items;
    expect(latest?.decision.basis?.strategy).toBe("predictive");
    return latest!.decision.basis as PredictiveBasis;
  }, WAIT);
}

describe("predictive policy through the control loop", () => {
  it("forecasts from the stored per-minute rollups and records it in the decision", async () => {
    const proxyId = await registerFleetProxy({
      db: database.db,
      operator,
      admin,
      receiver,
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
    expect(basis.forecast!.requestRate).toBeGreaterThan(300);
    expect(basis.forecast!.requestRate).toBeLessThan(1700);
    expect(basis.forecast!.series.length).toBeGreaterThan(1);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });

  it("says it lacks history when the rollups cover under a day", async () => {
    const proxyId = await registerFleetProxy({
      db: database.db,
      operator,
      admin,
      receiver,
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
