import { sql } from "drizzle-orm";
import { check, pgTable, text } from "drizzle-orm/pg-core";
import { ts } from "./columns.ts";

/** Named leases with an expiry, so that several servers share work and a dead server's work is taken over. */
export const leases = pgTable(
  "leases",
  {
    name: text("name").primaryKey(),
    holder: text("holder").notNull(),
    acquiredAt: ts("acquired_at").notNull(),
    expiresAt: ts("expires_at").notNull(),
  },
  (t) => [check("leases_expiry_after_acquire", sql`${t.expiresAt} > ${t.acquiredAt}`)],
);
