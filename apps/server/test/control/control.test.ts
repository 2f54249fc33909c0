import { TIER_LIMITS } from "@proxyscale/core";
import {
  type Database,
  listAudit,
  listDecisions,
  listScalingEvents,
  openDatabase,
  schema,
  setObservedReplicas,
} from "@proxyscale/db";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { type Client, client, HIGH_LOAD, MID_LOAD, TEST_SECRET, token, unique } from "../support.ts";
import { FleetReceiver, registerFleetProxy } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/** How long the control loop may take to act on a loaded machine. */
const WAIT = { timeout: 20_000 };

let database: Database;
let node: ControlNode;
let receiver: FleetReceiver;
let admin: Client;
let operatorId: string;
let operator: Client;

beforeAll(async () => {
  database = await openDatabase({ dataDir: "memory://" });
  receiver = await new FleetReceiver().start();
  node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 60_000 });
  admin = client(node.url, await token({ role: "admin", sub: "control-admin" }));
  operatorId = unique("control-operator");
  operator = client(node.url, await token({ role: "operator", sub: operatorId }));
});

afterAll(async () => {
  await node?.close();
  await receiver?.close();
  await database?.close();
});

/** A proxy of the operator scaled by the receiver, with `policy` over the defaults. */
function fleetProxy(policy: Record<string, unknown> = {}, replicas = 2): Promise<string> {
  receiver.behaviour = {};
  return registerFleetProxy({ db: database.db, operator, admin, receiver, policy, replicas });
}

const push = (proxyId: string, metrics: Record<string, unknown>) =>
  operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: metrics });

const events = async (proxyId: string) => (await listScalingEvents(database.db, { proxyId })).items;
const decisions = async (proxyId: string) => (await listDecisions(database.db, { proxyId })).items;
const proxyRow = async (proxyId: string) => (await operator.request("GET", `/api/proxies/${proxyId}`)).body;

