import { type Decision, type MetricSample, parsePolicy, replayRecorded } from "@proxyscale/core";
import { type Database, listDecisions, schema } from "@proxyscale/db";
import { disposeDatabase } from "@proxyscale/db/testing";
import { asc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Client, client, TEST_SECRET, testDriverList, token, unique } from "../support.ts";
import { FleetReceiver, registerFleetProxy } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

/**
 * Simulator identity (issue 12): a scenario recorded live — pushes through the real control loop, which decides,
 * stores its decisions and scales a fleet — replayed through core's `replayRecorded` (the simulator's decision
 * trail) with the same samples at the same times, the same policy and the same replica changes, gives the same
 * decisions, one by one: count, limits and explanation.
 *
 * The loop's clock is frozen at each push (the sample's time and the decision's `now`); scale events are stamped
 * by the database's clock, so their times are read back from the rows, to the millisecond the loop reads them.
 */
const POLICY = {
  strategy: "targetTracking",
  targetCpuPercent: 50,
  targetMemoryPercent: 100,
  targetRequestRate: 1e12,
  minReplicas: 1,
  maxReplicas: 8,
  // Windows of a second or two, so the scenario's own pace (tens of ms a push) runs into them.
  behavior: {
    scaleUp: {
      stabilizationWindowSeconds: 0,
      selectPolicy: "Max",
      policies: [{ type: "Pods", value: 2, periodSeconds: 2 }],
    },
    scaleDown: {
      stabilizationWindowSeconds: 1,
      selectPolicy: "Max",
      policies: [{ type: "Pods", value: 1, periodSeconds: 1 }],
    },
  },
} as const;

/**
 * Per push: the fleet-average cpu (a sample without instanceId, as a reporter of the whole fleet sends it), and (`afterMs`) how long after the previous push at least, so the
 * scale-down window and the rate-policy periods expire within the scenario. A ramp up, a plateau, a drop, a
 * second peak.
 */
const SCENARIO: ReadonlyArray<{ cpuPercent: number; afterMs?: number }> = [
  { cpuPercent: 55 },
  { cpuPercent: 70 },
  { cpuPercent: 95 },
  { cpuPercent: 98 },
  { cpuPercent: 90 },
  { cpuPercent: 80 },
  { cpuPercent: 52, afterMs: 2_100 },
  { cpuPercent: 48 },
  { cpuPercent: 20 },
  { cpuPercent: 15 },
  { cpuPercent: 10 },
  { cpuPercent: 12, afterMs: 1_100 },
  { cpuPercent: 14 },
  { cpuPercent: 11, afterMs: 1_100 },
  { cpuPercent: 90 },
  { cpuPercent: 99 },
  { cpuPercent: 60 },
  { cpuPercent: 30 },
];

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(
    `the simulator replays a live scenario decision by decision [${driver.name}]`,
    () => {
      let database: Database;
      let node: ControlNode;
      let receiver: FleetReceiver;
      let operator: Client;
      let admin: Client;
      let now = Date.now();

      beforeAll(async () => {
        database = await driver.open({ poolMax: 8 });
        receiver = await new FleetReceiver().start();
        node = await startControlNode(database, TEST_SECRET, {
          clock: () => now,
          reconcileIntervalMs: 60_000,
          // Pushes only: no periodic reconcile between them.
          timers: false,
        });
        operator = client(node.url, await token({ role: "operator", sub: unique("identity-operator") }));
        admin = client(node.url, await token({ role: "admin", sub: "identity-admin" }));
      });

      afterAll(async () => {
        await node?.close();
        await receiver?.close();
        if (database) await disposeDatabase(database);
      });

      it("gives the live loop's decisions for the same samples, policy and replica changes", async () => {
        const proxyId = await registerFleetProxy({
          db: database.db,
          operator,
          admin,
          receiver,
          policy: POLICY,
          replicas: 2,
        });
        const proxy = (await operator.request("GET", `/api/proxies/${proxyId}`)).body;
        const pushes: Array<{ at: number; samples: MetricSample[] }> = [];
        for (const step of SCENARIO) {
          const previous = pushes.at(-1)?.at;
          if (step.afterMs !== undefined && previous !== undefined) {
            // Real time must pass: the database stamps the scale events with its own clock.
            await expect
              .poll(() => Date.now() - previous, { timeout: step.afterMs + 5_000, interval: 50 })
              .toBeGreaterThanOrEqual(step.afterMs);
          }
          // Later than any event row so far: the decision at `now` sees every scale before it, as the replay does.
          now = Date.now();
          const sample = {
            cpuPercent: step.cpuPercent,
            memoryPercent: 40,
            requestRate: 10,
            avgLatencyMs: 20,
            errorRatePercent: 0,
          };
          const pushed = await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
            body: sample,
          });
          expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
          pushes.push({ at: now, samples: [{ ...sample, at: now }] });
          // The push's decision made and its scale (if any) completed before the next push.
          await node.control.idle();
        }

        const e = schema.proxyScalingEvents;
        const replicaChanges = await database.db
          .select({
            // As the loop's observed state reads it (packages/db queries/time.ts epochMs).
            at: sql<number>`round(extract(epoch from ${e.createdAt}) * 1000)::float8`.mapWith(Number),
            fromReplicas: e.previousReplicas,
            toReplicas: e.newReplicas,
            status: e.status,
          })
          .from(e)
          .where(eq(e.proxyId, proxyId))
          .orderBy(asc(e.createdAt));
        expect(replicaChanges.every((change) => change.status === "completed")).toBe(true);
        const live = (await listDecisions(database.db, { proxyId, limit: 100 })).items
          .filter((entry) => entry.triggeredBy === "auto")
          .reverse()
          .map((entry) => JSON.parse(JSON.stringify(entry.decision)) as Decision);
        expect(live).toHaveLength(SCENARIO.length);

        const replayed = replayRecorded({
          policy: parsePolicy(POLICY),
          initialReplicas: 2,
          createdAt: Date.parse(proxy.createdAt),
          reconcileIntervalMs: 60_000,
          pushes,
          replicaChanges,
        }).map((decision) => JSON.parse(JSON.stringify(decision)) as Decision);

        // The scenario is worth comparing: it scaled both ways and ran into a window or a rate policy.
        expect(live.some((decision) => decision.action === "scale_up")).toBe(true);
        expect(live.some((decision) => decision.action === "scale_down")).toBe(true);
        expect(
          live.some((decision) =>
            decision.limits.some((limit) => limit.kind === "ratePolicy" || limit.kind === "stabilization"),
          ),
        ).toBe(true);
        for (let i = 0; i < live.length; i++) {
          const at = `push ${i} (cpu ${SCENARIO[i]!.cpuPercent})`;
          expect(replayed[i]!.desiredReplicas, at).toBe(live[i]!.desiredReplicas);
          expect(
            replayed[i]!.limits.map((limit) => limit.kind),
            at,
          ).toEqual(live[i]!.limits.map((limit) => limit.kind));
          expect(replayed[i]!.explanation, at).toBe(live[i]!.explanation);
          expect(replayed[i], at).toEqual(live[i]);
        }
        // The replay's executed decisions are the recorded scales.
        const executed = replayed.filter((decision) => decision.action !== "none");
        expect(executed.map((d) => [d.currentReplicas, d.desiredReplicas])).toEqual(
          replicaChanges.map((change) => [change.fromReplicas, change.toReplicas]),
        );
      });
    },
  );
}
