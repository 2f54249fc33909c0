import { getTableColumns, type SQL, sql } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";

/**
 * Tables and columns of raw statements named through the Drizzle schema, so a renamed column fails to compile
 * (or follows the schema) instead of failing at run time. In sql`…`, drizzle renders `${table}` as its name and
 * `${table.column}` qualified (`"proxies"."id"`; an `alias()`'s columns as `"own"."mode"`); these cover the
 * places SQL does not accept a qualified name.
 */

/** A column's bare name: for INSERT column lists and UPDATE … SET targets. */
export function col(column: PgColumn): SQL {
  return sql`${sql.identifier(column.name)}`;
}

/** Bare names of several columns, comma-separated (an INSERT column list). */
export function cols(...columns: PgColumn[]): SQL {
  return sql.join(columns.map(col), sql`, `);
}

/** `table alias` for a FROM or JOIN of `alias(table, …)` (sql`${alias}` renders only the alias name). */
export function aliased(table: PgTable, alias: PgTable): SQL {
  return sql`${table} ${alias}`;
}

/** Every column of `table` as its TypeScript key (`"proxy_id" as "proxyId"`): rows shaped like `$inferSelect`. */
export function selectAll(table: PgTable): SQL {
  return sql.join(
    Object.entries(getTableColumns(table)).map(([key, column]) => sql`${column} as ${sql.identifier(key)}`),
    sql`, `,
  );
}
