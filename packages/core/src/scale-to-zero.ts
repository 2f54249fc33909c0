import type { ActuatorKind } from "./actuators.ts";
import type { Limit, ObservedState } from "./decision.ts";
import type { FleetObservation } from "./observe.ts";
import type { ScalingPolicy } from "./policy.ts";

type ScaleToZeroLimit = Extract<Limit, { kind: "scaleToZero" | "activation" }>;

/**
 * When the fleet last saw a request (epoch ms): the newest sample counting requests (the stored one every server
 * sees, `lastRequestAt`, and the latest samples in hand), or the last scale up from 0 (its requests may not be in
 * a sample yet). A proxy that never saw one counts from its creation.
 */
export function lastRequestSeenAt(state: ObservedState): number {
  let last = Math.max(state.createdAt, state.lastRequestAt ?? 0);
  for (const sample of state.samples) if (sample.requestRate > 0 && sample.at > last) last = sample.at;
  for (const event of state.recentEvents)
    if (event.fromReplicas === 0 && event.toReplicas > 0 && event.at > last) last = event.at;
  return last;
}

/** The whole fleet's live request rate: the instances' own rates summed, or the fleet sample's. */
function fleetRequestRate(observation: FleetObservation | null): number {
  if (observation === null) return 0;
  const rate = observation.averages.requestRate;
  return observation.fleetAverage ? rate : rate * observation.liveSamples;
}

/**
 * Scale to zero, for bounds whose minimum is 0 (docs/metrics-sources.md, "Scale to zero"). At 0 replicas only
 * demand brings the fleet up: requests held at the front, or a live request rate above the metric source's
 * activation threshold (KEDA's activation), to at least 1; else it stays at 0. Above 0, the fleet goes to 0 once
 * live metrics show no request for `scaleToZeroGracePeriodSeconds` (Knative's grace period), whatever the
 * strategy proposed; a proposal of 0 before that is held at 1. Missing metrics are not idleness: without live
 * samples the fleet never goes to 0. Undefined when the rule leaves `desired` alone.
 */
export function scaleToZeroLimit(
  policy: ScalingPolicy,
  state: ObservedState,
  observation: FleetObservation | null,
  now: number,
  desired: number,
): ScaleToZeroLimit | undefined {
  const held = Math.max(0, state.heldRequests ?? 0);
  if (state.currentReplicas === 0) {
    const requestRate = fleetRequestRate(observation);
    const threshold = state.activationThreshold ?? 0;
    const source = held > 0 ? "front" : requestRate > threshold ? "metrics" : "none";
    const to = source === "none" ? 0 : Math.max(1, desired);
    return { kind: "activation", source, heldRequests: held, requestRate, threshold, from: desired, to };
  }
  const gracePeriodSeconds = policy.scaleToZeroGracePeriodSeconds;
  const idleSeconds = Math.max(0, (now - lastRequestSeenAt(state)) / 1000);
  if (observation !== null && held === 0 && idleSeconds >= gracePeriodSeconds) {
    return { kind: "scaleToZero", idleSeconds, gracePeriodSeconds, from: desired, to: 0 };
  }
  if (desired === 0) return { kind: "scaleToZero", idleSeconds, gracePeriodSeconds, from: 0, to: 1 };
  return undefined;
}

/**
 * How a fleet of each actuator kind comes back from 0: `buffer` (its front holds the requests, and asks for a
 * replica at once), `activation` (KEDA's: the metric source's activation threshold, no buffering: requests at 0
 * are the caller's to retry), or null: `none` changes nothing, so a fleet it records at 0 would never serve.
 */
export const SCALE_FROM_ZERO: Record<ActuatorKind, "buffer" | "activation" | null> = {
  none: null,
  local: "buffer",
  kubernetes: "activation",
  webhook: "activation",
  command: "activation",
};

/** Why a policy with minReplicas 0 does not fit a proxy on this actuator, or null when it does. */
export function minReplicasZeroError(kind: ActuatorKind): string | null {
  if (SCALE_FROM_ZERO[kind] !== null) return null;
  return `must be at least 1 for a proxy on actuator ${kind}: it changes nothing, so a fleet at 0 would never serve again (scale to zero needs local, kubernetes, webhook or command)`;
}
