import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { ApiTelemetry, Logger } from "@proxyscale/api";
import { DEFAULT_POLICY, type Decision, decide, historySecondsFor } from "@proxyscale/core";
import {
  ConflictError,
  type ControlFacts,
  createScalingEvent,
  type Database,
  getProxy,
  listActiveScalingEvents,
  listAutomaticProxyIds,
  listenControl,
  loadControlFacts,
  loadObservedStates,
  notifyControl,
  type ObservedProxy,
  type ProxyRecord,
  recordDecision,
} from "@proxyscale/db";
import type { Registry } from "prom-client";
import type { Actuator, ActuatorDeps } from "../actuators/types.ts";
import { errorMessage } from "../actuators/types.ts";
import { type ActuatorFactory, ActuatorRegistry, observesReplicas, parseProxyActuator } from "./actuators.ts";
import {
  DEFAULT_ACCEPTED_TIMEOUT_SECONDS,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_RECONCILE_SECONDS,
} from "./config.ts";
import { ScaleExecutor } from "./executor.ts";
import { applyFallback, missedIntervals, withLimit } from "./fallback.ts";
import { type ControlMetrics, createControlMetrics } from "./metrics.ts";
import { SHARD_COUNT, ShardLeases, shardOf } from "./shards.ts";

export const DEFAULT_BATCH_SIZE = 500;
/** A reconcile lists this many batches' worth of ids per query. */
const LIST_PAGES_PER_QUERY = 10;
/** Writes of one batch that run at once (decisions, events): bounded so one tick never floods the pool. */
const WRITE_CONCURRENCY = 8;
/** A reconcile waits this long for an actuator's observation before deciding on the recorded count. */
const OBSERVE_TIMEOUT_MS = 5_000;
/** How long close() lets running scales finish before aborting them. */
const DRAIN_GRACE_MS = 10_000;

export interface ControlLoopOptions {
  database: Database;
  logger: Logger;
  clock?: () => number;
  reconcileIntervalMs?: number;
  leaseTtlMs?: number;
  acceptedTimeoutMs?: number;
  /** Proxies per reconcile query (default 500). */
  batchSize?: number;
  /** This server's id in lease rows; default `<hostname>:<pid>:<random>`. */
  holder?: string;
  /** Builds actuators; default the real factory (`createActuator`). */
  createActuator?: ActuatorFactory;
  /** Where `local` workers push metrics (set once the server listens). */
  metricsReporting?: (proxy: ProxyRecord) => Promise<ActuatorDeps["metricsReporting"]>;
  telemetry?: ApiTelemetry;
  /** The server's Prometheus registry, for the control loop's own metrics. */
  metricsRegistry?: Registry;
  /** Run the heartbeat and reconcile timers (default true). Without them, call heartbeat()/reconcile(). */
  timers?: boolean;
}

type Trigger = "push" | "reconcile";

interface Flight {
  dirty: boolean;
  /** performance.now() of the earliest push not yet evaluated. */
  pushedAt: number | undefined;
}

export interface ReconcileResult {
  proxies: number;
  recovered: number;
  ms: number;
}

const noMetrics: ControlMetrics = {
  evaluation() {},
  reconcileTick() {},
  reaction() {},
  shardsHeld() {},
  recovery() {},
};

/**
 * The control loop of one server. A metrics push evaluates its proxy at once (pushes arriving together coalesce:
 * one evaluation runs per proxy, and one more if pushes came in meanwhile); a reconcile tick evaluates every
 * automatic proxy this server owns, in batches, and takes over events left in flight. Ownership is per shard of
 * proxies, through lease rows in PostgreSQL, so with several servers each proxy has exactly one controller.
 */
export class ControlLoop {
  readonly executor: ScaleExecutor;
  readonly registry: ActuatorRegistry;
  readonly shards: ShardLeases;
  readonly holder: string;
  private readonly database: Database;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly reconcileIntervalMs: number;
  private readonly leaseTtlMs: number;
  private readonly batchSize: number;
  private readonly telemetry: ApiTelemetry;
  private readonly metrics: ControlMetrics;
  private readonly flights = new Map<string, Flight>();
  private readonly historySeconds = new Map<string, number>();
  private readonly inFallback = new Set<string>();
  /** performance.now() of the push behind each event an evaluation created. */
  private readonly pushOfEvent = new Map<string, number>();
  private readonly handOffs = new Set<string>();
  private handOffScheduled = false;
  private ticking: Promise<ReconcileResult> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private listener: { unlisten(): Promise<void> } | null = null;
  private started = false;
  private closed = false;

