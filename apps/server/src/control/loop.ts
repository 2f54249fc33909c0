import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import {
  DEFAULT_POLICY,
  DEFAULT_RECONCILE_SECONDS,
  type Decision,
  type DemandHistory,
  decide,
  decisionOutcome,
  demandRefitDue,
  executes,
  exponentialBackoffMs,
  fitDemand,
  historySecondsFor,
  PREDICTIVE_HISTORY_DAYS,
  recordedOnReconcile,
  type ScalingTrigger,
  scalingTriggerOf,
} from "@proxyscale/core";
import {
  ConflictError,
  createScalingEvent,
  type Database,
  existingProxyIds,
  getProxy,
  type Logger,
  listActiveScalingEvents,
  listAutomaticProxyIds,
  listenControl,
  loadDemandHistories,
  loadObservedStates,
  type ObservedProxy,
  type ProxyRecord,
  recordDecisions,
  type Telemetry,
} from "@proxyscale/db";
import type { Registry } from "prom-client";
import type { Actuator, ActuatorDeps } from "../actuators/types.ts";
import { errorMessage } from "../actuators/types.ts";
import { type ActuatorFactory, ActuatorRegistry, observesReplicas, parseProxyActuator } from "./actuators.ts";
import { DEFAULT_ACCEPTED_TIMEOUT_SECONDS, DEFAULT_LEASE_SECONDS } from "./config.ts";
import { ScaleExecutor } from "./executor.ts";
import { type ControlMetrics, createControlMetrics } from "./metrics.ts";
import { forEachBounded, KeyedQueue, type Taken } from "./queue.ts";
import { SHARD_COUNT, ShardLeases, shardOf } from "./shards.ts";

/** Most proxies one worker evaluates together (one state read, one decision insert). */
export const DEFAULT_BATCH_SIZE = 500;
/**
 * Workers taking batches from the queue at once. Few: every batch costs a constant number of statements, so a
 * worker taking everything that piled up beats several cutting it into smaller batches (paired fleet runs at
 * 2,400 pushes/s on PostgreSQL: 2,298–2,383 answered/s with one worker, 1,825–1,966 with four; on PGlite, which
 * runs one statement at a time anyway, 650–717 vs 520–600 of 1,000/s under load). Besides these, one worker
 * takes pushes only, so a reconcile batch waiting on slow actuators never holds a push back.
 */
const DEFAULT_WORKERS = 1;
/** A reconcile lists this many batches' worth of ids per query. */
const LIST_PAGES_PER_QUERY = 10;
/** Writes of one batch that run at once (events, observations): bounded so one batch never floods the pool. */
const WRITE_CONCURRENCY = 8;
/** A reconcile waits this long for an actuator's observation before deciding on the recorded count. */
const OBSERVE_TIMEOUT_MS = 5_000;
/** A batch whose evaluation failed is queued again after this long. */
const RETRY_MS = 1_000;
/** How long close() lets running scales finish before aborting them. */
const DRAIN_GRACE_MS = 10_000;
/**
 * A heartbeat that failed (the database is down) is tried again after 250 ms, then 500 ms (jittered by a quarter,
 * so servers coming back together spread out) until one succeeds, instead of waiting a third of the lease: the
 * server is back in charge of its shards within about half a second of the database's return (defect 9).
 */
const HEARTBEAT_RETRY = { initialMs: 250, maxMs: 500, jitter: 0.25 } as const;
/** Hand-offs received for proxies this server did not own at the time, kept for the next heartbeat. */
const MAX_PARKED = 100_000;

export interface ControlLoopOptions {
  database: Database;
  logger: Logger;
  clock?: () => number;
  reconcileIntervalMs?: number;
  leaseTtlMs?: number;
  acceptedTimeoutMs?: number;
  /** Most proxies a worker evaluates together (default 500). */
  batchSize?: number;
  /** Workers evaluating any batch (default 1); one more always takes pushes only. */
  workers?: number;
  /** This server's id in lease rows; default `<hostname>:<pid>:<random>`. */
  holder?: string;
  /** Builds actuators; default the real factory (`createActuator`). */
  createActuator?: ActuatorFactory;
  /** Where `local` workers push their metrics (set once the server listens). */
  metricsReporting?: (proxy: ProxyRecord) => Promise<ActuatorDeps["metricsReporting"]>;
  telemetry?: Telemetry;
  /** The server's Prometheus registry, for the control loop's own metrics. */
  metricsRegistry?: Registry;
  /** Run the heartbeat and reconcile timers (default true). Without them, call heartbeat()/reconcile(). */
  timers?: boolean;
}

