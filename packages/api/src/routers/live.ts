import { z } from "zod";
import { type AuthedContext, loadVisibleProxy, ownerScope } from "../access.ts";
import type { LiveChange } from "../live-feed.ts";
import { proxyIdSchema } from "../schemas.ts";
import { viewerProcedure } from "../trpc.ts";

export const liveRouter = {
  /**
   * Every change from now on (a decision stored, a scaling event's transition, a sample stored) of the proxies
   * the caller may see, or of one of them: over SSE with httpSubscriptionLink (the token in connectionParams).
   * Admins get every proxy's; everyone else only their own, as the feed filters by owner.
   */
  onChange: viewerProcedure
    .input(z.strictObject({ proxyId: proxyIdSchema.optional() }))
    .subscription(async function* ({ ctx, input, signal }): AsyncGenerator<LiveChange, void, undefined> {
      // Someone else's proxy is a 404, as everywhere.
      if (input.proxyId) await loadVisibleProxy(ctx as AuthedContext, input.proxyId);
      yield* ctx.live.subscribe({
        ownerId: ownerScope(ctx as AuthedContext),
        proxyId: input.proxyId,
        signal,
      });
    }),
};