  constructor(private readonly options: ControlLoopOptions) {
    this.database = options.database;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    this.reconcileIntervalMs = options.reconcileIntervalMs ?? DEFAULT_RECONCILE_SECONDS * 1000;
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_SECONDS * 1000;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.telemetry = options.telemetry ?? {};
    this.metrics = options.metricsRegistry ? createControlMetrics(options.metricsRegistry) : noMetrics;
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    const db = this.database.db;
    this.registry = new ActuatorRegistry({
      db,
      logger: this.logger,
      ...(options.createActuator ? { create: options.createActuator } : {}),
      ...(options.metricsReporting ? { metricsReporting: options.metricsReporting } : {}),
    });
    this.shards = new ShardLeases({
      db,
      holder: this.holder,
      ttlMs: this.leaseTtlMs,
      logger: this.logger,
      canRelease: (shard) => !this.executor.hasRunningIn((proxyId) => shardOf(proxyId) === shard),
    });
    this.executor = new ScaleExecutor({
      db,
      registry: this.registry,
      logger: this.logger,
      holder: this.holder,
      acceptedTimeoutMs: options.acceptedTimeoutMs ?? DEFAULT_ACCEPTED_TIMEOUT_SECONDS * 1000,
      owns: (proxyId) => !this.closed && this.shards.owns(proxyId),
      handOff: (proxyId) => this.handOff(proxyId),
      telemetry: this.telemetry,
      onActuatorCall: (event) => {
        const pushedAt = this.pushOfEvent.get(event.id);
        if (pushedAt === undefined) return;
        this.pushOfEvent.delete(event.id);
        this.metrics.reaction((performance.now() - pushedAt) / 1000);
      },
    });
  }

