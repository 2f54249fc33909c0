import { storableText } from "@proxyscale/core";
import { getProxy, getScalingEvent, listAudit } from "@proxyscale/db";
import { z } from "zod";
import { type AuthedContext, ownerScope } from "../access.ts";
import { notFound } from "../errors.ts";
import { auditPageSchema } from "../outputs.ts";
import { cursorSchema, limitSchema } from "../schemas.ts";
import { viewerProcedure } from "../trpc.ts";

export const auditRouter = {
  list: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/audit",
        tags: ["audit"],
        summary:
          "Audit entries, newest first. Admins see all; others see one of their proxies or scaling events (entityId), or their own actions.",
      },
    })
    .input(
      z.strictObject({
        entityId: storableText().min(1).max(200).optional(),
        actorId: storableText().min(1).max(200).optional(),
        limit: limitSchema.default(50),
        cursor: cursorSchema.optional(),
      }),
    )
    .output(auditPageSchema)
    .query(async ({ ctx, input }) => {
      if (ctx.user.role === "admin") return listAudit(ctx.db, input);
      if (input.entityId) {
        await assertVisibleEntity(ctx, input.entityId);
        return listAudit(ctx.db, { ...input, actorId: undefined });
      }
      return listAudit(ctx.db, { ...input, actorId: ctx.user.sub });
    }),
};

/** A non-admin may read the audit trail of their own proxies (and policies, keyed by proxy) and scaling events. */
async function assertVisibleEntity(ctx: AuthedContext, entityId: string): Promise<void> {
  const owner = ownerScope(ctx);
  if (await getProxy(ctx.db, { id: entityId, ownerId: owner })) return;
  const event = await getScalingEvent(ctx.db, { id: entityId });
  if (event && (await getProxy(ctx.db, { id: event.proxyId, ownerId: owner }))) return;
  throw notFound("audit entity", entityId);
}
