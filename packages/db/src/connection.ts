import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { DEFAULT_DATA_DIR } from "@proxyscale/core";
import type { Logger } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { lockDataDir } from "./data-dir-lock.ts";
import type { Db } from "./db.ts";
import { DatabaseUnavailableError } from "./errors.ts";
import { assertSchemaName, migrate } from "./migrate.ts";
import { postgresSocket } from "./pg-socket.ts";
import { InFlight, withinDeadline, withQueryDeadline } from "./query-deadline.ts";
import * as schema from "./schema/index.ts";

export const MEMORY_DATA_DIR = "memory://";
export const DEFAULT_POOL_MAX = 10;
/** Default deadline of a statement on PostgreSQL. */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;
/** Default deadline of a statement on the maintenance pool (retention's rollups and prunes). */
export const DEFAULT_MAINTENANCE_TIMEOUT_MS = 10 * 60_000;
/** `ping`'s deadline unless the caller gives one (or the query deadline is shorter): a readiness probe's budget. */
export const DEFAULT_PING_TIMEOUT_MS = 1_500;
/**
 * How much longer than its statement's deadline a connection that has received nothing is given before it is
 * destroyed: PostgreSQL's own statement_timeout error arrives first on a live server, which keeps the connection.
 */
const STALL_GRACE_MS = 1_000;
const MAINTENANCE_POOL_MAX = 2;

export interface OpenDatabaseOptions {
  /** Forces a driver; by default PostgreSQL when a URL is given (or env DATABASE_URL is set), else PGlite. */
  driver?: "pglite" | "postgres";
  /** PostgreSQL URL; defaults to env DATABASE_URL. Without one, PGlite is used. */
  url?: string;
  /** PGlite data directory; defaults to env PROXYSCALE_DATA_DIR, then ./.proxyscale/. `memory://` keeps it in memory. */
  dataDir?: string;
  /** Schema holding every table (default `public`); a test suite isolates itself in its own. */
  pgSchema?: string;
  /** Most connections the PostgreSQL pool opens (default 10). */
  poolMax?: number;
  /** Apply pending migrations at open (default true). */
  migrate?: boolean;
  /** drizzle's query logger: sees every statement (never the connection string). */
  logger?: Logger;
  /**
   * PostgreSQL: every statement's deadline in ms (default 5,000; 0: none). It is PostgreSQL's statement_timeout on
   * every pooled connection and a client-side deadline that also holds when the server does not answer at all
   * (frozen, or cut off): the statement then rejects with DatabaseTimeoutError. Migrations run without it.
   * PGlite runs in this process and has none.
   */
  queryTimeoutMs?: number;
  /** PostgreSQL: the deadline of statements on `maintenance` (default 10 minutes). */
  maintenanceTimeoutMs?: number;
}

/** A session-level advisory lock, held until released or until the database is closed. */
export interface AdvisoryLock {
  release(): Promise<void>;
}

export interface Database {
  db: Db;
  driver: "pglite" | "postgres";
  schema: string;
  /** The PGlite data directory (absolute), or null on PostgreSQL and in memory. */
  dataDir: string | null;
  /**
   * For statements that may run longer than the query deadline (retention's rollups and prunes): on PostgreSQL a
   * second pool of two connections (opened on first use) whose deadline is `maintenanceTimeoutMs`; on PGlite `db`.
   */
  maintenance: Db;
  /**
   * Resolves when the database answers `select 1`; rejects with DatabaseUnavailableError otherwise, and on
   * PostgreSQL after `timeoutMs` (default 1.5 s, or the query deadline if shorter).
   */
  ping(options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Closes the pools: running statements may finish for up to `timeoutMs` (default 5 s), then their connections
   * are destroyed.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Takes the advisory lock `key` if no one holds it, else null. On PostgreSQL it is held by one pooled
   * connection reserved until release (so it spans servers); on PGlite (one process) it is held in memory.
   */
  tryAdvisoryLock(key: string): Promise<AdvisoryLock | null>;
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable database url>";
  }
}

/** Opens PostgreSQL (url or DATABASE_URL) or else PGlite, and applies migrations unless `migrate: false`. */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const schemaName = options.pgSchema ?? "public";
  assertSchemaName(schemaName);
  const url = options.driver === "pglite" ? undefined : (options.url ?? process.env.DATABASE_URL);
  if (options.driver === "postgres" && !url) {
    throw new DatabaseUnavailableError("driver postgres needs a url or env DATABASE_URL");
  }
  const database = url
    ? await openPostgres(url, schemaName, options)
    : await openPglite(
        options.dataDir ?? process.env.PROXYSCALE_DATA_DIR ?? DEFAULT_DATA_DIR,
        schemaName,
        options,
      );
  if (database.driver === "pglite" && options.migrate !== false) {
    try {
      await migrate(database.db, { schema: schemaName });
    } catch (error) {
      await database.close();
      throw error;
    }
  }
  return database;
}

