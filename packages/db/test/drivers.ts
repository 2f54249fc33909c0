import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe } from "vitest";
import { type Database, type Db, migrate, type OpenDatabaseOptions } from "../src/index.ts";
import {
  disposeDatabase,
  probePostgres,
  randomSchemaName,
  type TestDriver,
  testDrivers,
} from "../src/testing.ts";

export { disposeDatabase, POSTGRES_URL, randomSchemaName, type TestDriver } from "../src/testing.ts";

export const postgresAvailable = await probePostgres("@proxyscale/db");
export const drivers = testDrivers(postgresAvailable);

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
