/**
 * HPA `behavior`, ported from kubernetes pkg/controller/podautoscaler/horizontal.go
 * (stabilizeRecommendationWithBehaviors, calculateScaleUpLimitWithScalingRules,
 * calculateScaleDownLimitWithBehaviors, convertDesiredReplicasWithBehaviorRate, getReplicasChangePerPeriod).
 * Pure: `now` is passed in.
 */
import type { Limit, RecommendationRecord, ScaleEventRecord } from "./decision.ts";
import type { Behavior, HpaScalingPolicy, ScalingRules } from "./policy.ts";

/**
 * Brings `current` within [min of the scale-up window, max of the scale-down window], both windows
 * including the new recommendation. An empty window is no constraint. A record counts when it is
 * strictly newer than `now − window`, as HPA's `timestamp.After(cutoff)`.
 */
export function stabilize(
  currentReplicas: number,
  recommended: number,
  history: readonly RecommendationRecord[],
  behavior: Behavior,
  now: number,
): number {
  const upCutoff = now - behavior.scaleUp.stabilizationWindowSeconds * 1000;
  const downCutoff = now - behavior.scaleDown.stabilizationWindowSeconds * 1000;
  let up = recommended;
  let down = recommended;
  for (const rec of history) {
    if (rec.at > upCutoff && rec.replicas < up) up = rec.replicas;
    if (rec.at > downCutoff && rec.replicas > down) down = rec.replicas;
  }
  let stabilized = currentReplicas;
  if (stabilized < up) stabilized = up;
  if (stabilized > down) stabilized = down;
  return stabilized;
}

/** The bound a direction's rate policies allow, and the policy that set it (none when Disabled). */
export interface RateBound {
  limit: number;
  policy?: HpaScalingPolicy | undefined;
}

/** Replicas added (direction 1) or removed (direction −1) by events strictly newer than `now − period`. */
export function replicasChangedInPeriod(
  events: readonly ScaleEventRecord[],
  periodSeconds: number,
  direction: 1 | -1,
  now: number,
): number {
  const cutoff = now - periodSeconds * 1000;
  let changed = 0;
  for (const event of events) {
    if (event.at <= cutoff) continue;
    const change = (event.toReplicas - event.fromReplicas) * direction;
    if (change > 0) changed += change;
  }
  return changed;
}

/**
 * The bound a direction's rules allow now: the most replicas going up (`direction` 1), the fewest going down
 * (−1). Percent rounds up on the way up and truncates on the way down, as HPA does. Max picks the policy that
 * allows the largest change, Min the smallest; on a tie the first policy wins.
 */
export function rateBound(
  currentReplicas: number,
  events: readonly ScaleEventRecord[],
  rules: ScalingRules,
  direction: 1 | -1,
  now: number,
): RateBound {
  if (rules.selectPolicy === "Disabled") return { limit: currentReplicas };
  const widest = rules.selectPolicy === "Max";
  let best: RateBound | undefined;
  let bestReach = 0;
  for (const policy of rules.policies) {
    const added = replicasChangedInPeriod(events, policy.periodSeconds, 1, now);
    const removed = replicasChangedInPeriod(events, policy.periodSeconds, -1, now);
    const periodStart = currentReplicas - added + removed;
    let proposed: number;
    if (direction === 1) {
      proposed =
        policy.type === "Pods"
          ? periodStart + policy.value
          : Math.ceil(periodStart * (1 + policy.value / 100));
    } else {
      proposed =
        policy.type === "Pods"
          ? periodStart - policy.value
          : Math.trunc(periodStart * (1 - policy.value / 100));
    }
    const reach = direction * proposed;
    if (best === undefined || (widest ? reach > bestReach : reach < bestReach)) {
      best = { limit: proposed, policy };
      bestReach = reach;
    }
  }
  return best ?? { limit: currentReplicas };
}

/**
 * Applies the rate policies of the direction `desired` moves in (HPA convertDesiredReplicasWithBehaviorRate,
 * without its min/max part): never past the bound, and never backwards past `current` when earlier events
 * already used the period's allowance. Returns the limit when the bound changed the number.
 */
export function limitRate(
  currentReplicas: number,
  desired: number,
  events: readonly ScaleEventRecord[],
  behavior: Behavior,
  now: number,
): { desired: number; limit?: Limit } {
  if (desired > currentReplicas) {
    const bound = rateBound(currentReplicas, events, behavior.scaleUp, 1, now);
    const allowed = Math.max(bound.limit, currentReplicas);
    if (desired <= allowed) return { desired };
    return {
      desired: allowed,
      limit: {
        kind: "ratePolicy",
        direction: "scale_up",
        selectPolicy: behavior.scaleUp.selectPolicy,
        policy: bound.policy,
        from: desired,
        to: allowed,
      },
    };
  }
  if (desired < currentReplicas) {
    const bound = rateBound(currentReplicas, events, behavior.scaleDown, -1, now);
    const allowed = Math.min(bound.limit, currentReplicas);
    if (desired >= allowed) return { desired };
    return {
      desired: allowed,
      limit: {
        kind: "ratePolicy",
        direction: "scale_down",
        selectPolicy: behavior.scaleDown.selectPolicy,
        policy: bound.policy,
        from: desired,
        to: allowed,
      },
    };
  }
  return { desired };
}