type Trigger = "push" | "activation" | "reconcile";

/**
 * What a queued proxy is to be evaluated for: a push or an activation (requests held at a fleet's front at 0)
 * wins over a reconcile (its decision is always kept).
 */
interface Work {
  trigger: Trigger;
  /** performance.now() of the earliest push not yet evaluated. */
  pushedAt: number | undefined;
}

const RECONCILE: Work = { trigger: "reconcile", pushedAt: undefined };

function mergeWork(queued: Work, added: Work): Work {
  if (queued.trigger === "reconcile") return added;
  if (added.trigger === "reconcile") return queued;
  const trigger = queued.trigger === "activation" || added.trigger === "activation" ? "activation" : "push";
  return { trigger, pushedAt: queued.pushedAt ?? added.pushedAt };
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
 * The control loop of one server, after Kubernetes' controllers: a keyed work queue of proxy ids, fed by
 * metrics pushes, hand-offs from other servers and the periodic reconcile, and workers that take a batch of
 * ids, load their observed state, decide (core's `decide`, the whole decision) and act (record the decisions,
 * hand scales to the executor). The queue de-duplicates ids and never gives one proxy to two workers.
 * Ownership is per shard of proxies, through lease rows in PostgreSQL, so each proxy has exactly one controller.
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
  private readonly batchSize: number;
  private readonly telemetry: Telemetry;
  private readonly metrics: ControlMetrics;
  // Pushes go before a reconcile's pages: a threshold crossed is acted on without waiting behind the fleet.
  // Batches are shared round-robin between owners (as the last evaluation found them), so one owner's
  // thousands of pushed proxies fill a batch only when no other owner's proxy waits.
  private readonly queue = new KeyedQueue<string, Work>(
    mergeWork,
    (work) => work.trigger !== "reconcile",
    (proxyId) => this.ownerOf.get(proxyId),
  );
  /** Each proxy's owner, from its last evaluation: the queue's lanes. */
  private readonly ownerOf = new Map<string, string>();
  private readonly workers: Promise<void>[];
  /** How far back each proxy's policy looks, so a batch reads enough history in one go. */
  private readonly historySeconds = new Map<string, number>();
  /**
   * Each predictive proxy's demand history with its fitted forecast, and when it was fitted: refitted at most
   * every PREDICTIVE_REFIT_MINUTES, so a push does not refit (or reread a week of rollups).
   */
  private readonly demand = new Map<string, { fittedAt: number; history: DemandHistory }>();
  /** performance.now() of the push behind each event an evaluation created. */
  private readonly pushOfEvent = new Map<string, number>();
  private ticking: Promise<ReconcileResult> | null = null;
  /** A reconcile was asked for while one ran with an older set of shards: run another when it ends. */
  private reconcileAgain = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** Heartbeats failed in a row (0: the last one succeeded). */
  private heartbeatFailures = 0;
  private heartbeatFailingSince = 0;
  /**
   * Proxies whose work reached this server while it could not tell it owned them (its leases lapsed): evaluated
   * after the next heartbeat if their shard is then this server's. Their owner, if another, got the NOTIFY too.
   */
  private readonly parked = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private readonly retries = new Set<NodeJS.Timeout>();
  private listener: { unlisten(): Promise<void> } | null = null;
  private started = false;
  private closed = false;

  constructor(private readonly options: ControlLoopOptions) {
    this.database = options.database;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    this.reconcileIntervalMs = options.reconcileIntervalMs ?? DEFAULT_RECONCILE_SECONDS * 1000;
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
      onColdStart: (proxyId) => this.activate(proxyId),
    });
    this.shards = new ShardLeases({
      database: this.database,
      holder: this.holder,
      ttlMs: options.leaseTtlMs ?? DEFAULT_LEASE_SECONDS * 1000,
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
      handOff: (proxyId) => this.shards.handOff(proxyId),
      telemetry: this.telemetry,
      // Requests held at the front when a scale ended (it took the fleet to 0, or failed to leave it; a manual
      // one too) ask again: their activation was held back by that scale in flight.
      onSettled: (event) => {
        if ((this.registry.heldRequests(event.proxyId) ?? 0) > 0) this.activate(event.proxyId);
      },
      onActuatorCall: (event) => {
        const pushedAt = this.pushOfEvent.get(event.id);
        if (pushedAt === undefined) return;
        this.pushOfEvent.delete(event.id);
        this.metrics.reaction((performance.now() - pushedAt) / 1000);
      },
    });
    const workers = options.workers ?? DEFAULT_WORKERS;
    this.workers = [...Array.from({ length: workers }, () => this.work(false)), this.work(true)];
  }

  /** Takes this server's shards, listens for hand-offs from other servers, starts the timers. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.heartbeat();
    this.listener = await listenControl(this.database, (proxyId) => {
      if (this.shards.owns(proxyId)) void this.evaluate(proxyId);
      else this.park(proxyId);
    });
    if (this.options.timers ?? true) {
      this.scheduleHeartbeat(this.heartbeatIntervalMs());
      const every = (ms: number, fn: () => Promise<unknown>) => {
        const timer = setInterval(() => {
          fn().catch((error: unknown) =>
            this.logger.warn({ err: errorMessage(error) }, "control: background step failed"),
          );
        }, ms);
        timer.unref();
        this.timers.push(timer);
      };
      every(this.reconcileIntervalMs, () => this.reconcile());
      void this.reconcile().catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: first reconcile failed"),
      );
    }
  }

  private heartbeatIntervalMs(): number {
    return Math.max(50, Math.floor((this.options.leaseTtlMs ?? DEFAULT_LEASE_SECONDS * 1000) / 3));
  }

  /**
   * The heartbeat timer: every third of the lease while the database answers; after a failure, again within
   * 250–500 ms until one succeeds (HEARTBEAT_RETRY). Never two heartbeats at once.
   */
  private scheduleHeartbeat(delayMs: number): void {
    const timer = setTimeout(() => {
      void this.heartbeat()
        .then(
          () => this.heartbeatIntervalMs(),
          (error: unknown) => {
            this.heartbeatFailures += 1;
            if (this.heartbeatFailures === 1) {
              this.heartbeatFailingSince = performance.now();
              this.logger.warn(
                { err: errorMessage(error) },
                "control: shard lease heartbeat failed; retrying every 250-500 ms",
              );
            }
            return exponentialBackoffMs(this.heartbeatFailures, HEARTBEAT_RETRY);
          },
        )
        .then((next) => {
          if (!this.closed) this.scheduleHeartbeat(next);
        });
    }, delayMs);
    timer.unref();
    this.heartbeatTimer = timer;
  }

  /**
   * Renews and rebalances shard leases. A reconcile follows when shards were gained (a lapsed set re-acquired
   * counts as gained) or when this heartbeat is the first to succeed after failures: it adopts the events left
   * pending meanwhile (a manual scale accepted while no lease was valid) and re-queues every automatic proxy, so
   * a push stored meanwhile is acted on. Proxies handed to this server while it could not tell are evaluated.
   */
  async heartbeat(): Promise<void> {
    if (this.closed) return;
    const result = await this.shards.heartbeat();
    this.metrics.shardsHeld(result.held.length);
    const recovered = this.heartbeatFailures > 0;
    if (recovered) {
      this.logger.info(
        {
          failedHeartbeats: this.heartbeatFailures,
          downMs: Math.round(performance.now() - this.heartbeatFailingSince),
          shards: result.held.length,
          acquired: result.acquired.length,
        },
        "control: the database answers again; shard leases renewed, resuming",
      );
      this.heartbeatFailures = 0;
    }
    if (result.released.length > 0 || result.lost.length > 0) {
      // At once, not at the next reconcile: a `local` proxy's front must free its port for the shard's new owner.
      void this.pruneActuators().catch((error: unknown) =>
        this.logger.warn(
          { err: errorMessage(error) },
          "control: closing the actuators of given-up shards failed",
        ),
      );
    }
    const parked = [...this.parked];
    this.parked.clear();
    for (const proxyId of parked) if (this.shards.owns(proxyId)) void this.evaluate(proxyId);
    if ((result.acquired.length > 0 || recovered) && this.started && (this.options.timers ?? true)) {
      this.kickReconcile();
    }
  }

  /** A reconcile now, or right after the one that runs (which listed the shards held before this call). */
  private kickReconcile(): void {
    if (this.ticking) {
      this.reconcileAgain = true;
      return;
    }
    void this.reconcile().catch((error: unknown) =>
      this.logger.warn({ err: errorMessage(error) }, "control: reconcile after taking shards failed"),
    );
  }

  private park(proxyId: string): void {
    if (this.parked.size < MAX_PARKED) this.parked.add(proxyId);
  }

  /** The API's hook: samples of these proxies were just stored. */
  readonly onMetricsRecorded = (proxyIds: readonly string[]): void => {
    if (this.closed) return;
    const pushedAt = performance.now();
    for (const proxyId of proxyIds) {
      if (this.shards.owns(proxyId)) void this.evaluate(proxyId, pushedAt);
      else {
        this.shards.handOff(proxyId);
        if (this.shards.heldShards().length === 0) this.park(proxyId);
      }
    }
  };

  /**
   * A `local` proxy's front holds requests while its fleet is at 0: evaluate it at once (its decision, and the
   * scale from 0, are triggered by `activation`). The front's proxy runs on this server, its shard's owner.
   */
  activate(proxyId: string): void {
    if (this.closed || !this.shards.owns(proxyId)) return;
    void this.queue.add(proxyId, { trigger: "activation", pushedAt: performance.now() });
  }

  /** Queues the proxy for evaluation; resolves once it has been evaluated after this call. */
  evaluate(proxyId: string, pushedAt?: number): Promise<void> {
    return this.queue.add(proxyId, { trigger: "push", pushedAt });
  }

  /** Resolves when the queue is empty, no reconcile runs and every scale this server runs has ended. */
  async idle(): Promise<void> {
    for (;;) {
      // In this order: an evaluation may start a scale, so the scales are waited for after the queue.
      await this.queue.idle();
      await this.ticking?.catch(() => {});
      await this.executor.allSettled();
      if (this.queue.isIdle() && !this.ticking) return;
    }
  }

  /**
   * One reconcile tick: take over events in flight that no live server runs, then queue every automatic proxy
   * of the held shards, a page of ids at a time, and wait for the page to be evaluated. Ticks never overlap.
   */
  reconcile(): Promise<ReconcileResult> {
    if (this.closed) return Promise.resolve({ proxies: 0, recovered: 0, ms: 0 });
    this.ticking ??= this.tick().finally(() => {
      this.ticking = null;
      if (this.reconcileAgain && !this.closed) {
        this.reconcileAgain = false;
        this.kickReconcile();
      }
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
        afterId,
        limit: listPage,
      });
    let page = await list(null);
    while (page.length > 0) {
      // The next page is fetched while this one is evaluated.
      const next = page.length < listPage ? Promise.resolve([]) : list(page[page.length - 1]!);
      next.catch(() => {});
      await Promise.all(page.map((proxyId) => this.queue.add(proxyId, RECONCILE)));
      proxies += page.length;
      page = await next;
    }
    await this.pruneActuators();
    const ms = performance.now() - startedAt;
    this.metrics.reconcileTick(ms / 1000, proxies);
    return { proxies, recovered, ms };
  }

  /** One worker: take a batch of proxies (`pushesOnly`: pushed ones), evaluate it, repeat until shut down. */
  private async work(pushesOnly: boolean): Promise<void> {
    for (;;) {
      const batch = await this.queue.take(this.batchSize, pushesOnly);
      if (batch.length === 0) return;
      try {
        await this.sync(batch);
      } catch (error) {
        this.logger.warn({ proxies: batch.length, err: errorMessage(error) }, "control: evaluation failed");
        this.retryLater(batch);
      } finally {
        this.queue.done(batch);
      }
    }
  }

  /**
   * A batch that failed (the database is down or slow) is queued again a moment later, so a push is never
   * dropped unevaluated; while the database stays down this repeats once per retry interval.
   */
  private retryLater(batch: ReadonlyArray<Taken<string, Work>>): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      for (const { key, work } of batch) void this.queue.add(key, work);
    }, RETRY_MS);
    timer.unref();
    this.retries.add(timer);
  }

  /** Load the batch's observed state, decide for each proxy, record the decisions, hand scales on. */
  private async sync(batch: ReadonlyArray<Taken<string, Work>>): Promise<void> {
    const now = this.clock();
    const db = this.database.db;
    const fallbackHistory = historySecondsFor(DEFAULT_POLICY);
    let historySeconds = 0;
    for (const { key } of batch) {
      historySeconds = Math.max(historySeconds, this.historySeconds.get(key) ?? fallbackHistory);
    }
    const observed = await loadObservedStates(db, {
      proxyIds: batch.map(({ key }) => key),
      now,
      historySeconds,
      reconcileIntervalMs: this.reconcileIntervalMs,
    });
    const items: Array<{ entry: ObservedProxy; work: Work }> = [];
    for (const { key, work } of batch) {
      const entry = observed.get(key);
      if (entry) {
        this.historySeconds.set(key, historySecondsFor(entry.policy));
        this.ownerOf.set(key, entry.proxy.ownerId);
        items.push({ entry, work });
      } else {
        this.historySeconds.delete(key);
        this.ownerOf.delete(key);
        this.demand.delete(key);
      }
    }
    await this.attachDemand(items, now);
    await this.refreshObservations(items.filter(({ work }) => work.trigger === "reconcile"));
    for (const { entry } of items) {
      // A pending event (a manual scale another server received) is run whatever the mode.
      const active = entry.activeEvent;
      if (active?.status === "pending" && !this.executor.isRunning(active.id)) {
        this.metrics.recovery(await this.executor.recover(active));
      }
    }
    const kept: Array<{ entry: ObservedProxy; work: Work; decision: Decision; trigger: ScalingTrigger }> = [];
    for (const { entry, work } of items) {
      const held = this.registry.heldRequests(entry.proxy.id);
      if (held !== undefined) entry.state.heldRequests = held;
      const decision = decide(entry.policy, entry.state, now);
      this.metrics.evaluation(work.trigger, decisionOutcome(decision));
      if (work.trigger !== "reconcile" || recordedOnReconcile(decision))
        kept.push({ entry, work, decision, trigger: scalingTriggerOf(decision) });
    }
    if (kept.length === 0) return;
    const decisionIds = await recordDecisions(
      db,
      kept.map(({ entry, decision, trigger }) => ({
        proxyId: entry.proxy.id,
        decision,
        triggeredBy: trigger,
      })),
    );
    const scales: Array<(typeof kept)[number] & { decisionId: string }> = [];
    kept.forEach((item, index) => {
      const decisionId = decisionIds[index];
      // Null: the proxy was deleted between the read and the write.
      if (!decisionId) return;
      this.telemetry.decisionMade?.(item.entry.proxy, item.decision, {
        id: decisionId,
        triggeredBy: item.trigger,
      });
      if (executes(item.decision)) scales.push({ ...item, decisionId });
    });
    await forEachBounded(
      scales,
      WRITE_CONCURRENCY,
      (item) => this.scale(item.entry, item.decision, item.decisionId, item.trigger, item.work.pushedAt),
      (item, error) =>
        this.logger.warn(
          { proxyId: item.entry.proxy.id, err: errorMessage(error) },
          "control: acting on a decision failed",
        ),
    );
  }

  /** Gives predictive proxies their demand history, from the cache or (when stale) the rollups, refitted. */
  private async attachDemand(items: ReadonlyArray<{ entry: ObservedProxy }>, now: number): Promise<void> {
    const predictive = items.filter(({ entry }) => entry.policy.strategy === "predictive");
    for (const { entry } of items) {
      if (entry.policy.strategy !== "predictive") this.demand.delete(entry.proxy.id);
    }
    const stale = predictive
      .map(({ entry }) => entry.proxy.id)
      .filter((id) => demandRefitDue(this.demand.get(id)?.fittedAt, now));
    if (stale.length > 0) {
      const histories = await loadDemandHistories(this.database.db, {
        proxyIds: stale,
        now,
        days: PREDICTIVE_HISTORY_DAYS,
      });
      for (const id of stale) {
        const history = histories.get(id);
        this.demand.set(id, {
          fittedAt: now,
          history: history ? fitDemand(history.perMinute, history.endsAt) : { perMinute: [], endsAt: now },
        });
      }
    }
    for (const { entry } of predictive) {
      const cached = this.demand.get(entry.proxy.id);
      if (cached) entry.state.demand = cached.history;
    }
  }

  /** Records the decided scale as an event and hands it to the executor. */
  private async scale(
    entry: ObservedProxy,
    decision: Decision,
    decisionId: string,
    trigger: ScalingTrigger,
    pushedAt: number | undefined,
  ): Promise<void> {
    const { proxy, state } = entry;
    let event: Awaited<ReturnType<typeof createScalingEvent>>;
    try {
      event = await createScalingEvent(this.database.db, {
        proxyId: proxy.id,
        previousReplicas: decision.currentReplicas,
        newReplicas: decision.desiredReplicas,
        triggeredBy: trigger,
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

  /**
   * Before a reconcile decides, actuators that can see what runs (local, kubernetes, webhook with statusUrl,
   * command with getReplicasCommand) are asked, so the decision starts from the observed count.
   */
  private async refreshObservations(items: ReadonlyArray<{ entry: ObservedProxy }>): Promise<void> {
    const targets = items.filter(({ entry }) => {
      if (entry.activeEvent || entry.policy.mode === "off" || entry.proxy.actuator.kind === "none")
        return false;
      try {
        return observesReplicas(parseProxyActuator(entry.proxy));
      } catch {
        return false;
      }
    });
    await forEachBounded(
      targets,
      WRITE_CONCURRENCY,
      async ({ entry }) => {
        const observation = this.registry.observe(entry.proxy);
        const timeout = new Promise<null>((resolve) =>
          setTimeout(() => resolve(null), OBSERVE_TIMEOUT_MS).unref(),
        );
        const counts = await Promise.race([observation, timeout]);
        if (!counts) {
          observation.catch(() => {});
          return;
        }
        entry.state.currentReplicas = counts.replicas;
        entry.state.unhealthyReplicas = counts.unhealthyReplicas;
        entry.proxy.currentReplicas = counts.replicas;
      },
      ({ entry }, error) =>
        this.logger.warn(
          { proxyId: entry.proxy.id, err: errorMessage(error) },
          "control: the actuator could not be observed",
        ),
    );
  }

  /**
   * Closes the actuators of proxies that were deleted or whose shard moved to another server (a `local` proxy's
   * workers drain), unless a scale of theirs still runs here. In the background: draining takes a while.
   */
  private async pruneActuators(): Promise<void> {
    const cached = this.registry.proxyIds();
    if (cached.length === 0) return;
    const existing = await existingProxyIds(this.database.db, { proxyIds: cached });
    for (const proxyId of cached) {
      if (existing.has(proxyId) && this.shards.owns(proxyId)) continue;
      if (this.executor.hasRunningIn((running) => running === proxyId)) continue;
      void this.registry.close(proxyId);
    }
  }

  /** The proxy's actuator, started now (a `local` proxy's front and workers), its counts written to the row. */
  async ensureActuator(proxyId: string): Promise<Actuator> {
    const proxy = await getProxy(this.database.db, { id: proxyId });
    if (!proxy) throw new Error(`proxy ${proxyId} does not exist`);
    await this.registry.observe(proxy);
    return this.registry.get(proxy);
  }

  /**
   * Stops: no new evaluations once what is queued is done, running scales get up to 10 s to finish (then they
   * are aborted and fail), every actuator is closed (local workers drain), and the leases are released so other
   * servers take over at once.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    await this.listener?.unlisten().catch(() => {});
    await this.ticking?.catch(() => {});
    await this.queue.idle();
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.executor.drain(DRAIN_GRACE_MS);
    await this.registry.closeAll();
    await this.shards
      .releaseAll()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, "control: could not release leases"),
      );
  }
}
