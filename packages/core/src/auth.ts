import { z } from "zod";
import type { ObservedState } from "./decision.ts";
import { storableText } from "./storable.ts";

/** Who may do what: viewers read, operators also act on their own proxies, admins do anything on any proxy. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

export const TIERS = ["free", "pro", "enterprise"] as const;
export const tierSchema = z.enum(TIERS);
export type Tier = z.infer<typeof tierSchema>;

/** The claims every ProxyScale token carries (plus the registered ones: exp, nbf, iat, ...). */
export const tokenClaimsSchema = z.object({
  sub: storableText().min(1, { message: "must name the user" }).max(200),
  role: roleSchema,
  tier: tierSchema,
});
export type TokenClaims = z.infer<typeof tokenClaimsSchema>;

export interface TierLimits {
  /** The highest replica count any proxy of this owner may be scaled to. */
  maxReplicasPerProxy: number;
  /** How many proxies one owner may register. */
  maxProxiesPerOwner: number;
  /** Requests per minute one user may make (token bucket: this many per minute, bursts up to this many). */
  requestsPerMinute: number;
}

/**
 * Tier caps. A free agent pushing one batch every 10 s and polling now and then needs ~10 requests a minute;
 * 600 leaves room for a CLI session and a dashboard. Pro and enterprise grow by ten each.
 */
export const TIER_LIMITS: Record<Tier, TierLimits> = {
  free: { maxReplicasPerProxy: 5, maxProxiesPerOwner: 3, requestsPerMinute: 600 },
  pro: { maxReplicasPerProxy: 50, maxProxiesPerOwner: 50, requestsPerMinute: 6_000 },
  enterprise: { maxReplicasPerProxy: 1_000, maxProxiesPerOwner: 10_000, requestsPerMinute: 600_000 },
};

/**
 * The engine's caps (`ObservedState.caps`) for a proxy whose owner has `tier`: the owner's tier, never the
 * caller's, bounds a proxy, so an admin's evaluation and the control loop cap it alike.
 */
export function tierCapsFor(tier: Tier): NonNullable<ObservedState["caps"]> {
  return { tierMaxReplicas: TIER_LIMITS[tier].maxReplicasPerProxy };
}

/**
 * The 403 text of an exceeded tier cap, naming the cap and the tier whose cap it is: the caller's
 * (`tier free`, when registering) or the proxy owner's (`the owner's tier free`, when acting on a proxy).
 */
export function tierCapMessage(args: {
  cap: keyof TierLimits;
  tier: Tier;
  requested: number;
  /** Default: the tier's own figure from TIER_LIMITS. */
  allowed?: number;
  ofOwner?: boolean;
}): string {
  const allowed = args.allowed ?? TIER_LIMITS[args.tier][args.cap];
  const whose = args.ofOwner ? "the owner's tier" : "tier";
  return `tier cap ${args.cap}: ${whose} ${args.tier} allows at most ${allowed}, requested ${args.requested}`;
}

const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** True when `role` includes everything `required` may do. */
export function roleAtLeast(role: Role, required: Role): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[required];
}
