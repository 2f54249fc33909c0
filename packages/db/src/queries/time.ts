import { type SQL, sql } from "drizzle-orm";
import { InvalidInputError } from "../errors.ts";

/** Accepts core's epoch ms or a Date. */
export function toDate(value: Date | number, field: string): Date {
  const date = typeof value === "number" ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new InvalidInputError(`${field}: must be a valid time`);
  return date;
}

/** A timestamptz as epoch ms (a JSON number), exact for timestamptz(3). */
export function epochMs(column: SQL | SQL.Aliased | unknown): SQL<number> {
  return sql<number>`round(extract(epoch from ${column}) * 1000)::bigint`;
}

/** A JS time as a timestamptz parameter, identical on both drivers. */
export function timestampParam(date: Date): SQL {
  return sql`${date.toISOString()}::timestamptz`;
}
