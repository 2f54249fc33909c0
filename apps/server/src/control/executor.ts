import type { CompletionStatus } from "@proxyscale/core";
import {
  acquireLeases,
  ConflictError,
  completeScalingEvent,
  type Db,
  getProxy,
  type Logger,
  listLeases,
  liveLeaseNames,
  type ProxyRecord,
  type ScalingEventRecord,
  type ScalingExecutor,
  startScalingEventAudited,
  type Telemetry,
  withRetriedTransaction,
  writeAudit,
} from "@proxyscale/db";
import { type Actuator, errorMessage } from "../actuators/types.ts";
import type { ActuatorRegistry } from "./actuators.ts";

/** The fields of an event the executor works from (a full record or the control loop's summary). */
export type ExecutableEvent = Pick<
  ScalingEventRecord,
  "id" | "proxyId" | "previousReplicas" | "newReplicas" | "status"
>;

export const acceptedLeaseName = (eventId: string) => `accepted:${eventId}`;

/** How an execution ended, to be stored on its event. */
interface Outcome {
  status: CompletionStatus;
  error?: string;
  observedReplicas?: number | undefined;
}

/** Failed recoveries of one event (the actuator could not be asked) before it is failed anyway. */
const RECOVERY_ATTEMPTS = 3;

export interface ScaleExecutorOptions {
  db: Db;
  registry: ActuatorRegistry;
  logger: Logger;
  /** This server's lease holder id: the audit actor is `control:<holder>`. */
  holder: string;
  acceptedTimeoutMs: number;
  /** Whether this server owns the proxy now (holds its shard's lease). */
  owns(proxyId: string): boolean;
  /** Tells the owner of a proxy this server does not own that it has work (PostgreSQL NOTIFY). */
  handOff(proxyId: string): void;
  telemetry?: Telemetry;
  /** Called just before the actuator is asked to scale (reaction-time measurement). */
  onActuatorCall?(event: ExecutableEvent): void;
  /** After an event this executor ran has ended (completed, failed or given up), whoever triggered it. */
  onSettled?(event: ExecutableEvent): void;
}

/**
 * Runs scaling events: pending → in_progress (audited, one transaction) → actuator.setReplicas → completed with
 * the observed count, or failed with the error (audited with the completion). Only the proxy's owner runs an
 * event; `startScalingEventAudited` moves it out of pending for exactly one caller, so it never runs twice.
 */
export class ScaleExecutor implements ScalingExecutor {
  private readonly running = new Map<
    string,
    { proxyId: string; abort: AbortController; done: Promise<void> }
  >();
  private readonly recoveryFailures = new Map<string, number>();

  constructor(private readonly options: ScaleExecutorOptions) {}

  private get actor(): string {
    return `control:${this.options.holder}`;
  }

  /** From `scaling.execute` (manual) and from the control loop (auto). Never throws, never blocks. */
  submit(event: ExecutableEvent): void {
    void this.run(event);
  }

  isRunning(eventId: string): boolean {
    return this.running.has(eventId);
  }

  /** Whether an execution of this server is under way in the proxies `inShard` selects. */
  hasRunningIn(inShard: (proxyId: string) => boolean): boolean {
    for (const entry of this.running.values()) if (inShard(entry.proxyId)) return true;
    return false;
  }

  /** Resolves when the event's execution here has ended (at once when none runs). */
  async settled(eventId: string): Promise<void> {
    await this.running.get(eventId)?.done;
  }

  /** Runs the event here if this server owns its proxy; `proxy` spares a read when the caller has the row. */
  async run(event: ExecutableEvent, proxy?: ProxyRecord): Promise<void> {
    if (this.running.has(event.id)) return this.running.get(event.id)?.done;
    if (!this.options.owns(event.proxyId)) {
      // Left pending for the owner, which adopts pending events of its proxies.
      this.options.handOff(event.proxyId);
      return;
    }
    const abort = new AbortController();
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    this.running.set(event.id, { proxyId: event.proxyId, abort, done });
    try {
      await this.execute(event, abort.signal, proxy);
    } catch (error) {
      this.options.logger.error(
        { eventId: event.id, proxyId: event.proxyId, err: errorMessage(error) },
        "control: scaling event could not be run",
      );
    } finally {
      this.running.delete(event.id);
      finish();
      this.options.onSettled?.(event);
    }
  }

