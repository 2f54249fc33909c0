import { sql } from "drizzle-orm";
import { type PgColumn, timestamp } from "drizzle-orm/pg-core";

/**
 * Every timestamp is `timestamptz(3)`: millisecond precision, so a JS `Date` round-trips exactly
 * (keyset cursors and equality checks stay exact).
 */
export function ts(name: string) {
  return timestamp(name, { withTimezone: true, precision: 3, mode: "date" });
}

export function createdAt() {
  return ts("created_at").notNull().defaultNow();
}

export function updatedAt() {
  return ts("updated_at").notNull().defaultNow();
}

/** `column IN ('a', 'b')` for a CHECK constraint; the values are code constants, never user input. */
export function oneOf(column: PgColumn, values: readonly string[]) {
  return sql`${column} in (${sql.raw(values.map((value) => `'${value}'`).join(", "))})`;
}
