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
import * as schema from "./schema/index.ts";

export const MEMORY_DATA_DIR = "memory://";
export const DEFAULT_POOL_MAX = 10;

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
  /** Resolves when the database answers; rejects with DatabaseUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
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
  if (options.migrate !== false) {
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
  const client = postgres(url, {
    max: options.poolMax ?? DEFAULT_POOL_MAX,
    connect_timeout: 10,
    idle_timeout: 60,
    // postgres.js's own backoff grows to 20 s between connection attempts while the database is down, and every
    // query waits for the next attempt: API calls answered 503 only after 40 s, and recovery lagged as long.
    // Capped at 1 s (with its jitter, so servers reconnecting together spread out).
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1),
    onnotice: () => {},
    // plan_cache_mode stays `auto`: `force_custom_plan` also re-plans the foreign-key checks' cached queries for
    // every inserted row, which halved ingest (and every insert into a table with a foreign key).
    connection: { search_path: schemaName, application_name: "proxyscale" },
  });
  const db = drizzlePostgres({ client, schema, logger: options.logger ?? false }) as unknown as Db;
  const ping = async () => {
    try {
      await client`select 1`;
    } catch (error) {
      throw new DatabaseUnavailableError(
        `cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  try {
    await ping();
  } catch (error) {
    await client.end({ timeout: 1 });
    throw error;
  }
  return {
    db,
    driver: "postgres",
    schema: schemaName,
    dataDir: null,
    ping,
    close: () => client.end({ timeout: 5 }),
    async tryAdvisoryLock(key) {
      const connection = await client.reserve();
      try {
        const [row] = await connection<{ locked: boolean }[]>`
          select pg_try_advisory_lock(hashtextextended(${key}, 0)) as locked`;
        if (!row?.locked) {
          connection.release();
          return null;
        }
      } catch (error) {
        connection.release();
        throw error;
      }
      return {
        async release() {
          try {
            await connection`select pg_advisory_unlock(hashtextextended(${key}, 0))`;
          } finally {
            connection.release();
          }
        },
      };
    },
  };
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
