import { type Database, openDatabase } from "@proxyscale/db";
import { randomSchemaName } from "@proxyscale/db/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type Client,
  client,
  disposeDatabase,
  POSTGRES_URL,
  postgresAvailable,
  registerProxy,
  TEST_SECRET,
  token,
} from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

const ROUNDS = 15;
const CONCURRENT = 20;

/**
 * Issue 9 §5: concurrent manual scales of one proxy raced the executor's completion of the winner into
 * PostgreSQL deadlocks (500s, and now and then a completed scale stored as failed). Real HTTP, real PostgreSQL.
 */
describe.skipIf(!postgresAvailable)("concurrent manual scales of one proxy on PostgreSQL", () => {
  let database: Database;
  let node: ControlNode;
  let api: Client;

  beforeAll(async () => {
    // A pool as wide as the burst, so the requests and the executor really run at once.
    database = await openDatabase({
      url: POSTGRES_URL,
      pgSchema: randomSchemaName("race"),
      poolMax: CONCURRENT,
    });
    node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 60_000 });
    api = client(node.url, await token({ role: "admin", sub: "race-admin" }));
  });

  afterAll(async () => {
    await node?.close();
    if (database) await disposeDatabase(database);
  });

  it(`accepts exactly one of ${CONCURRENT} concurrent executes per round and refuses the rest with 409, never a 500, and every accepted scale completes (${ROUNDS} rounds)`, async () => {
    const proxyId = await registerProxy(api, { actuator: { kind: "none" } });
    const policy = await api.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
      body: { mode: "off" },
    });
    expect(policy.status).toBe(201);
    const statuses: Record<number, number> = {};
    const unexpected: unknown[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const target = round % 2 === 0 ? 3 : 2;
      const responses = await Promise.all(
        Array.from({ length: CONCURRENT }, () =>
          api.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
            body: { newReplicaCount: target, reason: `round ${round}` },
          }),
        ),
      );
      for (const response of responses) {
        statuses[response.status] = (statuses[response.status] ?? 0) + 1;
        if (response.status !== 202 && response.status !== 409) unexpected.push(response.body);
      }
      const accepted = responses.filter((response) => response.status === 202);
      expect(accepted, `round ${round}: ${JSON.stringify(statuses)}`).toHaveLength(1);
      const eventId = accepted[0]!.body.id as string;
      const finished = await vi.waitFor(
        async () => {
          const events = await api.request("GET", `/api/proxy/scaling/events/${proxyId}?limit=1`);
          const event = events.body.items[0];
          if (event?.id !== eventId || event.status === "pending" || event.status === "in_progress") {
            throw new Error(`event ${eventId} not finished yet`);
          }
          return event;
        },
        { timeout: 10_000, interval: 20 },
      );
      expect(finished, `round ${round}`).toMatchObject({
        status: "completed",
        error: null,
        newReplicas: target,
      });
    }
    expect(unexpected).toEqual([]);
    expect(statuses).toEqual({ 202: ROUNDS, 409: ROUNDS * (CONCURRENT - 1) });
    const events = await api.request("GET", `/api/proxy/scaling/events/${proxyId}?limit=100`);
    expect(events.body.items.map((event: { status: string }) => event.status)).toEqual(
      Array(ROUNDS).fill("completed"),
    );
  });
});