describe("event-driven scaling", () => {
  it("acts on a metrics push that crosses the threshold at once, and each step leaves its rows", async () => {
    const proxyId = await fleetProxy();
    const pushed = await push(proxyId, HIGH_LOAD);
    expect(pushed.status).toBe(201);

    const [event] = await vi.waitFor(async () => {
      const list = await events(proxyId);
      expect(list[0]?.status).toBe("completed");
      return list;
    }, WAIT);
    expect(event).toMatchObject({
      eventType: "scale_up",
      previousReplicas: 2,
      newReplicas: 3,
      triggeredBy: "auto",
      status: "completed",
      error: null,
    });
    expect(event!.startedAt).not.toBeNull();
    expect(event!.durationMs).toBeGreaterThanOrEqual(0);
    expect(receiver.callsFor(proxyId)).toEqual([
      expect.objectContaining({ eventId: event!.id, fromReplicas: 2, toReplicas: 3 }),
    ]);
    expect(receiver.badSignatures).toEqual([]);
    expect(await proxyRow(proxyId)).toMatchObject({ currentReplicas: 3, desiredReplicas: 3 });

    const [decision] = await decisions(proxyId);
    expect(decision).toMatchObject({ triggeredBy: "auto" });
    expect(decision!.decision.action).toBe("scale_up");
    expect(decision!.decision.explanation).toContain("scale up 2 → 3");
    expect(event!.decisionId).toBe(decision!.id);

    const [history] = await database.db
      .select()
      .from(schema.proxyScalingHistory)
      .where(eq(schema.proxyScalingHistory.proxyId, proxyId));
    expect(history).toMatchObject({ eventId: event!.id, previousReplicas: 2, newReplicas: 3 });
    expect(history!.decision?.action).toBe("scale_up");
    expect(history!.metrics.length).toBeGreaterThan(0);

    const audit = await listAudit(database.db, { entityId: event!.id });
    expect(audit.items.map((entry) => entry.action).sort()).toEqual(["scaling.complete", "scaling.start"]);
    expect(audit.items.every((entry) => entry.actorId === `control:${node.control.holder}`)).toBe(true);
  });

  it("coalesces evaluations asked for together into one (the queue holds a proxy once)", async () => {
    const proxyId = await fleetProxy({ scaleUpCooldownSeconds: 600 });
    // Stored first, without triggering anything: the control loop only hears of it below.
    await push(proxyId, MID_LOAD);
    await node.control.idle();
    const before = (await decisions(proxyId)).length;
    const calls = Array.from({ length: 25 }, () => node.control.evaluate(proxyId));
    await Promise.all(calls);
    expect((await decisions(proxyId)).length - before).toBe(1);
  });

  it("turns 20 concurrent high pushes into exactly one scale and one actuator call", async () => {
    const proxyId = await fleetProxy();
    const responses = await Promise.all(Array.from({ length: 20 }, () => push(proxyId, HIGH_LOAD)));
    expect(responses.every((response) => response.status === 201)).toBe(true);
    await node.control.idle();
    const list = await events(proxyId);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: "completed", newReplicas: 3 });
    expect(receiver.callsFor(proxyId)).toHaveLength(1);
    // Every push evaluated (coalesced or not) saw either the scale's cooldown or its event in flight.
    const later = (await decisions(proxyId)).filter((entry) => entry.id !== list[0]!.decisionId);
    expect(later.every((entry) => entry.decision.action === "none")).toBe(true);
  });

  it("skips an automatic scale while one is in flight and records why", async () => {
    const proxyId = await fleetProxy({ scaleUpCooldownSeconds: 0 });
    receiver.behaviour = { delayMs: 1_500 };
    await push(proxyId, HIGH_LOAD);
    const [first] = await vi.waitFor(async () => {
      const list = await events(proxyId);
      expect(list[0]?.status).toBe("in_progress");
      return list;
    }, WAIT);
    await push(proxyId, HIGH_LOAD);
    await expect
      .poll(async () => (await decisions(proxyId))[0]?.decision.limits.map((limit) => limit.kind), WAIT)
      .toContain("inFlight");
    const [latest] = await decisions(proxyId);
    expect(latest!.decision.action).toBe("none");
    expect(latest!.decision.explanation).toContain(`scale to 3 already in flight (event ${first!.id})`);
    await node.control.idle();
    expect(await events(proxyId)).toHaveLength(1);
    expect(receiver.callsFor(proxyId)).toHaveLength(1);
  });
});

describe("tier caps on automatic decisions", () => {
  it("never scales a free owner's proxy past the free tier's cap, and names the cap", async () => {
    const cap = TIER_LIMITS.free.maxReplicasPerProxy;
    const free = client(node.url, await token({ role: "operator", tier: "free", sub: unique("free") }));
    receiver.behaviour = {};
    // The default policy allows 10 replicas; only the owner's tier stops the scale at 5.
    const created = await free.request("POST", "/api/proxies", {
      body: { name: unique("capped"), actuator: receiver.actuator() },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const proxyId = created.body.id as string;
    await setObservedReplicas(database.db, { id: proxyId, currentReplicas: cap });

    expect(
      (await free.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD })).status,
    ).toBe(201);
    await node.control.idle();
    const [decision] = await decisions(proxyId);
    expect(decision?.triggeredBy).toBe("auto");
    expect(decision?.decision).toMatchObject({ action: "none", currentReplicas: cap, desiredReplicas: cap });
    expect(decision?.decision.limits).toContainEqual({ kind: "tierCap", value: cap, from: cap + 1, to: cap });
    expect(await events(proxyId)).toEqual([]);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });
});

