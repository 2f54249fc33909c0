import type { PolicyMode } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import type { Database } from "../connection.ts";
import { type Db, isUuid, queryRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import { leases, proxies } from "../schema/index.ts";
import { inList, textArray } from "./pg-array.ts";
import { effectivePolicyColumnSql, effectivePolicyJoins } from "./policies.ts";
import { type ProxyRecord, toProxyRecord } from "./proxies.ts";

const OFF: PolicyMode = "off";

/**
 * Queries of the server's control loop: which proxies a server reconciles and the lease rows and notifications
 * it coordinates through. What it decides from is the engine's observed state (observed-state.ts).
 */

/**
 * A proxy's shard: its uuid's first 32 bits modulo `shardCount`. The same expression in SQL and in JS, so a
 * server can filter in the database and decide for one proxy without asking it. Ids are random (v4), so shards
 * fill evenly.
 */
export function proxyShard(proxyId: string, shardCount: number): number {
  return Number.parseInt(proxyId.slice(0, 8), 16) % shardCount;
}

function shardSql(shardCount: number) {
  return sql`(('x' || substr(${proxies.id}::text, 1, 8))::bit(32)::bigint % ${shardCount})`;
}

/**
 * Ids of proxies in `shards` whose effective policy (the rule of policies.ts, in SQL) is not in mode `off`, in
 * id order after `afterId`: one page of a reconcile.
 */
export async function listAutomaticProxyIds(
  db: Db,
  args: {
    shards: readonly number[];
    shardCount: number;
    afterId?: string | null;
    limit: number;
  },
): Promise<string[]> {
  if (!(Number.isInteger(args.shardCount) && args.shardCount > 0)) {
    throw new InvalidInputError("shardCount: must be a positive integer");
  }
  if (!(Number.isInteger(args.limit) && args.limit > 0)) {
    throw new InvalidInputError("limit: must be a positive integer");
  }
  if (args.shards.length === 0) return [];
  const after = args.afterId && isUuid(args.afterId) ? args.afterId : null;
  const rows = await queryRows<{ id: string }>(
    db,
    sql`
      select ${proxies.id} as id from ${proxies} ${effectivePolicyJoins()}
      where ${effectivePolicyColumnSql("mode")} <> ${OFF}
        and ${shardSql(args.shardCount)} in (select unnest(${`{${args.shards.join(",")}}`}::int[]))
        ${after === null ? sql`` : sql`and ${proxies.id} > ${after}::uuid`}
      order by ${proxies.id}
      limit ${args.limit}`,
  );
  return rows.map((row) => row.id);
}

/**
 * The proxies in `shards` whose metrics source is `kind` (`scrape`, `prometheus`): what a server's source runners
 * read, for the proxies it owns. Few per server (each is scraped on its own interval), so one query lists them all.
 */
export async function listSourcedProxies(
  db: Db,
  args: { shards: readonly number[]; shardCount: number; kind: "scrape" | "prometheus" },
): Promise<ProxyRecord[]> {
  if (!(Number.isInteger(args.shardCount) && args.shardCount > 0)) {
    throw new InvalidInputError("shardCount: must be a positive integer");
  }
  if (args.shards.length === 0) return [];
  const rows = await db
    .select()
    .from(proxies)
    .where(
      sql`${proxies.metricsSource}->>'kind' = ${args.kind}
        and ${shardSql(args.shardCount)} in (select unnest(${`{${args.shards.join(",")}}`}::int[]))`,
    )
    .orderBy(proxies.id);
  return rows.map(toProxyRecord);
}

export interface LeaseRow {
  name: string;
  holder: string;
  expiresAt: Date;
  /** Judged by the database's clock, as acquireLeases judges it. */
  live: boolean;
}

/** Every lease whose name starts with `prefix` (e.g. `shard:`), live or expired. */
export async function listLeases(db: Db, args: { prefix: string }): Promise<LeaseRow[]> {
  const pattern = `${args.prefix.replaceAll("\\", "\\\\").replaceAll("%", "\\%").replaceAll("_", "\\_")}%`;
  const rows = await queryRows<{ name: string; holder: string; expiresAt: string | Date; live: boolean }>(
    db,
    sql`select ${leases.name} as name, ${leases.holder} as holder, ${leases.expiresAt} as "expiresAt",
          ${leases.expiresAt} > now() as live
        from ${leases} where ${leases.name} like ${pattern} order by ${leases.name}`,
  );
  return rows.map((row) => ({ ...row, expiresAt: new Date(row.expiresAt) }));
}

/** Of `names`, the ones held by anyone and not expired. */
export async function liveLeaseNames(db: Db, args: { names: readonly string[] }): Promise<Set<string>> {
  if (args.names.length === 0) return new Set();
  const rows = await queryRows<{ name: string }>(
    db,
    sql`select ${leases.name} as name from ${leases}
        where ${inList(leases.name, args.names, "text")} and ${leases.expiresAt} > now()`,
  );
  return new Set(rows.map((row) => row.name));
}

/**
 * The notification channel of a schema's control loops. Channels are per database, not per schema, so the
 * schema is part of the name: servers of different schemas (test suites) never hear each other.
 */
export function controlChannel(schema: string): string {
  return `proxyscale_control_${schema}`;
}

/** Tells every server listening on the schema's channel that these proxies want evaluating (PostgreSQL only). */
export async function notifyControl(
  db: Db,
  args: { schema: string; proxyIds: readonly string[] },
): Promise<void> {
  if (args.proxyIds.length === 0) return;
  await db.execute(
    sql`select pg_notify(${controlChannel(args.schema)}, id) from unnest(${textArray([...args.proxyIds])}::text[]) as id`,
  );
}

/**
 * Listens on the schema's control channel; `onProxyId` gets each notified proxy id. PostgreSQL keeps one
 * connection for it (outside the pool). On PGlite there is one process, so nothing needs telling: returns null.
 */
export async function listenControl(
  database: Database,
  onProxyId: (proxyId: string) => void,
): Promise<{ unlisten(): Promise<void> } | null> {
  if (database.driver !== "postgres") return null;
  const client = (database.db as unknown as { $client: PostgresListener }).$client;
  const subscription = await client.listen(controlChannel(database.schema), (payload) => {
    if (isUuid(payload)) onProxyId(payload);
  });
  return { unlisten: () => subscription.unlisten() };
}

/** The slice of postgres.js's client that LISTEN needs. */
interface PostgresListener {
  listen(channel: string, onNotify: (payload: string) => void): Promise<{ unlisten(): Promise<void> }>;
}
