import { setProxyHealth, withTransaction, writeAudit } from "@proxyscale/db";
import { loadVisibleProxy } from "../access.ts";
import { proxyViewSchema } from "../outputs.ts";
import { proxyHealthSchema, proxyIdSchema } from "../schemas.ts";
import { operatorProcedure } from "../trpc.ts";
import { toProxyView } from "./proxies.ts";

export const healthRouter = {
  set: operatorProcedure
    .meta({
      openapi: {
        method: "PUT",
        path: "/proxies/{proxyId}/health",
        tags: ["proxies"],
        summary: "Set a proxy's health; unhealthy replicas do not count as capacity in decisions",
      },
    })
    .input(proxyHealthSchema.extend({ proxyId: proxyIdSchema }))
    .output(proxyViewSchema)
    .mutation(async ({ ctx, input }) => {
      const before = await loadVisibleProxy(ctx, input.proxyId);
      const after = await withTransaction(ctx.db, async (tx) => {
        const updated = await setProxyHealth(tx, {
          id: input.proxyId,
          health: input.health,
          unhealthyReplicas: input.unhealthyReplicas,
        });
        await writeAudit(tx, {
          actorId: ctx.user.sub,
          action: "proxy.health.set",
          entityType: "proxy",
          entityId: input.proxyId,
          before: { health: before.health, unhealthyReplicas: before.unhealthyReplicas },
          after: { health: input.health, unhealthyReplicas: input.unhealthyReplicas },
        });
        return updated;
      });
      return toProxyView(after);
    }),
};