  private async execute(event: ExecutableEvent, signal: AbortSignal, known?: ProxyRecord): Promise<void> {
    const { db, logger } = this.options;
    const started = await startScalingEventAudited(db, { eventId: event.id, actorId: this.actor });
    if (!started) return;
    this.options.telemetry?.scalingEventChanged?.(started);
    const proxy = known ?? (await getProxy(db, { id: event.proxyId }));
    if (!proxy) return;
    let actuator: Actuator | undefined;
    let outcome: Outcome;
    try {
      actuator = await this.options.registry.get(proxy);
      this.options.onActuatorCall?.(event);
      const result = await actuator.setReplicas(event.newReplicas, {
        proxyId: event.proxyId,
        eventId: event.id,
        fromReplicas: event.previousReplicas,
        signal,
      });
      if (result.status === "accepted") {
        await acquireLeases(db, {
          names: [acceptedLeaseName(event.id)],
          holder: this.options.holder,
          ttlMs: this.options.acceptedTimeoutMs,
        });
        logger.info(
          { eventId: event.id, proxyId: event.proxyId },
          "control: the actuator accepted the scale; waiting for its completion",
        );
        return;
      }
      outcome = { status: "completed", observedReplicas: result.observedReplicas };
    } catch (error) {
      outcome = { status: "failed", error: errorMessage(error), observedReplicas: await observe(actuator) };
    }
    await this.store(event, outcome, actuator);
  }

  /**
   * Stores what the actuator did. A write the database still refuses after withRetriedTransaction's retries is
   * never turned into a failure of the scale: the actuator is asked again what runs, and the event is completed
   * (it observes the new count) or failed from that, in one more write. Should that fail too, the event stays
   * in progress, and recovery asks the actuator the same way.
   */
  private async store(
    event: ExecutableEvent,
    outcome: Outcome,
    actuator: Actuator | undefined,
  ): Promise<void> {
    try {
      await this.finish(event, outcome.status, outcome);
      return;
    } catch (error) {
      this.options.logger.warn(
        { eventId: event.id, proxyId: event.proxyId, err: errorMessage(error) },
        `control: storing the ${outcome.status} scale failed; asking the actuator what runs`,
      );
    }
    const observed = await observe(actuator);
    let observedOutcome: Outcome = outcome;
    if (observed === event.newReplicas) observedOutcome = { status: "completed", observedReplicas: observed };
    else if (observed !== undefined) {
      observedOutcome = {
        status: "failed",
        error:
          outcome.error ??
          `the actuator observes ${observed} replicas, not the ${event.newReplicas} asked for`,
        observedReplicas: observed,
      };
    }
    await this.finish(event, observedOutcome.status, observedOutcome);
  }

