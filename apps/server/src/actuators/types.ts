import type { Logger } from "@proxyscale/db";

/** What an actuator observes of a proxy's replicas. */
export interface ReplicaCounts {
  /** Replicas that exist (or are being started or replaced). */
  replicas: number;
  /** Replicas serving traffic. */
  readyReplicas: number;
  /** Replicas known to be broken (crashed, failing): they do not count as capacity. */
  unhealthyReplicas: number;
}

export interface SetReplicasContext {
  proxyId: string;
  /** The scaling event this call executes; receivers use it to deduplicate and to complete it later. */
  eventId: string;
  fromReplicas: number;
  signal?: AbortSignal;
}

export type SetReplicasResult =
  /** Done: the count the actuator observed afterwards (which may differ from the one asked for). */
  | { status: "completed"; observedReplicas: number }
  /** The receiver took the request and will complete the event later through the completion endpoint. */
  | { status: "accepted" };

/** One replica's metrics endpoint, for the `scrape` metric source. */
export interface ActuatorTarget {
  /** The replica's name (a local replica's instance, a pod's name), else its address. */
  instance: string;
  /** The exposition URL, when the actuator knows the path too. */
  url?: string;
  address: string;
  port: number;
  /** The port's name, when it has one (a Kubernetes Service port). */
  portName?: string;
}

export interface Actuator {
  readonly kind: string;
  getReplicas(): Promise<ReplicaCounts>;
  setReplicas(replicas: number, ctx: SetReplicasContext): Promise<SetReplicasResult>;
  /** Calls `onChange` whenever the observed counts change; returns the unsubscribe function. */
  watch?(onChange: (counts: ReplicaCounts) => void): () => void;
  /** Requests its front holds while the fleet is at 0 (`local`): demand that activates the fleet. */
  heldRequests?(): number;
  /** The ready replicas' metrics endpoints, for actuators that know them (`local` templates, `kubernetes`). */
  targets?(): Promise<ActuatorTarget[]>;
  /** Releases everything the actuator holds (processes, listeners, sockets). */
  close(): Promise<void>;
}

export interface ActuatorDeps {
  proxyId: string;
  /**
   * The count last recorded for this proxy. Actuators that cannot observe replicas (`none`, `command` without
   * `getReplicasCommand`, `webhook` without `statusUrl`) report it until they change it; `local` starts this many.
   */
  initialReplicas?: number;
  logger?: Logger;
  /** Environment for in-cluster and kubeconfig discovery. Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Where `local` workers push their metrics, unless the config names its own URL and token. */
  metricsReporting?: { url: string; token: string };
  /**
   * Asks the control loop to scale the fleet from 0 at once (trigger `activation`). Given, a `local` front holds
   * requests while no replica serves (its coldStartQueue); absent, it answers them 503 at once.
   */
  onColdStart?: () => void;
}

export type ActuatorErrorCode =
  | "invalid_request"
  | "not_found"
  | "conflict"
  | "unauthorized"
  | "forbidden"
  | "timeout"
  | "unavailable"
  | "bad_response"
  | "command_failed"
  | "start_failed"
  | "aborted"
  | "closed";

/** Every actuator failure: `code` for programs, `message` for people (never holding a secret). */
export class ActuatorError extends Error {
  readonly code: ActuatorErrorCode;
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(
    code: ActuatorErrorCode,
    message: string,
    options: { retryable?: boolean; status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ActuatorError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }
}

export function assertReplicaCount(replicas: number): void {
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new ActuatorError("invalid_request", `replicas must be a whole number ≥ 0, got ${replicas}`);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new ActuatorError("aborted", `${what} was aborted`, { cause: signal.reason });
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** Resolves after `ms`, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ActuatorError("aborted", "wait was aborted"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ActuatorError("aborted", "wait was aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
