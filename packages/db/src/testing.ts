/**
 * Test support shared by every package's suites (`@proxyscale/db/testing`): which PostgreSQL to use, whether it
 * answers, databases of both drivers isolated per suite, and private PostgreSQL clusters for fault tests
 * (`startPrivateCluster`: stop, freeze, drop, kill). Not part of the runtime API.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { type Database, type OpenDatabaseOptions, openDatabase, redactUrl } from "./connection.ts";

export { seededFleetRate, storeDailyRollups } from "./demand-fixtures.ts";
export {
  freePort,
  type PrivateCluster,
  type PrivateClusterOptions,
  startPrivateCluster,
} from "./private-cluster.ts";

export const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** CI (or PROXYSCALE_REQUIRE_POSTGRES=1) turns an unreachable PostgreSQL from a skipped half into a failure. */
const postgresRequired = Boolean(process.env.CI) || process.env.PROXYSCALE_REQUIRE_POSTGRES === "1";

/** Whether PostgreSQL answers. Unreachable: a warning naming `suite` and the PostgreSQL half skipped, unless required. */
export async function probePostgres(suite: string): Promise<boolean> {
  const client = postgres(POSTGRES_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await client`select 1`;
    return true;
  } catch (error) {
    const message = `PostgreSQL at ${redactUrl(POSTGRES_URL)} is unreachable (${(error as Error).message})`;
    if (postgresRequired) throw new Error(`${message}; CI or PROXYSCALE_REQUIRE_POSTGRES=1 requires it`);
    console.warn(`\n[${suite} tests] WARNING: ${message}: SKIPPING the PostgreSQL half.\n`);
    return false;
  } finally {
    await client.end({ timeout: 1 });
  }
}

export function randomSchemaName(prefix = "test"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

export interface TestDriver {
  name: "pglite" | "postgres";
  available: boolean;
  /** A new, migrated database of this driver; on PostgreSQL in its own new schema. */
  open(options?: OpenDatabaseOptions): Promise<Database>;
}

/** Both drivers for a suite: PGlite in memory always, PostgreSQL when `postgresAvailable`. */
export function testDrivers(postgresAvailable: boolean, schemaPrefix = "test"): TestDriver[] {
  return [
    {
      name: "pglite",
      available: true,
      open: (options) => openDatabase({ driver: "pglite", dataDir: "memory://", ...options }),
    },
    {
      name: "postgres",
      available: postgresAvailable,
      open: (options) =>
        openDatabase({
          driver: "postgres",
          url: POSTGRES_URL,
          pgSchema: randomSchemaName(schemaPrefix),
          poolMax: 4,
          ...options,
        }),
    },
  ];
}

/** Drops the schema of a PostgreSQL test database (PGlite in memory just goes away) and closes it. */
export async function disposeDatabase(database: Database): Promise<void> {
  if (database.driver === "postgres" && database.schema !== "public") {
    await database.db.execute(sql.raw(`drop schema if exists "${database.schema}" cascade`));
  }
  await database.close();
}

/**
 * A new, empty database on the shared PostgreSQL (for a whole server under test, which uses the `public` schema),
 * and its removal.
 */
export async function createScratchDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = randomSchemaName(prefix);
  const admin = postgres(POSTGRES_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = postgres(POSTGRES_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
      try {
        await client.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end({ timeout: 1 });
      }
    },
  };
}