describe("manual scaling through the same executor", () => {
  it("runs a manual scale, refuses the count in effect and a second scale in flight with 409, never twice", async () => {
    const proxyId = await fleetProxy();
    const execute = (newReplicaCount: number) =>
      operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount, reason: "launch", triggeredBy: "manual" },
      });
    const same = await execute(2);
    expect(same.status).toBe(409);
    expect(same.body.message).toContain("already runs 2 replicas");

    receiver.behaviour = { delayMs: 1_000 };
    const accepted = await execute(5);
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ triggeredBy: "manual", newReplicas: 5 });
    const second = await execute(6);
    expect(second.status).toBe(409);

    const done = await vi.waitFor(async () => {
      const [event] = await events(proxyId);
      expect(event?.status).toBe("completed");
      return event!;
    }, WAIT);
    expect(done.id).toBe(accepted.body.id);
    expect(receiver.callsFor(proxyId)).toHaveLength(1);
    expect(await proxyRow(proxyId)).toMatchObject({ currentReplicas: 5 });
    const audit = await listAudit(database.db, { entityId: done.id });
    expect(audit.items.map((entry) => entry.action).sort()).toEqual([
      "scaling.complete",
      "scaling.execute",
      "scaling.start",
    ]);
  });

  it("keeps an accepted (202) scale in progress until the completion endpoint finishes it", async () => {
    const proxyId = await fleetProxy();
    receiver.behaviour = { status: 202 };
    const started = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
      body: { newReplicaCount: 4 },
    });
    expect(started.status).toBe(202);
    await expect.poll(() => receiver.callsFor(proxyId).length, WAIT).toBe(1);
    await node.control.idle();
    await node.control.reconcile();
    const [waiting] = await events(proxyId);
    expect(waiting).toMatchObject({ status: "in_progress", completedAt: null });

    const completed = await operator.request("POST", "/api/proxy/scaling/complete", {
      body: { eventId: started.body.id, status: "completed", observedReplicas: 4 },
    });
    expect(completed.status).toBe(200);
    expect(completed.body.status).toBe("completed");
    expect(await proxyRow(proxyId)).toMatchObject({ currentReplicas: 4 });
    expect(receiver.callsFor(proxyId)).toHaveLength(1);
  });

  it("fails the event with the actuator's error and keeps the count the actuator observes", async () => {
    const proxyId = await fleetProxy();
    receiver.behaviour = { status: 400 };
    const started = await operator.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
      body: { newReplicaCount: 3 },
    });
    expect(started.status).toBe(202);
    const failed = await vi.waitFor(async () => {
      const [event] = await events(proxyId);
      expect(event?.status).toBe("failed");
      return event!;
    }, WAIT);
    expect(failed.error).toContain("answered 400");
    expect(await proxyRow(proxyId)).toMatchObject({ currentReplicas: 2 });
    const audit = await listAudit(database.db, { entityId: failed.id });
    expect(audit.items.map((entry) => entry.action)).toContain("scaling.fail");
  });
});

