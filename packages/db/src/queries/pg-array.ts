import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";

/**
 * PostgreSQL array literals. A whole column of a batch travels as one text parameter and is cast in SQL
 * (`$1::float8[]`), so a batch of any size is one statement with a fixed number of parameters on both drivers.
 */

function quote(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function textArray(values: readonly (string | null)[]): string {
  return `{${values.map((value) => (value === null ? "NULL" : quote(value))).join(",")}}`;
}

export function numberArray(values: readonly (number | null)[]): string {
  return `{${values
    .map((value) => {
      if (value === null) return "NULL";
      if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
      return String(value);
    })
    .join(",")}}`;
}

/**
 * `column IN (SELECT unnest($1::type[]))`: a semi-join the planner runs as index probes or a hash. Never
 * `= ANY($1)` for long lists: under a generic (prepared) plan PostgreSQL compares each row with every element.
 */
export function inList(column: SQL | PgColumn, values: readonly string[], type: "uuid" | "text"): SQL {
  return sql`${column} in (select unnest(${textArray(values)}::${sql.raw(type)}[]))`;
}
