/**
 * A ProxyScale server with its control loop in a process of its own, so a test can kill -9 it mid-scale.
 * Env: DATABASE_URL, CONTROL_SCHEMA, CONTROL_SECRET, CONTROL_LEASE_MS. Prints `{ url, holder }` when ready.
 */
import { openDatabase } from "@proxyscale/db";
import { startControlNode } from "./node.ts";

const database = await openDatabase({
  url: process.env.DATABASE_URL,
  pgSchema: process.env.CONTROL_SCHEMA,
  poolMax: 4,
});
const node = await startControlNode(database, process.env.CONTROL_SECRET ?? "", {
  leaseTtlMs: Number(process.env.CONTROL_LEASE_MS ?? 2_000),
  reconcileIntervalMs: 60_000,
});
process.stdout.write(`${JSON.stringify({ url: node.url, holder: node.control.holder })}\n`);
