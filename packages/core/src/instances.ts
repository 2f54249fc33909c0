import { TIER_LIMITS, type Tier } from "./auth.ts";

/**
 * Live instances one proxy may have per replica its owner's tier allows (`maxReplicasPerProxy`): room for a
 * rolling update with 100% surge, when the old pods and their replacements both report.
 */
export const LIVE_INSTANCES_PER_ALLOWED_REPLICA = 2;

/**
 * An instance is live while its latest sample is at most this many times the policy's `metricsMaxAgeSeconds`
 * old. The engine already ignores samples older than `metricsMaxAgeSeconds`; twice that gives a late reporter
 * one more period before its slot is freed (a restarted Kubernetes pod reports under a new name, so the old
 * name's slot must lapse), and retention deletes latest rows that are no longer live.
 */
export const LIVE_INSTANCE_AGE_FACTOR = 2;

/** The most live instances (distinct instanceIds, the fleet-average sample not counted) one proxy may have. */
export function liveInstanceCapFor(tier: Tier): number {
  return LIVE_INSTANCES_PER_ALLOWED_REPLICA * TIER_LIMITS[tier].maxReplicasPerProxy;
}

/** How long an instance stays live after its latest sample, for a policy with `metricsMaxAgeSeconds`. */
export function liveInstanceWindowMs(policy: { metricsMaxAgeSeconds: number }): number {
  return LIVE_INSTANCE_AGE_FACTOR * policy.metricsMaxAgeSeconds * 1000;
}

export type InstanceAdmission =
  | { admitted: true }
  | { admitted: false; cap: number; live: number; wouldBe: number; added: number };

/**
 * Whether a push naming `named` instance ids may be stored on a proxy whose live instances are `live` (the
 * fleet-average sample, no instance id, never counts): refused, whole, when the live instances after it
 * (the live ones plus the ones it names) would be more than `cap`. On admission `live` gains the named ids,
 * so the pushes of one batch are judged in order, each after the ones before it.
 */
export function admitInstances(
  live: Set<string>,
  named: Iterable<string | undefined>,
  cap: number,
): InstanceAdmission {
  const added = new Set<string>();
  for (const id of named) if (id !== undefined && !live.has(id)) added.add(id);
  const wouldBe = live.size + added.size;
  if (added.size > 0 && wouldBe > cap) {
    return { admitted: false, cap, live: live.size, wouldBe, added: added.size };
  }
  for (const id of added) live.add(id);
  return { admitted: true };
}

/** The 409 text of a refused push: the cap, whose tier it is, what the push would have made, when slots free. */
export function liveInstanceCapMessage(args: {
  tier: Tier;
  refusal: Extract<InstanceAdmission, { admitted: false }>;
  windowMs: number;
}): string {
  const { refusal } = args;
  const seconds = Math.round(args.windowMs / 1000);
  return (
    `live instance cap: the owner's tier ${args.tier} allows at most ${refusal.cap} live instances per proxy ` +
    `(${LIVE_INSTANCES_PER_ALLOWED_REPLICA} × maxReplicasPerProxy ${TIER_LIMITS[args.tier].maxReplicasPerProxy}); ` +
    `the proxy has ${refusal.live} and this push names ${refusal.added} more, ${refusal.wouldBe} in all. ` +
    `Nothing of this push was stored. An instance stops counting ${seconds} s after its latest sample ` +
    `(${LIVE_INSTANCE_AGE_FACTOR} × metricsMaxAgeSeconds)`
  );
}