async function openPostgres(
  url: string,
  schemaName: string,
  options: OpenDatabaseOptions,
): Promise<Database> {
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  let closing = false;
  const pool = (max: number, timeoutMs: number) =>
    postgres(url, {
      max,
      // A server that accepts the connection and never answers fails the attempt within the deadline.
      connect_timeout: timeoutMs > 0 ? timeoutMs / 1000 : 10,
      idle_timeout: 60,
      // postgres.js's own backoff grows to 20 s between connection attempts while the database is down, and every
      // query waits for the next attempt: API calls answered 503 only after 40 s, and recovery lagged as long.
      // Capped at 1 s (with its jitter, so servers reconnecting together spread out).
      backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1),
      onnotice: () => {},
      // plan_cache_mode stays `auto`: `force_custom_plan` also re-planned the foreign-key checks' cached queries for
      // every inserted row, which halved ingest (and every insert into a table with a foreign key).
      connection: {
        search_path: schemaName,
        application_name: "proxyscale",
        ...(timeoutMs > 0 ? { statement_timeout: timeoutMs } : {}),
      },
      // Not in postgres.js's types, but documented (README, "Custom socket"): one call per connection attempt.
      ...({
        socket: postgresSocket({
          stallMs: timeoutMs > 0 ? timeoutMs + STALL_GRACE_MS : 0,
          closing: () => closing,
        }),
      } as object),
    });
  const inFlight = new InFlight();
  const client = pool(options.poolMax ?? DEFAULT_POOL_MAX, queryTimeoutMs);
  const db = drizzlePostgres({
    client: withQueryDeadline(client, queryTimeoutMs, inFlight),
    schema,
    logger: options.logger ?? false,
  }) as unknown as Db;
  const maintenanceTimeoutMs = options.maintenanceTimeoutMs ?? DEFAULT_MAINTENANCE_TIMEOUT_MS;
  // postgres.js connects on the first statement: the maintenance pool costs nothing until retention runs.
  const maintenanceClient = pool(MAINTENANCE_POOL_MAX, maintenanceTimeoutMs);
  const maintenance = drizzlePostgres({
    client: withQueryDeadline(maintenanceClient, maintenanceTimeoutMs, inFlight),
    schema,
    logger: options.logger ?? false,
  }) as unknown as Db;
  const ping = async (timeoutMs: number) => {
    try {
      await withQueryDeadline(client, timeoutMs, inFlight)`select 1`;
    } catch (error) {
      throw new DatabaseUnavailableError(
        `cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  const close = async (timeoutMs = 5_000) => {
    closing = true;
    await inFlight.settled(timeoutMs);
    // Whatever still runs past the wait is cut: connections are ended at once, idle or not.
    await Promise.all([client, maintenanceClient].map((pool) => pool.end({ timeout: 0 })));
  };
  try {
    await ping(queryTimeoutMs);
    if (options.migrate !== false) await migrateWithoutDeadline(url, schemaName, options.logger);
  } catch (error) {
    await close(1_000);
    throw error;
  }
  return {
    db,
    driver: "postgres",
    schema: schemaName,
    dataDir: null,
    maintenance,
    ping: ({ timeoutMs } = {}) =>
      ping(
        timeoutMs ??
          (queryTimeoutMs > 0 ? Math.min(queryTimeoutMs, DEFAULT_PING_TIMEOUT_MS) : DEFAULT_PING_TIMEOUT_MS),
      ),
    close: ({ timeoutMs } = {}) => close(timeoutMs),
    async tryAdvisoryLock(key) {
      const reserved = await withinDeadline(client.reserve(), queryTimeoutMs, (late) => late.release());
      const connection = withQueryDeadline(reserved, queryTimeoutMs, inFlight);
      try {
        const [row] = await connection<{ locked: boolean }[]>`
          select pg_try_advisory_lock(hashtextextended(${key}, 0)) as locked`;
        if (!row?.locked) {
          reserved.release();
          return null;
        }
      } catch (error) {
        reserved.release();
        throw error;
      }
      return {
        async release() {
          try {
            await connection`select pg_advisory_unlock(hashtextextended(${key}, 0))`;
          } finally {
            reserved.release();
          }
        },
      };
    },
  };
}

/**
 * Migrations run on a connection of their own without the query deadline: one may wait for another server's
 * migration (an advisory lock) or rewrite a large table.
 */
async function migrateWithoutDeadline(url: string, schemaName: string, logger: Logger | undefined) {
  const client = postgres(url, {
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "proxyscale migrations" },
  });
  try {
    await migrate(drizzlePostgres({ client, schema, logger: logger ?? false }) as unknown as Db, {
      schema: schemaName,
    });
  } finally {
    await client.end({ timeout: 5 });
  }
}

async function openPglite(
  dataDir: string,
  schemaName: string,
  options: OpenDatabaseOptions,
): Promise<Database> {
  const inMemory = dataDir === MEMORY_DATA_DIR;
  const dir = inMemory ? null : resolve(dataDir);
  const lock = dir ? lockDataDir(dir) : null;
  let client: PGlite;
  try {
    if (dir) mkdirSync(join(dir, "pgdata"), { recursive: true });
    client = await PGlite.create(dir ? join(dir, "pgdata") : MEMORY_DATA_DIR);
    await client.exec(`set search_path to "${schemaName}"`);
  } catch (error) {
    lock?.release();
    throw new DatabaseUnavailableError(
      `cannot open PGlite in ${dir ?? "memory"}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const db = drizzlePglite({ client, schema, logger: options.logger ?? false }) as unknown as Db;
  const heldLocks = new Set<string>();
  let closed = false;
  return {
    db,
    driver: "pglite",
    schema: schemaName,
    dataDir: dir,
    maintenance: db,
    async ping() {
      try {
        await client.query("select 1");
      } catch (error) {
        throw new DatabaseUnavailableError(`PGlite does not answer: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    },
    async tryAdvisoryLock(key) {
      // One process owns a PGlite directory, so an in-memory set is the whole truth.
      if (heldLocks.has(key)) return null;
      heldLocks.add(key);
      return {
        async release() {
          heldLocks.delete(key);
        },
      };
    },
  };
}
