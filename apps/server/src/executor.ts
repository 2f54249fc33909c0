import type { Logger, ScalingExecutor } from "@proxyscale/db";

/**
 * `createServer`'s executor when none is given (startServer passes the control loop's): the event stays
 * `pending`, and whatever changes the replicas (an operator, a deploy script, an external actuator) reports
 * the outcome with `POST /api/proxy/scaling/complete` (tRPC `scaling.complete`).
 */
export function createPendingExecutor(logger: Logger): ScalingExecutor {
  return {
    submit(event) {
      logger.info(
        { eventId: event.id, proxyId: event.proxyId, from: event.previousReplicas, to: event.newReplicas },
        "scaling event pending: waiting for an external actuator to complete it",
      );
    },
  };
}
