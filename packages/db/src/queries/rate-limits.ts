import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { InvalidInputError } from "../errors.ts";
import { rateLimitWindows } from "../schema/index.ts";
import { col, cols } from "./names.ts";
import { inList, numberArray, textArray } from "./pg-array.ts";
import { epochMs, timestampParam } from "./time.ts";

/** Requests of one user in the one-minute window starting at `windowStart` (epoch ms). */
export interface RateUsage {
  userId: string;
  windowStart: number;
  requests: number;
}

/**
 * Adds one server's requests to the shared per-window counts and reads every server's counts of `userIds` in the
 * windows from `sinceWindow` on, in ONE statement. The counts read are as they stood before this call's
 * additions (a statement does not see its own writes), so the caller adds what it sent.
 */
export async function exchangeRateUsage(
  db: Db,
  args: { add: readonly RateUsage[]; userIds: readonly string[]; sinceWindow: number },
): Promise<RateUsage[]> {
  args.add.forEach((usage, index) => {
    if (!(Number.isInteger(usage.requests) && usage.requests > 0))
      throw new InvalidInputError(`add[${index}].requests: must be a positive integer`);
  });
  if (args.add.length === 0 && args.userIds.length === 0) return [];
  // Key order, so two servers adding for the same users lock the rows in the same order.
  const add = [...args.add].sort((a, b) =>
    a.userId === b.userId ? a.windowStart - b.windowStart : a.userId < b.userId ? -1 : 1,
  );
  const w = rateLimitWindows;
  const rows = await queryRows<RateUsage>(
    db,
    sql`
      with added as (
        insert into ${w} (${cols(w.userId, w.windowStart, w.requests)})
        select u.user_id, timestamptz 'epoch' + u.window_ms * interval '1 millisecond', u.requests
        from unnest(${textArray(add.map((usage) => usage.userId))}::text[],
                    ${numberArray(add.map((usage) => usage.windowStart))}::int8[],
                    ${numberArray(add.map((usage) => usage.requests))}::int4[]) as u(user_id, window_ms, requests)
        on conflict (${cols(w.userId, w.windowStart)})
          do update set ${col(w.requests)} = ${w.requests} + excluded.${col(w.requests)}
      )
      select ${w.userId} as "userId", ${epochMs(w.windowStart)}::float8 as "windowStart", ${w.requests} as requests
      from ${w}
      where ${inList(w.userId, [...args.userIds], "text")}
        and ${w.windowStart} >= ${timestampParam(new Date(args.sinceWindow))}`,
  );
  return rows;
}

/** Deletes the counts of windows that started before `before` (epoch ms). Returns how many went. */
export async function pruneRateUsage(db: Db, args: { before: number }): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    sql`with pruned as (
          delete from ${rateLimitWindows}
          where ${rateLimitWindows.windowStart} < ${timestampParam(new Date(args.before))} returning 1
        )
        select count(*)::int as n from pruned`,
  );
  return rows[0]?.n ?? 0;
}
