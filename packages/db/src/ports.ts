import type { Decision, ScalingTrigger } from "@proxyscale/core";
import type { ScalingEventRecord } from "./queries/events.ts";
import type { ProxyRecord } from "./queries/proxies.ts";

/**
 * The interfaces the API, the control loop and the actuators share, in the one package all of them import
 * (core stays free of the db's record types). Implementations are injected by whoever assembles the server.
 */

/** A pino-compatible logger: structured object first, message second. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Receives every scaling event `scaling.execute` creates. The server's control loop takes it from `pending`
 * through `in_progress` to a final status with the proxy's actuator; an executor that does not (the server's
 * pending executor) leaves it for `scaling.complete`. `submit` must not throw or block: the request has
 * already been answered with 202.
 */
export interface ScalingExecutor {
  submit(event: ScalingEventRecord): void;
}

/** Hooks the server turns into Prometheus metrics. All optional, all synchronous and cheap. */
export interface Telemetry {
  sampleRecorded?(proxyId: string, loadScore: number): void;
  /** `stored` is the decision's stored record: its id and what triggered it (the live feed sends both). */
  decisionMade?(
    proxy: ProxyRecord,
    decision: Decision,
    stored: { id: string; triggeredBy: ScalingTrigger },
  ): void;
  scalingEventChanged?(event: ScalingEventRecord): void;
  proxyRemoved?(proxyId: string): void;
}
