import type { Logger } from "@proxyscale/db";
import {
  acquireLeases,
  type Db,
  type PruneResult,
  pruneMetrics,
  pruneStaleInstances,
  releaseLeases,
} from "@proxyscale/db";
import { Counter, type Registry } from "prom-client";
import { errorMessage } from "../actuators/types.ts";
import type { RetentionConfig } from "./config.ts";

/** The lease row that makes one server at a time the one that prunes. */
export const RETENTION_LEASE = "retention";

export interface RetentionSchedulerOptions extends RetentionConfig {
  /** For the lease row. */
  db: Db;
  /** For the rollup and prune, which may run past the query deadline (Database.maintenance); default `db`. */
  maintenanceDb?: Db;
  logger: Logger;
  /** This server's id in the lease row (the control loop's holder). */
  holder: string;
  /** The `now` retention cuts from (tests pin it); default Date.now. */
  clock?: () => number;
  metricsRegistry?: Registry;
}

/** What one run did: pruned (with the counts), or skipped (another server holds this interval, or stopped). */
export type RetentionRun =
  | { ran: true; result: PruneResult & { staleInstancesDeleted: number } }
  | { ran: false; reason: "held by another server" | "stopped" };

/**
 * Runs `pruneMetrics` (rollup, then deletion of raw samples, latest rows, rollups and decisions past their
 * retention), then `pruneStaleInstances` (latest rows of instances no longer live: older than core's
 * liveInstanceWindowMs of their proxy's policy, so restarted pods' old names leave the latest table), every
 * `intervalMs`. Several servers on one PostgreSQL share the job through the lease row
 * `retention`, taken for one interval at a time (the database's clock judges expiry): the holder renews it
 * each run, others skip until it lapses, so each interval is pruned by one server. A dead server's lease
 * lapses and the next server to tick takes over; a stopped one releases it.
 */
export class RetentionScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | null = null;
  private closed = false;
  private readonly clock: () => number;
  private readonly pruned: Counter<"table"> | undefined;
  private readonly runs: Counter<"outcome"> | undefined;

  constructor(private readonly options: RetentionSchedulerOptions) {
    this.clock = options.clock ?? Date.now;
    const registry = options.metricsRegistry;
    if (registry) {
      this.pruned = new Counter({
        name: "proxyscale_retention_pruned_rows_total",
        help: "Rows deleted by retention, by table (raw samples, latest samples, latest samples of instances no longer live, rollups, decisions)",
        labelNames: ["table"] as const,
        registers: [registry],
      });
      this.runs = new Counter({
        name: "proxyscale_retention_runs_total",
        help: "Retention runs of this server by outcome (pruned, skipped: another server holds the lease, failed)",
        labelNames: ["outcome"] as const,
        registers: [registry],
      });
    }
  }

  get enabled(): boolean {
    return this.options.intervalMs > 0;
  }

  /** Runs once now (in the background) and then every interval; does nothing when the interval is 0. */
  start(): void {
    if (!this.enabled || this.timer || this.closed) return;
    const tick = () => {
      this.runOnce().catch(() => {});
    };
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
    tick();
  }

  /**
   * One run: take (or renew) the lease for one interval, and prune if granted. Runs never overlap on one
   * server; a failure is logged and counted, and the next interval tries again.
   */
  runOnce(): Promise<RetentionRun> {
    if (this.closed) return Promise.resolve({ ran: false, reason: "stopped" });
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<RetentionRun> {
    const { db, logger, holder } = this.options;
    try {
      const granted = await acquireLeases(db, {
        names: [RETENTION_LEASE],
        holder,
        ttlMs: Math.max(1, this.options.intervalMs),
      });
      if (granted.length === 0) {
        this.runs?.inc({ outcome: "skipped" });
        logger.debug({}, "retention: skipped, another server holds this interval");
        return { ran: false, reason: "held by another server" };
      }
      const startedAt = Date.now();
      const result = await pruneMetrics(this.options.maintenanceDb ?? db, {
        now: this.clock(),
        rawRetentionDays: this.options.rawRetentionDays,
        rollupRetentionDays: this.options.rollupRetentionDays,
        decisionRetentionDays: this.options.decisionRetentionDays,
      });
      const staleInstancesDeleted = await pruneStaleInstances(this.options.maintenanceDb ?? db, {
        now: this.clock(),
      });
      this.pruned?.inc({ table: "raw" }, result.rawDeleted);
      this.pruned?.inc({ table: "latest_stale_instances" }, staleInstancesDeleted);
      this.pruned?.inc({ table: "latest" }, result.latestDeleted);
      this.pruned?.inc({ table: "rollups" }, result.rollupsDeleted);
      this.pruned?.inc({ table: "decisions" }, result.decisionsDeleted);
      this.runs?.inc({ outcome: "pruned" });
      logger.info(
        {
          rawDeleted: result.rawDeleted,
          latestDeleted: result.latestDeleted,
          staleInstancesDeleted,
          rollupsDeleted: result.rollupsDeleted,
          decisionsDeleted: result.decisionsDeleted,
          rolledUpTo: result.rolledUpTo.toISOString(),
          ms: Date.now() - startedAt,
        },
        "retention: pruned",
      );
      return { ran: true, result: { ...result, staleInstancesDeleted } };
    } catch (error) {
      this.runs?.inc({ outcome: "failed" });
      logger.warn({ err: errorMessage(error) }, "retention: run failed");
      throw error;
    }
  }

  /** Stops the timer, lets a running prune finish, and releases the lease so another server takes over. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
    if (!this.enabled) return;
    await releaseLeases(this.options.db, { names: [RETENTION_LEASE], holder: this.options.holder }).catch(
      (error: unknown) =>
        this.options.logger.warn({ err: errorMessage(error) }, "retention: could not release"),
    );
  }
}
