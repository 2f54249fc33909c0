import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import { inList, textArray } from "./pg-array.ts";

/**
 * Takes or renews the named leases for `holder`, in one statement: a lease is granted when it is free, expired,
 * or already this holder's. Expiry uses the database's clock, so servers' clocks need not agree.
 * Returns the names granted.
 */
export async function acquireLeases(
  db: Db,
  args: { names: readonly string[]; holder: string; ttlMs: number },
): Promise<string[]> {
  if (!(Number.isInteger(args.ttlMs) && args.ttlMs > 0)) {
    throw new InvalidInputError("ttlMs: must be a positive integer");
  }
  if (args.names.length === 0) return [];
  const rows = await queryRows<{ name: string }>(
    db,
    sql`
      insert into leases (name, holder, acquired_at, expires_at)
      select name, ${args.holder}, now(), now() + ${args.ttlMs} * interval '1 millisecond'
      from unnest(${textArray([...new Set(args.names)])}::text[]) as name
      order by name
      on conflict (name) do update set
        holder = excluded.holder,
        acquired_at = case when leases.holder = excluded.holder then leases.acquired_at else excluded.acquired_at end,
        expires_at = excluded.expires_at
      where leases.holder = excluded.holder or leases.expires_at <= now()
      returning name`,
  );
  return rows.map((row) => row.name).sort();
}

/** Gives up this holder's leases among `names` (others' are untouched). Returns how many were released. */
export async function releaseLeases(
  db: Db,
  args: { names: readonly string[]; holder: string },
): Promise<number> {
  if (args.names.length === 0) return 0;
  const rows = await queryRows<{ name: string }>(
    db,
    sql`delete from leases where ${inList(sql`name`, args.names, "text")} and holder = ${args.holder}
        returning name`,
  );
  return rows.length;
}
