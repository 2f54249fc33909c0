import { and, eq, lt, or, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { isUuid } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import type { Page } from "../records.ts";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export type { Page } from "../records.ts";

/** Opaque keyset cursor: the last row's time (ms, exact since timestamps are timestamptz(3)) and id. */
export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.getTime()}|${id}`).toString("base64url");
}

export function decodeCursor(cursor: string): { at: Date; id: string } {
  const [ms, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const at = new Date(Number(ms));
  if (!id || !isUuid(id) || Number.isNaN(at.getTime())) {
    throw new InvalidInputError("cursor: must be a cursor returned by the previous page");
  }
  return { at, id };
}

export function pageSize(limit: number | undefined): number {
  const size = limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new InvalidInputError(`limit: must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return size;
}

/** Rows strictly after the cursor in (time desc, id desc) order. */
export function afterCursor(
  cursor: string | undefined | null,
  time: PgColumn,
  id: PgColumn,
): SQL | undefined {
  if (!cursor) return undefined;
  const { at, id: lastId } = decodeCursor(cursor);
  return or(lt(time, at), and(eq(time, at), lt(id, lastId)));
}

/** Trims the one extra row fetched to learn whether another page exists. */
export function toPage<T>(rows: T[], size: number, key: (row: T) => { at: Date; id: string }): Page<T> {
  if (rows.length <= size) return { items: rows, nextCursor: null };
  const items = rows.slice(0, size);
  const last = key(items[items.length - 1]!);
  return { items, nextCursor: encodeCursor(last.at, last.id) };
}
