import { eq, inArray, sql } from "drizzle-orm";
import type { Database } from "../connection.ts";
import { type Db, isUuid } from "../db.ts";
import type { DecisionRecord, ScalingEventRecord } from "../records.ts";
import { proxies, proxyScalingEvents, scalingDecisions } from "../schema/index.ts";
import { DECISION_RECORD_COLUMNS } from "./decisions.ts";
import { textArray } from "./pg-array.ts";

/**
 * What the API's live feed (packages/api/src/live-feed.ts) reads and sends: the notification channel that
 * carries changes between the servers of one schema, and the records a notification names by id (PostgreSQL's
 * NOTIFY payloads stop at 8,000 bytes, so decisions and events travel as ids and are read where they are needed).
 */

/** NOTIFY's payload limit is 8,000 bytes; what a sender puts in one payload stays below this. */
export const LIVE_PAYLOAD_MAX_BYTES = 7_900;

/** The schema's live channel: per schema, as controlChannel is, so test suites never hear each other. */
export function liveChannel(schema: string): string {
  return `proxyscale_live_${schema}`;
}

/** Sends each payload on the schema's live channel, in one statement (PostgreSQL only). */
export async function notifyLive(
  db: Db,
  args: { schema: string; payloads: readonly string[] },
): Promise<void> {
  if (args.payloads.length === 0) return;
  await db.execute(
    sql`select pg_notify(${liveChannel(args.schema)}, p) from unnest(${textArray([...args.payloads])}::text[]) with ordinality as u(p, n) order by n`,
  );
}

/**
 * Listens on the schema's live channel, on a connection of its own (postgres.js keeps one outside the pool).
 * PGlite is one process, so there is no one to hear from: returns null.
 */
export async function listenLive(
  database: Database,
  onPayload: (payload: string) => void,
): Promise<{ unlisten(): Promise<void> } | null> {
  if (database.driver !== "postgres") return null;
  const client = (database.db as unknown as { $client: PostgresListener }).$client;
  const subscription = await client.listen(liveChannel(database.schema), onPayload);
  return { unlisten: () => subscription.unlisten() };
}

/** The slice of postgres.js's client that LISTEN needs. */
interface PostgresListener {
  listen(channel: string, onNotify: (payload: string) => void): Promise<{ unlisten(): Promise<void> }>;
}

/** Owners of the proxies among `ids` that exist. */
export async function getProxyOwners(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (valid.length === 0) return new Map();
  const rows = await db
    .select({ id: proxies.id, ownerId: proxies.ownerId })
    .from(proxies)
    .where(inArray(proxies.id, valid));
  return new Map(rows.map((row) => [row.id, row.ownerId]));
}

/** The stored decisions among `ids`, each with its proxy's owner. */
export async function getDecisionsWithOwner(
  db: Db,
  ids: readonly string[],
): Promise<Array<{ record: DecisionRecord; ownerId: string }>> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (valid.length === 0) return [];
  const rows = await db
    .select({ ...DECISION_RECORD_COLUMNS, ownerId: proxies.ownerId })
    .from(scalingDecisions)
    .innerJoin(proxies, eq(proxies.id, scalingDecisions.proxyId))
    .where(inArray(scalingDecisions.id, valid));
  return rows.map(({ ownerId, ...record }) => ({ record, ownerId }));
}

/** The scaling events among `ids` as they are now, each with its proxy's owner. */
export async function getScalingEventsWithOwner(
  db: Db,
  ids: readonly string[],
): Promise<Array<{ record: ScalingEventRecord; ownerId: string }>> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (valid.length === 0) return [];
  const rows = await db
    .select({ event: proxyScalingEvents, ownerId: proxies.ownerId })
    .from(proxyScalingEvents)
    .innerJoin(proxies, eq(proxies.id, proxyScalingEvents.proxyId))
    .where(inArray(proxyScalingEvents.id, valid));
  return rows.map((row) => ({ record: { ...row.event }, ownerId: row.ownerId }));
}
