import { type Database, type Db, openDatabase, setObservedReplicas } from "@proxyscale/db";
import { afterAll, beforeAll, expect } from "vitest";
import { FleetReceiver } from "../fleet-receiver.ts";
import { type Client, client, TEST_SECRET, token, unique } from "../support.ts";
import { type ControlNode, startControlNode } from "./node.ts";

export { FleetReceiver, type ReceiverBehaviour, type ScaleCall } from "../fleet-receiver.ts";

/**
 * Registers a proxy of `operator`'s scaled by `receiver`, running `replicas` before the test (its actuator is
 * created later, from this count), with `policy` over the defaults stored by `admin`.
 */
export async function registerFleetProxy(args: {
  db: Db;
  operator: Client;
  admin: Client;
  receiver: FleetReceiver;
  policy?: Record<string, unknown>;
  replicas?: number;
}): Promise<string> {
  const created = await args.operator.request("POST", "/api/proxies", {
    body: { name: unique("fleet"), actuator: args.receiver.actuator() },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const proxyId = created.body.id as string;
  await setObservedReplicas(args.db, { id: proxyId, currentReplicas: args.replicas ?? 2 });
  const stored = await args.admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
    body: args.policy ?? {},
  });
  expect(stored.status, JSON.stringify(stored.body)).toBeLessThan(300);
  return proxyId;
}

export interface FleetSuite {
  database: Database;
  node: ControlNode;
  receiver: FleetReceiver;
  admin: Client;
  operator: Client;
}

/**
 * One in-memory database, one control node (reconcile once a minute, so pushes drive it) and one webhook
 * receiver for the file, with an admin and an operator of a fresh owner: the getter is valid inside tests.
 */
export function fleetSuite(name: string): () => FleetSuite {
  let suite: FleetSuite | undefined;
  beforeAll(async () => {
    const database = await openDatabase({ dataDir: "memory://" });
    const receiver = await new FleetReceiver().start();
    const node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 60_000 });
    suite = {
      database,
      node,
      receiver,
      admin: client(node.url, await token({ role: "admin", sub: `${name}-admin` })),
      operator: client(node.url, await token({ role: "operator", sub: unique(`${name}-operator`) })),
    };
  });
  afterAll(async () => {
    await suite?.node.close();
    await suite?.receiver.close();
    await suite?.database.close();
  });
  return () => suite!;
}