  /** Ends the event with its audit entry in one transaction. A finish that lost a race only records the count. */
  private async finish(
    event: ExecutableEvent,
    status: CompletionStatus,
    outcome: Omit<Outcome, "status">,
    action = status === "completed" ? "scaling.complete" : "scaling.fail",
  ): Promise<void> {
    const { db, logger } = this.options;
    try {
      const finished = await withRetriedTransaction(db, async (tx) => {
        const record = await completeScalingEvent(tx, {
          eventId: event.id,
          status,
          error: outcome.error ?? null,
          ...(outcome.observedReplicas === undefined ? {} : { observedReplicas: outcome.observedReplicas }),
        });
        await writeAudit(tx, {
          actorId: this.actor,
          action,
          entityType: "scaling_event",
          entityId: record.id,
          before: { status: "in_progress" },
          after: { ...record, observedReplicas: outcome.observedReplicas ?? null },
        });
        return record;
      });
      if (outcome.observedReplicas !== undefined) {
        this.options.registry.noteWritten(event.proxyId, outcome.observedReplicas);
      }
      this.options.telemetry?.scalingEventChanged?.(finished);
      const log = status === "completed" ? logger.info : logger.warn;
      log.call(
        logger,
        {
          eventId: event.id,
          proxyId: event.proxyId,
          from: event.previousReplicas,
          to: event.newReplicas,
          observed: outcome.observedReplicas,
          durationMs: finished.durationMs,
          error: outcome.error,
        },
        `control: scaling event ${status}`,
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      // Someone finished it first (a recovering server, the completion endpoint): keep the observation.
      logger.warn({ eventId: event.id, err: error.message }, "control: event was finished elsewhere");
      const proxy = await getProxy(db, { id: event.proxyId });
      if (proxy && outcome.observedReplicas !== undefined) {
        await this.options.registry.record(
          event.proxyId,
          {
            replicas: outcome.observedReplicas,
            readyReplicas: outcome.observedReplicas,
            unhealthyReplicas: 0,
          },
          proxy,
        );
      }
    }
  }

  /**
   * An event in flight in a proxy this server owns but does not run: adopt it when still pending (nothing was
   * executed yet), leave it while a receiver's acceptance is live, else reconcile it against the actuator —
   * completed when the actuator observes the new count, failed otherwise. Never calls setReplicas again.
   */
  async recover(event: ExecutableEvent): Promise<"adopted" | "waiting" | "completed" | "failed" | "retry"> {
    if (this.running.has(event.id) || !this.options.owns(event.proxyId)) return "waiting";
    if (event.status === "pending") {
      void this.run(event);
      return "adopted";
    }
    const { db } = this.options;
    const acceptedName = acceptedLeaseName(event.id);
    const acceptance = await liveLeaseNames(db, { names: [acceptedName] });
    if (acceptance.has(acceptedName)) return "waiting";
    const proxy = await getProxy(db, { id: event.proxyId });
    if (!proxy) return "waiting";
    const wasAccepted = await this.wasAccepted(event.id);
    let observed: number;
    try {
      observed = (await this.options.registry.get(proxy).then((actuator) => actuator.getReplicas())).replicas;
    } catch (error) {
      const failures = (this.recoveryFailures.get(event.id) ?? 0) + 1;
      this.recoveryFailures.set(event.id, failures);
      if (failures < RECOVERY_ATTEMPTS) return "retry";
      this.recoveryFailures.delete(event.id);
      await this.finish(
        event,
        "failed",
        { error: `recovery could not observe the actuator ${failures} times: ${errorMessage(error)}` },
        "scaling.recover",
      );
      return "failed";
    }
    this.recoveryFailures.delete(event.id);
    const reason = wasAccepted
      ? `the receiver accepted the scale but did not complete it within ${Math.round(this.options.acceptedTimeoutMs / 1000)} s`
      : "the server running this scale stopped (its lease expired)";
    if (observed === event.newReplicas) {
      await this.finish(event, "completed", { observedReplicas: observed }, "scaling.recover");
      return "completed";
    }
    await this.finish(
      event,
      "failed",
      {
        error: `${reason}; the actuator observes ${observed} replicas, not the ${event.newReplicas} asked for`,
        observedReplicas: observed,
      },
      "scaling.recover",
    );
    return "failed";
  }

  /** An acceptance lease row exists (live or expired) for the event. */
  private async wasAccepted(eventId: string): Promise<boolean> {
    const rows = await listLeases(this.options.db, { prefix: acceptedLeaseName(eventId) });
    return rows.length > 0;
  }

  /** Resolves when no execution runs here. */
  async allSettled(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((entry) => entry.done));
  }

  /** Stops waiting on executions: waits up to `graceMs`, then aborts the rest (their events fail). */
  async drain(graceMs: number): Promise<void> {
    const all = () => Promise.all([...this.running.values()].map((entry) => entry.done));
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
    if ((await Promise.race([all().then(() => "done" as const), timer])) === "timeout") {
      for (const entry of this.running.values()) entry.abort.abort(new Error("the server is shutting down"));
      await all();
    }
  }
}

/** What the actuator observes running, or undefined when there is none or it cannot tell. */
async function observe(actuator: Actuator | undefined): Promise<number | undefined> {
  try {
    return actuator ? (await actuator.getReplicas()).replicas : undefined;
  } catch {
    return undefined;
  }
}
