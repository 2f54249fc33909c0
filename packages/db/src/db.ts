import type { SQL } from "drizzle-orm";
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema/index.ts";

/** The drizzle handle every query function takes first: a database or a transaction, on either driver. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Rows of a raw statement; the drivers shape results differently (postgres.js: an array, PGlite: `{ rows }`). */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result: unknown = await db.execute(query);
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

const dialect = new PgDialect();

/**
 * `queryRows` for a statement whose SQL text does not vary with its arguments (lists travel as one array
 * parameter), run as a prepared statement. drizzle's unnamed statements make postgres.js send Parse + Describe and
 * wait for the parameter types before Bind + Execute: two round trips and a parse and plan per call. Named, the
 * statement is parsed once per pooled connection (postgres.js keys it by its SQL text, so the name drizzle asks for
 * does not matter) and each call is one Bind + Execute; PostgreSQL plans it per call for its first five and then
 * keeps a generic plan if that costs no more. PGlite runs it as before. A statement whose text varied would be
 * prepared once per variant and kept for the connection's life: use `queryRows` for those.
 */
export async function queryPreparedRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result: unknown = await db._.session
    .prepareQuery(dialect.sqlToQuery(query), undefined, "proxyscale", false)
    .execute();
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/** Runs `fn` in a transaction (a savepoint when `db` is already a transaction): all of its writes or none. */
export function withTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction((tx) => fn(tx));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids arrive from URLs: a string that is not a uuid names no row (and must not reach a uuid column). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
