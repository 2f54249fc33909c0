import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/**
 * Requests each user made per one-minute window, summed over every server: the API's per-user rate limit counts
 * them, so behind N servers a user still gets the tier's rate once, not N times.
 */
export const rateLimitWindows = pgTable(
  "rate_limit_windows",
  {
    userId: text("user_id").notNull(),
    windowStart: ts("window_start").notNull(),
    requests: integer("requests").notNull(),
  },
  (t) => [
    primaryKey({ name: "rate_limit_windows_pk", columns: [t.userId, t.windowStart] }),
    index("rate_limit_windows_window_idx").on(t.windowStart),
    check("rate_limit_windows_requests_non_negative", sql`${t.requests} >= 0`),
  ],
);
