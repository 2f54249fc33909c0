import type { PredictiveBasis } from "@proxyscale/core";
import { type Database, listDecisions, openDatabase, schema } from "@proxyscale/db";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Client, client, MID_LOAD, TEST_SECRET, token, unique } from "../support.ts";
import { FleetReceiver, registerFleetProxy } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

const WAIT = { timeout: 20_000 };
const MINUTE = 60_000;

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

/** `minutes` per-minute rollups ending at the current minute: a daily sinusoid around 1000 req/s on 2 replicas. */
async function storeRollups(proxyId: string, minutes: number) {
  const end = Math.floor(Date.now() / MINUTE) * MINUTE;
  const rows = Array.from({ length: minutes }, (_, i) => {
    const at = end - (minutes - i) * MINUTE;
    const fleetRate = 1000 + 600 * Math.sin((2 * Math.PI * at) / (1440 * MINUTE));
    const perReplica = fleetRate / 2;
    return {
      proxyId,
      bucket: new Date(at),
      samples: 1,
      cpuPercentAvg: 50,
      cpuPercentMax: 50,
      memoryPercentAvg: 50,
      memoryPercentMax: 50,
      requestRateAvg: perReplica,
      requestRateMax: perReplica,
      avgLatencyMsAvg: 20,
      avgLatencyMsMax: 20,
      errorRatePercentAvg: 0,
      errorRatePercentMax: 0,
      loadScoreAvg: 50,
      loadScoreMax: 50,
      replicaSamples: 1,
      replicasAvg: 2,
      replicasMax: 2,
    };
  });
  for (let i = 0; i < rows.length; i += 500) {
    await database.db.insert(schema.proxyLoadMetrics1m).values(rows.slice(i, i + 500));
  }
}

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
    await storeRollups(proxyId, 2 * 1440);
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
    await storeRollups(proxyId, 120);
    await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
    const basis = await latestBasis(proxyId);
    expect(basis.forecast).toBeNull();
    expect(basis.historyMinutes).toBe(120);
  });
});
