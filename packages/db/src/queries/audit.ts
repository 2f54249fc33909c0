import { and, desc, eq, type SQL } from "drizzle-orm";
import type { Db } from "../db.ts";
import type { AuditEntry } from "../records.ts";
import { auditLog } from "../schema/index.ts";
import { afterCursor, type Page, pageSize, toPage } from "./cursor.ts";

export type { AuditEntry } from "../records.ts";

export interface AuditInput {
  actorId: string;
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
}

/** Appends one entry. Call it with the transaction that makes the change, so both happen or neither. */
export async function writeAudit(db: Db, input: AuditInput): Promise<{ id: string }> {
  const [row] = await db
    .insert(auditLog)
    .values({
      actorId: input.actorId,
      action: input.action,
      entityType: input.entityType,
      entityId: input.entityId,
      before: input.before ?? null,
      after: input.after ?? null,
    })
    .returning({ id: auditLog.id });
  return row!;
}

/** Newest first. */
export async function listAudit(
  db: Db,
  args: { entityId?: string; actorId?: string; entityType?: string; limit?: number; cursor?: string | null },
): Promise<Page<AuditEntry>> {
  const size = pageSize(args.limit);
  const conditions: (SQL | undefined)[] = [
    args.entityId === undefined ? undefined : eq(auditLog.entityId, args.entityId),
    args.actorId === undefined ? undefined : eq(auditLog.actorId, args.actorId),
    args.entityType === undefined ? undefined : eq(auditLog.entityType, args.entityType),
    afterCursor(args.cursor, auditLog.createdAt, auditLog.id),
  ];
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...conditions))
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(size + 1);
  return toPage(rows, size, (row) => ({ at: row.createdAt, id: row.id }));
}
