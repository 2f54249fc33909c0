import { listAudit } from "@proxyscale/db";
import { z } from "zod";
import { loadVisibleProxy, recordOutput } from "../access.ts";
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
          "Audit entries, newest first. Admins see all; others see one of their proxies (entityId) or their own actions.",
      },
    })
    .input(
      z.strictObject({
        entityId: z.string().min(1).max(200).optional(),
        actorId: z.string().min(1).max(200).optional(),
        limit: limitSchema.default(50),
        cursor: cursorSchema.optional(),
      }),
    )
    .output(recordOutput<Awaited<ReturnType<typeof listAudit>>>("A page of audit entries"))
    .query(async ({ ctx, input }) => {
      if (ctx.user.role === "admin") return listAudit(ctx.db, input);
      if (input.entityId) {
        await loadVisibleProxy(ctx, input.entityId);
        return listAudit(ctx.db, { ...input, actorId: undefined });
      }
      return listAudit(ctx.db, { ...input, actorId: ctx.user.sub });
    }),
};
