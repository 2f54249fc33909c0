import { TIER_LIMITS, type TierLimits, tierCapMessage } from "@proxyscale/core";
import { getEffectivePolicy, getProxy, type ProxyRecord } from "@proxyscale/db";
import { TRPCError } from "@trpc/server";
import type { Context } from "./context.ts";
import { notFound } from "./errors.ts";

export type AuthedContext = Context & { user: NonNullable<Context["user"]> };

/** Admins see every proxy; everyone else only their own. */
export function ownerScope(ctx: AuthedContext): string | undefined {
  return ctx.user.role === "admin" ? undefined : ctx.user.sub;
}

/** The proxy if the caller may see it; otherwise 404, whether it is missing or someone else's. */
export async function loadVisibleProxy(ctx: AuthedContext, proxyId: string): Promise<ProxyRecord> {
  const proxy = await getProxy(ctx.db, { id: proxyId, ownerId: ownerScope(ctx) });
  if (!proxy) throw notFound("proxy", proxyId);
  return proxy;
}

/** The policy that applies to a visible proxy, and where it comes from. */
export async function effectivePolicyOf(ctx: AuthedContext, proxyId: string) {
  const effective = await getEffectivePolicy(ctx.db, { proxyId });
  if (!effective) throw notFound("proxy", proxyId);
  return effective;
}

/**
 * The caller's own tier caps: for what has no owner yet or at all (registering a proxy, environment default
 * policies, validating a policy). Whatever acts on an existing proxy is capped by its owner's tier instead.
 */
export function callerTierLimits(ctx: AuthedContext): TierLimits {
  return TIER_LIMITS[ctx.user.tier];
}

/** 403 naming the cap and the tier it belongs to. */
export function tierCapExceeded(args: Parameters<typeof tierCapMessage>[0]): TRPCError {
  return new TRPCError({ code: "FORBIDDEN", message: tierCapMessage(args) });
}

/** 403 unless `replicas` is within the replica cap of the proxy owner's tier (whoever the caller is). */
export function assertWithinOwnerTier(proxy: ProxyRecord, replicas: number): void {
  if (replicas > TIER_LIMITS[proxy.ownerTier].maxReplicasPerProxy) {
    throw tierCapExceeded({
      cap: "maxReplicasPerProxy",
      tier: proxy.ownerTier,
      requested: replicas,
      ofOwner: true,
    });
  }
}
