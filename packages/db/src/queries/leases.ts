import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import { leases } from "../schema/index.ts";
import { col, cols } from "./names.ts";
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
      insert into ${leases} (${cols(leases.name, leases.holder, leases.acquiredAt, leases.expiresAt)})
      select name, ${args.holder}, now(), now() + ${args.ttlMs} * interval '1 millisecond'
      from unnest(${textArray([...new Set(args.names)])}::text[]) as name
      order by name
      on conflict (${col(leases.name)}) do update set
        ${col(leases.holder)} = excluded.${col(leases.holder)},
        ${col(leases.acquiredAt)} = case when ${leases.holder} = excluded.${col(leases.holder)}
          then ${leases.acquiredAt} else excluded.${col(leases.acquiredAt)} end,
        ${col(leases.expiresAt)} = excluded.${col(leases.expiresAt)}
      where ${leases.holder} = excluded.${col(leases.holder)} or ${leases.expiresAt} <= now()
      returning ${leases.name} as name`,
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
    sql`delete from ${leases} where ${inList(leases.name, args.names, "text")} and ${leases.holder} = ${args.holder}
        returning ${leases.name} as name`,
  );
  return rows.length;
}