describe("modes, stale metrics and fallback", () => {
  it("never lets stale metrics drive a decision", async () => {
    const proxyId = await fleetProxy();
    await push(proxyId, { ...HIGH_LOAD, recordedAt: Date.now() - 10 * 60_000 });
    await node.control.idle();
    const [decision] = await decisions(proxyId);
    expect(decision!.decision.action).toBe("none");
    expect(decision!.decision.limits).toContainEqual(expect.objectContaining({ kind: "noMetrics" }));
    expect(await events(proxyId)).toEqual([]);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });

  it("dryRun decides and records, never executes", async () => {
    const proxyId = await fleetProxy({ mode: "dryRun" });
    await push(proxyId, HIGH_LOAD);
    await node.control.idle();
    const [decision] = await decisions(proxyId);
    expect(decision!.decision).toMatchObject({ action: "scale_up", desiredReplicas: 3 });
    expect(decision!.decision.limits).toContainEqual({ kind: "mode", mode: "dryRun", from: 3, to: 3 });
    expect(decision!.decision.explanation).toContain("dry run: not executed");
    expect(await events(proxyId)).toEqual([]);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });

  it("off records what a push would have done and never scales; reconciles skip it", async () => {
    const proxyId = await fleetProxy({ mode: "off" });
    expect((await push(proxyId, HIGH_LOAD)).status).toBe(201);
    await node.control.idle();
    const [decision] = await decisions(proxyId);
    expect(decision!.decision).toMatchObject({ action: "none", recommendedReplicas: 3, desiredReplicas: 2 });
    expect(decision!.decision.limits).toContainEqual({ kind: "mode", mode: "off", from: 3, to: 2 });
    await node.control.reconcile();
    expect(await decisions(proxyId)).toHaveLength(1);
    expect(await events(proxyId)).toEqual([]);
    expect(receiver.callsFor(proxyId)).toEqual([]);
  });

  it("goes to fallback.replicas once metrics missed failureThreshold intervals, and says so", async () => {
    const proxyId = await fleetProxy({ fallback: { failureThreshold: 2, replicas: 4 } });
    // Stale for 4 minutes: 60 s max age, then one missed interval per 60 s reconcile interval.
    await push(proxyId, { ...HIGH_LOAD, recordedAt: Date.now() - 5 * 60_000 });
    const event = await vi.waitFor(async () => {
      const [latest] = await events(proxyId);
      expect(latest?.status).toBe("completed");
      return latest!;
    }, WAIT);
    expect(event).toMatchObject({ previousReplicas: 2, newReplicas: 4, triggeredBy: "auto" });
    const decision = (await decisions(proxyId)).find((entry) => entry.id === event.decisionId)!;
    expect(decision.decision.limits).toContainEqual(
      expect.objectContaining({ kind: "fallback", failureThreshold: 2, replicas: 4, to: 4 }),
    );
    expect(decision.decision.explanation).toMatch(
      /fallback after \d+ missed intervals \(threshold 2\): 4 replicas/,
    );
  });

  it("holds before failureThreshold, and holds with the reason after it when no fallback count is set", async () => {
    const early = await fleetProxy({ fallback: { failureThreshold: 3, replicas: 5 } });
    await push(early, { ...HIGH_LOAD, recordedAt: Date.now() - 90_000 });
    await node.control.idle();
    const [held] = await decisions(early);
    expect(held!.decision.action).toBe("none");
    expect(held!.decision.limits.map((limit) => limit.kind)).not.toContain("fallback");
    expect(await events(early)).toEqual([]);

    const holding = await fleetProxy({ fallback: { failureThreshold: 1 } });
    await push(holding, { ...HIGH_LOAD, recordedAt: Date.now() - 5 * 60_000 });
    await node.control.idle();
    const [fallback] = await decisions(holding);
    expect(fallback!.decision.action).toBe("none");
    expect(fallback!.decision.explanation).toMatch(
      /fallback after \d+ missed intervals \(threshold 1\): hold at 2/,
    );
    expect(await events(holding)).toEqual([]);
  });

  it("a reconcile records the fallback decision of a proxy that stopped reporting once, not every tick", async () => {
    const proxyId = await fleetProxy({ fallback: { failureThreshold: 1 } });
    await push(proxyId, { ...MID_LOAD, recordedAt: Date.now() - 5 * 60_000 });
    await node.control.idle();
    const afterPush = (await decisions(proxyId)).length;
    await node.control.reconcile();
    await node.control.reconcile();
    expect((await decisions(proxyId)).length).toBe(afterPush);
  });
});

describe("control loop configuration", () => {
  it("reads the control loop's env vars with defaults, and names a bad one with its rule", () => {
    expect(loadConfig({}).control).toEqual({
      reconcileIntervalMs: 10_000,
      leaseTtlMs: 15_000,
      acceptedTimeoutMs: 900_000,
      retention: {
        intervalMs: 3_600_000,
        rawRetentionDays: 7,
        rollupRetentionDays: 90,
        decisionRetentionDays: 7,
      },
      demo: { enabled: true, port: undefined },
    });
    expect(
      loadConfig({ PROXYSCALE_RECONCILE_SECONDS: "2.5", PROXYSCALE_DEMO: "0", PROXYSCALE_DEMO_PORT: "9001" })
        .control,
    ).toMatchObject({ reconcileIntervalMs: 2_500, demo: { enabled: false, port: 9001 } });
    expect(() => loadConfig({ PROXYSCALE_RECONCILE_SECONDS: "0", PROXYSCALE_DEMO: "maybe" })).toThrow(
      /PROXYSCALE_RECONCILE_SECONDS: must be greater than 0[\s\S]*PROXYSCALE_DEMO: must be 0 or 1/,
    );
  });
});
