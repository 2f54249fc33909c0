import { type Db, setObservedReplicas } from "@proxyscale/db";
import { expect } from "vitest";
import type { FleetReceiver } from "../fleet-receiver.ts";
import { type Client, unique } from "../support.ts";

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
