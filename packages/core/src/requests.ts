import { z } from "zod";
import type { ObservedState } from "./decision.ts";
import type { ScalingPolicy } from "./policy.ts";
import { storableInteger, storableText } from "./storable.ts";

/**
 * Who asked for a scale: the control loop, a user, an admin (the seed's triggeredBy), or `activation`: the control
 * loop at once, for requests held at a fleet's front while it is at 0.
 */
export const SCALING_TRIGGERS = ["auto", "manual", "admin", "activation"] as const;
export type ScalingTrigger = (typeof SCALING_TRIGGERS)[number];

/** The statuses a scaling event can be finished with. */
export const COMPLETION_STATUSES = ["completed", "failed", "cancelled"] as const;
export type CompletionStatus = (typeof COMPLETION_STATUSES)[number];

/**
 * Finishing a scaling event (the seed's completeScalingEvent). A plain object schema, so callers can
 * `.extend` it (e.g. with their own id format).
 */
export const scalingCompletionSchema = z.strictObject({
  eventId: z
    .string({ message: "must name the scaling event" })
    .min(1, { message: "must name the scaling event" }),
  status: z.enum(COMPLETION_STATUSES, { message: "must be one of completed, failed, cancelled" }),
  /** Why it failed. */
  error: storableText("multiline").min(1).max(2000).optional(),
  /** Replicas the actuator saw once it finished. */
  observedReplicas: storableInteger(0).optional(),
});
export type ScalingCompletion = z.infer<typeof scalingCompletionSchema>;

/** The replica counts a manual scale may ask for under `policy` (and the owner's caps, when given). */
export function replicaRequestSchema(
  policy: Pick<ScalingPolicy, "minReplicas" | "maxReplicas">,
  caps?: ObservedState["caps"],
) {
  const range = `must be within the policy's minReplicas..maxReplicas (${policy.minReplicas}..${policy.maxReplicas})`;
  const count = z
    .number({ message: "must be a number" })
    .int({ message: "must be an integer" })
    .min(policy.minReplicas, { message: range })
    .max(policy.maxReplicas, { message: range });
  const cap = Math.min(caps?.tierMaxReplicas ?? Infinity, caps?.budgetMaxReplicas ?? Infinity);
  return cap < policy.maxReplicas
    ? count.max(cap, { message: `must be at most ${cap} (the owner's cap)` })
    : count;
}

/** Checks a requested replica count (the seed's executeScaling input) against the policy and caps. */
export function validateReplicaRequest(
  policy: Pick<ScalingPolicy, "minReplicas" | "maxReplicas">,
  newReplicaCount: unknown,
  caps?: ObservedState["caps"],
) {
  return replicaRequestSchema(policy, caps).safeParse(newReplicaCount);
}
