import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe } from "vitest";
import {
  type Database,
  type Db,
  migrate,
  type OpenDatabaseOptions,
  openDatabase,
  redactUrl,
} from "../src/index.ts";

export const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const postgresRequired = Boolean(process.env.CI) || process.env.PROXYSCALE_REQUIRE_POSTGRES === "1";

/** Whether PostgreSQL answers. Unreachable: a warning and the PostgreSQL half skipped, unless CI requires it. */
async function probePostgres(): Promise<boolean> {
  const client = postgres(POSTGRES_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await client`select 1`;
    return true;
  } catch (error) {
    const message = `PostgreSQL at ${redactUrl(POSTGRES_URL)} is unreachable (${(error as Error).message})`;
    if (postgresRequired) throw new Error(`${message}; CI or PROXYSCALE_REQUIRE_POSTGRES=1 requires it`);
    console.warn(
      `\n[@proxyscale/db tests] WARNING: ${message}: SKIPPING the PostgreSQL half of the suite.\n`,
    );
    return false;
  } finally {
    await client.end({ timeout: 1 });
  }
}

export const postgresAvailable = await probePostgres();

export function randomSchemaName(prefix = "test"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

export interface TestDriver {
  name: "pglite" | "postgres";
  available: boolean;
  /** A new, migrated database of this driver; on PostgreSQL in its own new schema. */
  open(options?: OpenDatabaseOptions): Promise<Database>;
}

export const drivers: TestDriver[] = [
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
        pgSchema: randomSchemaName(),
        poolMax: 4,
        ...options,
      }),
  },
];

/** Drops the schema of a PostgreSQL test database (PGlite in memory just goes away) and closes it. */
export async function disposeDatabase(database: Database): Promise<void> {
  if (database.driver === "postgres" && database.schema !== "public") {
    await database.db.execute(sql.raw(`drop schema if exists "${database.schema}" cascade`));
  }
  await database.close();
}

/**
 * The contract suite: `body` runs once per driver against one migrated database shared by the file
 * (PGlite costs seconds to start). Tests keep to their own rows; tests touching global state use `inFreshSchema`.
 */
export function forEachDriver(
  title: string,
  body: (context: { database: () => Database; driver: TestDriver }) => void,
  options?: OpenDatabaseOptions,
) {
  for (const driver of drivers) {
    describe.skipIf(!driver.available)(`${title} [${driver.name}]`, () => {
      registerDriverSuite(driver, body, options);
    });
  }
}

function registerDriverSuite(
  driver: TestDriver,
  body: (context: { database: () => Database; driver: TestDriver }) => void,
  options?: OpenDatabaseOptions,
) {
  let database: Database | undefined;
  beforeAll(async () => {
    database = await driver.open(options);
  });
  afterAll(async () => {
    if (database) await disposeDatabase(database);
  });
  body({
    driver,
    database: () => {
      if (!database) throw new Error("database not open");
      return database;
    },
  });
}

class Rollback extends Error {}

/**
 * Runs `fn` in a transaction on a freshly migrated schema that is rolled back afterwards: for tests of global
 * state (rollup watermark, retention) that must see no other test's rows and leave nothing behind.
 */
export async function inFreshSchema<T>(database: Database, fn: (tx: Db) => Promise<T>): Promise<T> {
  let result: T | undefined;
  try {
    await database.db.transaction(async (tx) => {
      const schema = randomSchemaName("fresh");
      await migrate(tx, { schema });
      await tx.execute(sql.raw(`set local search_path to "${schema}"`));
      result = await fn(tx);
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
  }
  return result as T;
}

let counter = 0;
/** A name no other test uses, for owners and proxies. */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString("hex")}`;
}

/** Counts the statements drizzle sends (a drizzle Logger), to prove a read is a constant number of queries. */
export class StatementCounter {
  statements: string[] = [];
  logQuery(query: string): void {
    this.statements.push(query);
  }
  reset(): void {
    this.statements = [];
  }
}
