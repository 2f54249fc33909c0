import { type Decision, explainDecision, type Limit, type ScalingPolicy } from "@proxyscale/core";

/**
 * How many reconcile intervals in a row found the proxy without live metrics, computed from time alone so every
 * server agrees without keeping counters: 0 while the newest sample is younger than `metricsMaxAgeSeconds`, then
 * one more per interval. A proxy that never reported counts from its creation.
 */
export function missedIntervals(args: {
  now: number;
  lastSampleAt: number | null;
  createdAt: number;
  metricsMaxAgeSeconds: number;
  intervalMs: number;
}): number {
  const staleSince = (args.lastSampleAt ?? args.createdAt) + args.metricsMaxAgeSeconds * 1000;
  if (args.now < staleSince) return 0;
  return Math.floor((args.now - staleSince) / args.intervalMs) + 1;
}

/** The decision with `limit` appended, its count set to `desired`, its action and explanation recomputed. */
export function withLimit(decision: Decision, limit: Limit, desired = decision.desiredReplicas): Decision {
  const current = decision.currentReplicas;
  const next: Decision = {
    ...decision,
    limits: [...decision.limits, limit],
    desiredReplicas: desired,
    action: desired > current ? "scale_up" : desired < current ? "scale_down" : "none",
  };
  next.explanation = explainDecision(next);
  return next;
}

function hasNoLiveMetrics(decision: Decision): boolean {
  return decision.limits.some((limit) => limit.kind === "noMetrics" && limit.metric === undefined);
}

/**
 * KEDA's fallback: when the decision had no live metrics and `missed` reached the policy's failureThreshold,
 * hold (no `fallback.replicas`) or go to `fallback.replicas` within [minReplicas, maxReplicas]. Otherwise the
 * decision is returned unchanged: stale samples never drive a decision, and before the threshold the engine
 * already holds.
 */
export function applyFallback(decision: Decision, policy: ScalingPolicy, missed: number): Decision {
  const { failureThreshold, replicas } = policy.fallback;
  if (missed < failureThreshold || !hasNoLiveMetrics(decision)) return decision;
  const to =
    replicas === undefined
      ? decision.desiredReplicas
      : Math.min(policy.maxReplicas, Math.max(policy.minReplicas, replicas));
  return withLimit(
    decision,
    {
      kind: "fallback",
      missedIntervals: missed,
      failureThreshold,
      ...(replicas === undefined ? {} : { replicas }),
      from: decision.desiredReplicas,
      to,
    },
    to,
  );
}