  /** Takes this server's shards, listens for hand-offs from other servers, starts the timers. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.heartbeat();
    this.listener = await listenControl(this.database, (proxyId) => {
      if (this.shards.owns(proxyId)) void this.evaluate(proxyId);
    });
    if (this.options.timers ?? true) {
      const every = (ms: number, fn: () => Promise<unknown>) => {
        const timer = setInterval(() => {
          fn().catch((error: unknown) =>
            this.logger.warn({ err: errorMessage(error) }, "control: background step failed"),
          );
        }, ms);
        timer.unref();
        this.timers.push(timer);
      };
      every(Math.max(50, Math.floor(this.leaseTtlMs / 3)), () => this.heartbeat());
      every(this.reconcileIntervalMs, () => this.reconcile());
      void this.reconcile().catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: first reconcile failed"),
      );
    }
  }

  /** Renews and rebalances shard leases; a reconcile follows when shards were gained. */
  async heartbeat(): Promise<void> {
    if (this.closed) return;
    const result = await this.shards.heartbeat();
    this.metrics.shardsHeld(result.held.length);
    if (result.acquired.length > 0 && this.started && (this.options.timers ?? true)) {
      void this.reconcile().catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: reconcile after taking shards failed"),
      );
    }
  }

  /** The API's hook: samples of these proxies were just stored. */
  readonly onMetricsRecorded = (proxyIds: readonly string[]): void => {
    if (this.closed) return;
    const pushedAt = performance.now();
    for (const proxyId of proxyIds) {
      if (this.shards.owns(proxyId)) void this.evaluate(proxyId, pushedAt);
      else this.handOff(proxyId);
    }
  };

  /**
   * Evaluates one proxy now, single-flight: while an evaluation of it runs, further calls only mark it dirty and
   * one more evaluation follows. Resolves when the proxy has no evaluation pending.
   */
  evaluate(proxyId: string, pushedAt?: number): Promise<void> {
    const existing = this.flights.get(proxyId);
    if (existing) {
      existing.dirty = true;
      existing.pushedAt ??= pushedAt;
      return this.untilSettled(proxyId);
    }
    const flight: Flight = { dirty: false, pushedAt };
    this.flights.set(proxyId, flight);
    return this.fly(proxyId, flight, "push");
  }

  private async fly(proxyId: string, flight: Flight, trigger: Trigger): Promise<void> {
    let currentTrigger = trigger;
    for (;;) {
      const pushedAt = flight.pushedAt;
      flight.pushedAt = undefined;
      flight.dirty = false;
      try {
        await this.evaluateBatch([proxyId], currentTrigger, pushedAt);
      } catch (error) {
        this.logger.warn({ proxyId, err: errorMessage(error) }, "control: evaluation failed");
      }
      // Checked and removed in one synchronous step, so a push can never mark a flight that is ending.
      if (!flight.dirty || this.closed) {
        this.flights.delete(proxyId);
        this.settle(proxyId);
        return;
      }
      currentTrigger = "push";
    }
  }

  private readonly waiters = new Map<string, Array<() => void>>();

  private untilSettled(proxyId: string): Promise<void> {
    return new Promise((resolve) => {
      const list = this.waiters.get(proxyId) ?? [];
      list.push(resolve);
      this.waiters.set(proxyId, list);
    });
  }

  private settle(proxyId: string): void {
    const list = this.waiters.get(proxyId);
    this.waiters.delete(proxyId);
    for (const resolve of list ?? []) resolve();
  }

  /** Resolves when every evaluation and every scale this server runs has ended (tests, benchmarks). */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [...this.flights.keys()].map((proxyId) => this.untilSettled(proxyId));
      if (this.ticking) pending.push(this.ticking.then(() => undefined));
      await Promise.all(pending);
      await this.executor.allSettled();
      if (this.flights.size === 0 && !this.ticking) return;
    }
  }

  /**
   * One reconcile tick: take over events in flight that no live server runs, then evaluate every automatic
   * proxy of the held shards, `batchSize` at a time (two queries per batch). Ticks never overlap.
   */
  reconcile(): Promise<ReconcileResult> {
    if (this.closed) return Promise.resolve({ proxies: 0, recovered: 0, ms: 0 });
    this.ticking ??= this.tick().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async tick(): Promise<ReconcileResult> {
    const startedAt = performance.now();
    const shards = this.shards.heldShards();
    if (shards.length === 0) return { proxies: 0, recovered: 0, ms: 0 };
    const db = this.database.db;
    let recovered = 0;
    for (const event of await listActiveScalingEvents(db, { limit: this.batchSize })) {
      if (!this.shards.owns(event.proxyId) || this.executor.isRunning(event.id)) continue;
      const outcome = await this.executor.recover(event).catch((error: unknown) => {
        this.logger.warn({ eventId: event.id, err: errorMessage(error) }, "control: recovery failed");
        return "retry" as const;
      });
      this.metrics.recovery(outcome);
      if (outcome !== "waiting") recovered += 1;
    }
    let proxies = 0;
    const listPage = this.batchSize * LIST_PAGES_PER_QUERY;
    const list = (afterId: string | null) =>
      listAutomaticProxyIds(db, {
        shards,
        shardCount: SHARD_COUNT,
        defaultMode: DEFAULT_POLICY.mode,
        afterId,
        limit: listPage,
      });
    let page = await list(null);
    while (page.length > 0) {
      // The next page is fetched while this one is evaluated.
      const next = page.length < listPage ? Promise.resolve([]) : list(page[page.length - 1]!);
      next.catch(() => {});
      for (let start = 0; start < page.length; start += this.batchSize) {
        proxies += await this.reconcileBatch(page.slice(start, start + this.batchSize));
      }
      page = await next;
    }
    await this.pruneActuators();
    const ms = performance.now() - startedAt;
    this.metrics.reconcileTick(ms / 1000, proxies);
    return { proxies, recovered, ms };
  }

  /** Evaluates one batch of a tick; returns how many proxies it evaluated. */
  private async reconcileBatch(ids: readonly string[]): Promise<number> {
    // A proxy with an evaluation running is left to it; pushes during this batch mark it dirty.
    const batch = ids.filter((proxyId) => !this.flights.has(proxyId));
    const flights = batch.map((proxyId) => {
      const flight: Flight = { dirty: false, pushedAt: undefined };
      this.flights.set(proxyId, flight);
      return [proxyId, flight] as const;
    });
    try {
      await this.evaluateBatch(batch, "reconcile");
    } finally {
      for (const [proxyId, flight] of flights) {
        if (flight.dirty && !this.closed) {
          void this.fly(proxyId, flight, "push");
        } else {
          this.flights.delete(proxyId);
          this.settle(proxyId);
        }
      }
    }
    return batch.length;
  }

  /**
   * Closes the actuators of proxies that were deleted or whose shard moved to another server (a `local` proxy's
   * workers drain), unless a scale of theirs still runs here. In the background: draining takes a while.
   */
  private async pruneActuators(): Promise<void> {
    const cached = this.registry.proxyIds();
    if (cached.length === 0) return;
    const existing = await loadControlFacts(this.database.db, { proxyIds: cached });
    for (const proxyId of cached) {
      if (existing.has(proxyId) && this.shards.owns(proxyId)) continue;
      if (this.executor.hasRunningIn((running) => running === proxyId)) continue;
      void this.registry.close(proxyId);
    }
  }

  private async loadStates(proxyIds: readonly string[], now: number) {
    const db = this.database.db;
    const fallbackHistory = historySecondsFor(DEFAULT_POLICY);
    let historySeconds = 0;
    for (const proxyId of proxyIds) {
      historySeconds = Math.max(historySeconds, this.historySeconds.get(proxyId) ?? fallbackHistory);
    }
    const [observed, facts] = await Promise.all([
      loadObservedStates(db, { proxyIds, now, historySeconds }),
      loadControlFacts(db, { proxyIds }),
    ]);
    for (const [proxyId, entry] of observed)
      this.historySeconds.set(proxyId, historySecondsFor(entry.policy));
    return { observed, facts };
  }

  private async evaluateBatch(
    proxyIds: readonly string[],
    trigger: Trigger,
    pushedAt?: number,
  ): Promise<void> {
    if (proxyIds.length === 0) return;
    const now = this.clock();
    const { observed, facts } = await this.loadStates(proxyIds, now);
    const work = proxyIds.flatMap((proxyId) => {
      const entry = observed.get(proxyId);
      if (!entry) {
        this.forget(proxyId);
        return [];
      }
      return [{ entry, facts: facts.get(proxyId) }];
    });
    if (trigger === "reconcile") await this.refreshObservations(work);
    let next = 0;
    const worker = async () => {
      while (next < work.length) {
        const item = work[next++]!;
        try {
          await this.act(item.entry, item.facts, trigger, now, pushedAt);
        } catch (error) {
          this.logger.warn(
            { proxyId: item.entry.proxy.id, err: errorMessage(error) },
            "control: acting on a decision failed",
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, work.length) }, worker));
  }

  /**
   * Before a reconcile decides, actuators that can see what runs (local, kubernetes, webhook with statusUrl,
   * command with getReplicasCommand) are asked, so the decision starts from the observed count.
   */
  private async refreshObservations(work: Array<{ entry: ObservedProxy; facts: ControlFacts | undefined }>) {
    const targets = work.filter(({ entry, facts }) => {
      if (facts?.activeEvent || entry.policy.mode === "off" || entry.proxy.actuator.kind === "none")
        return false;
      try {
        return observesReplicas(parseProxyActuator(entry.proxy));
      } catch {
        return false;
      }
    });
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const { entry } = targets[next++]!;
        const observation = this.registry.observe(entry.proxy);
        const timeout = new Promise<null>((resolve) =>
          setTimeout(() => resolve(null), OBSERVE_TIMEOUT_MS).unref(),
        );
        try {
          const counts = await Promise.race([observation, timeout]);
          if (counts) {
            entry.state.currentReplicas = counts.replicas;
            entry.state.unhealthyReplicas = counts.unhealthyReplicas;
            entry.proxy.currentReplicas = counts.replicas;
          } else {
            observation.catch(() => {});
          }
        } catch (error) {
          this.logger.warn(
            { proxyId: entry.proxy.id, err: errorMessage(error) },
            "control: the actuator could not be observed",
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, targets.length) }, worker));
  }

  private async act(
    entry: ObservedProxy,
    facts: ControlFacts | undefined,
    trigger: Trigger,
    now: number,
    pushedAt: number | undefined,
  ): Promise<void> {
    const { proxy, policy, state } = entry;
    const active = facts?.activeEvent ?? null;
    // A pending event (a manual scale another server received) is run whatever the mode.
    if (active?.status === "pending" && !this.executor.isRunning(active.id)) {
      this.metrics.recovery(await this.executor.recover(active));
    }
    if (policy.mode === "off") {
      this.forget(proxy.id);
      return;
    }
    let decision: Decision = decide(policy, state, now);
    const missed = missedIntervals({
      now,
      lastSampleAt: facts?.lastSampleAt?.getTime() ?? null,
      createdAt: proxy.createdAt.getTime(),
      metricsMaxAgeSeconds: policy.metricsMaxAgeSeconds,
      intervalMs: this.reconcileIntervalMs,
    });
    decision = applyFallback(decision, policy, missed);
    const inFallback = decision.limits.some((limit) => limit.kind === "fallback");
    const enteredFallback = inFallback && !this.inFallback.has(proxy.id);
    if (inFallback) this.inFallback.add(proxy.id);
    else this.inFallback.delete(proxy.id);
    let skipped = false;
    if (decision.action !== "none" && active) {
      skipped = true;
      decision = withLimit(
        decision,
        {
          kind: "inFlight",
          eventId: active.id,
          toReplicas: active.newReplicas,
          from: decision.desiredReplicas,
          to: decision.currentReplicas,
        },
        decision.currentReplicas,
      );
    }
    const dryRun = policy.mode === "dryRun" && decision.action !== "none";
    if (dryRun) decision = withLimit(decision, { kind: "dryRun" });
    const outcome = skipped
      ? "skipped_in_flight"
      : dryRun
        ? "dry_run"
        : decision.action !== "none"
          ? "scaled"
          : inFallback
            ? "fallback"
            : "held";
    this.metrics.evaluation(trigger, outcome);
    // A push brings news, so its decision is kept; a reconcile that changes nothing writes nothing.
    if (trigger === "reconcile" && decision.action === "none" && !skipped && !enteredFallback) return;
    const db = this.database.db;
    const { id: decisionId } = await recordDecision(db, { proxyId: proxy.id, decision, triggeredBy: "auto" });
    this.telemetry.decisionMade?.(proxy, decision);
    if (policy.mode !== "auto" || decision.action === "none") return;
    let event: Awaited<ReturnType<typeof createScalingEvent>>;
    try {
      event = await createScalingEvent(db, {
        proxyId: proxy.id,
        previousReplicas: decision.currentReplicas,
        newReplicas: decision.desiredReplicas,
        triggeredBy: "auto",
        reason: decision.explanation,
        decisionId,
        snapshot: { loadScore: decision.loadScore, samples: state.samples, decision },
      });
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      // Another scale began after this decision's state was read (a manual one, or another server).
      this.logger.info({ proxyId: proxy.id, err: error.message }, "control: scale refused, one is in flight");
      return;
    }
    this.telemetry.scalingEventChanged?.(event);
    if (pushedAt !== undefined) this.pushOfEvent.set(event.id, pushedAt);
    void this.executor.run(event, proxy);
  }

  private forget(proxyId: string): void {
    this.historySeconds.delete(proxyId);
    this.inFallback.delete(proxyId);
  }

  /** Another server owns the proxy: tell it through PostgreSQL (batched per tick of the event loop). */
  private handOff(proxyId: string): void {
    if (this.closed || this.database.driver !== "postgres") return;
    this.handOffs.add(proxyId);
    if (this.handOffScheduled) return;
    this.handOffScheduled = true;
    setImmediate(() => {
      this.handOffScheduled = false;
      const proxyIds = [...this.handOffs];
      this.handOffs.clear();
      notifyControl(this.database.db, { schema: this.database.schema, proxyIds }).catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: could not notify the owning server"),
      );
    });
  }

  /** The proxy's actuator, started now (a `local` proxy's front and workers), its counts written to the row. */
  async ensureActuator(proxyId: string): Promise<Actuator> {
    const proxy = await getProxy(this.database.db, { id: proxyId });
    if (!proxy) throw new Error(`proxy ${proxyId} does not exist`);
    await this.registry.observe(proxy);
    return this.registry.get(proxy);
  }

  /**
   * Stops: no new evaluations, running scales get up to 10 s to finish (then they are aborted and fail), every
   * actuator is closed (local workers drain), and the leases are released so other servers take over at once.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.listener?.unlisten().catch(() => {});
    await this.ticking?.catch(() => {});
    await Promise.all([...this.flights.keys()].map((proxyId) => this.untilSettled(proxyId)));
    await this.executor.drain(DRAIN_GRACE_MS);
    await this.registry.closeAll();
    await this.shards
      .releaseAll()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: could not release leases"),
      );
  }
}
