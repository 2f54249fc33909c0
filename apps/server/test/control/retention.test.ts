import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Decision, MetricSample } from "@proxyscale/core";
import type { Logger } from "@proxyscale/db";
import {
  createProxy,
  type Database,
  type Db,
  insertSamples,
  listLeases,
  openDatabase,
  queryRows,
  recordDecision,
} from "@proxyscale/db";
import { randomSchemaName, testDrivers } from "@proxyscale/db/testing";
import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { RETENTION_LEASE, RetentionScheduler } from "../../src/control/retention.ts";
import { startServer } from "../../src/start.ts";
import { disposeDatabase, POSTGRES_URL, postgresAvailable, unique } from "../support.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The scheduler's injected "now": a whole minute, so every sample below falls on a known rollup bucket. */
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);

/** Log lines kept for assertions (the scheduler logs its counts). */
class RecordingLogger implements Logger {
  readonly lines: Array<{ level: string; msg: string | undefined; obj: object }> = [];
  debug(obj: object, msg?: string) {
    this.lines.push({ level: "debug", msg, obj });
  }
  info(obj: object, msg?: string) {
    this.lines.push({ level: "info", msg, obj });
  }
  warn(obj: object, msg?: string) {
    this.lines.push({ level: "warn", msg, obj });
  }
  error(obj: object, msg?: string) {
    this.lines.push({ level: "error", msg, obj });
  }
}

function sample(at: number, instanceId: string): MetricSample {
  return {
    at,
    instanceId,
    cpuPercent: 40,
    memoryPercent: 50,
    requestRate: 100,
    avgLatencyMs: 10,
    errorRatePercent: 0,
  };
}

function decisionAt(at: number, replicas = 1): Decision {
  return {
    strategy: "threshold",
    action: "none",
    currentReplicas: 1,
    recommendedReplicas: 1,
    desiredReplicas: 1,
    loadScore: 40,
    metrics: [],
    limits: [],
    explanation: "hold",
    recommendation: { at, replicas },
    evaluatedAt: at,
  };
}

function scheduler(db: Db, options: { holder?: string; intervalMs?: number; registry?: Registry } = {}) {
  const logger = new RecordingLogger();
  const registry = options.registry ?? new Registry();
  const retention = new RetentionScheduler({
    db,
    logger,
    holder: options.holder ?? unique("server"),
    clock: () => NOW,
    metricsRegistry: registry,
    intervalMs: options.intervalMs ?? HOUR,
    rawRetentionDays: 7,
    rollupRetentionDays: 90,
    decisionRetentionDays: 7,
  });
  return { retention, logger, registry };
}

async function counterValues(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(name)?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((value) => [Object.values(value.labels).join(","), value.value]),
  );
}

const epochMs = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);

for (const driver of testDrivers(postgresAvailable, "retention")) {
  describe.skipIf(!driver.available)(`retention scheduler [${driver.name}]`, () => {
    let database: Database;

    beforeAll(async () => {
      database = await driver.open();
    });
    afterAll(async () => {
      if (database) await disposeDatabase(database);
    });

    it("deletes what is older than each window, keeps the rest rolled up, and logs and counts what it pruned", async () => {
      const db = database.db;
      const owner = unique("owner");
      const kept = await createProxy(db, { ownerId: owner, name: unique("kept"), actorId: owner });
      const silent = await createProxy(db, { ownerId: owner, name: unique("silent"), actorId: owner });
      await insertSamples(
        db,
        [100 * DAY, 10 * DAY, 3 * DAY, HOUR].map((age) => ({
          proxyId: kept.id,
          sample: sample(NOW - age, "a"),
          loadScore: 40,
        })),
      );
      // A proxy whose only (and so latest) sample is past the raw window.
      await insertSamples(db, [{ proxyId: silent.id, sample: sample(NOW - 10 * DAY, "b"), loadScore: 40 }]);
      // A restarted pod: its old name last reported 5 minutes ago (past 2 × metricsMaxAgeSeconds, 120 s).
      const churned = await createProxy(db, { ownerId: owner, name: unique("churned"), actorId: owner });
      await insertSamples(db, [
        { proxyId: churned.id, sample: sample(NOW - 5 * 60_000, "pod-old"), loadScore: 40 },
        { proxyId: churned.id, sample: sample(NOW - 10_000, "pod-new"), loadScore: 40 },
      ]);
      // Replica counts differ, so each decision leaves its own scaling_recommendations row.
      for (const [age, replicas] of [
        [10 * DAY, 2],
        [DAY, 1],
      ] as const) {
        await recordDecision(db, {
          proxyId: kept.id,
          decision: decisionAt(NOW - age, replicas),
          triggeredBy: "auto",
        });
      }

      const { retention, logger, registry } = scheduler(db);
      const run = await retention.runOnce();
      expect(run.ran).toBe(true);
      const result = run.ran ? run.result : undefined;
      expect(result).toMatchObject({
        rawDeleted: 3,
        latestDeleted: 1,
        staleInstancesDeleted: 1,
        rollupsDeleted: 1,
        decisionsDeleted: 1,
      });
      const churnedLatest = await queryRows<{ instanceId: string }>(
        db,
        sql`select instance_id as "instanceId" from proxy_latest_metrics where proxy_id = ${churned.id}::uuid`,
      );
      expect(churnedLatest).toEqual([{ instanceId: "pod-new" }]);

      const ids = sql`(${kept.id}::uuid, ${silent.id}::uuid)`;
      const raw = await queryRows<{ at: number }>(
        db,
        sql`select ${epochMs("recorded_at")} as at from proxy_load_metrics where proxy_id in ${ids} order by 1`,
      );
      expect(raw.map((row) => row.at)).toEqual([NOW - 3 * DAY, NOW - HOUR]);
      const rollups = await queryRows<{ proxyId: string; bucket: number; samples: number }>(
        db,
        sql`select proxy_id as "proxyId", ${epochMs("bucket")} as bucket, samples
            from proxy_load_metrics_1m where proxy_id in ${ids} order by bucket, proxy_id`,
      );
      const label = (row: { proxyId: string; bucket: number; samples: number }) =>
        `${row.proxyId === kept.id ? "kept" : "silent"} ${(NOW - row.bucket) / HOUR}h ago ×${row.samples}`;
      // The 100-day-old minute is gone (past 90 days); every other sample's minute is rolled up.
      expect(rollups.map(label).sort()).toEqual([
        "kept 1h ago ×1",
        "kept 240h ago ×1",
        "kept 72h ago ×1",
        "silent 240h ago ×1",
      ]);
      const latest = await queryRows<{ proxyId: string }>(
        db,
        sql`select proxy_id as "proxyId" from proxy_latest_metrics where proxy_id in ${ids}`,
      );
      expect(latest.map((row) => row.proxyId)).toEqual([kept.id]);
      const decisions = await queryRows<{ at: number }>(
        db,
        sql`select ${epochMs("evaluated_at")} as at from scaling_decisions where proxy_id = ${kept.id}`,
      );
      expect(decisions.map((row) => row.at)).toEqual([NOW - DAY]);
      const recommendations = await queryRows<{ at: number; replicas: number }>(
        db,
        sql`select ${epochMs("recommended_at")} as at, replicas from scaling_recommendations
            where proxy_id = ${kept.id}`,
      );
      expect(recommendations).toEqual([{ at: NOW - DAY, replicas: 1 }]);

      expect(await counterValues(registry, "proxyscale_retention_pruned_rows_total")).toEqual({
        raw: 3,
        latest: 1,
        latest_stale_instances: 1,
        rollups: 1,
        decisions: 1,
      });
      expect(await counterValues(registry, "proxyscale_retention_runs_total")).toEqual({ pruned: 1 });
      expect(logger.lines).toContainEqual({
        level: "info",
        msg: "retention: pruned",
        obj: expect.objectContaining({
          rawDeleted: 3,
          latestDeleted: 1,
          rollupsDeleted: 1,
          decisionsDeleted: 1,
        }),
      });

      // Nothing is left past a window: a second run deletes nothing.
      const again = await retention.runOnce();
      expect(again.ran && again.result).toMatchObject({
        rawDeleted: 0,
        rollupsDeleted: 0,
        decisionsDeleted: 0,
      });
      await retention.close();
    });

    describe("on its timer", () => {
      // The scheduler's interval is the test's to fire (only setInterval is faked: the database keeps real
      // timers), and each run the timer starts is seen through a spy on runOnce, which the timer calls.
      beforeEach(() => {
        vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
      });
      afterEach(() => {
        vi.useRealTimers();
      });

      it("runs at start and on its timer, and stops on close, releasing its lease", async () => {
        const { retention, registry } = scheduler(database.db, { intervalMs: 200 });
        const runOnce = vi.spyOn(retention, "runOnce");
        /** Waits for the run that the latest call began. */
        const latestRun = () => runOnce.mock.results.at(-1)?.value;
        retention.start();
        expect(runOnce).toHaveBeenCalledTimes(1);
        await latestRun();
        for (const runs of [2, 3]) {
          vi.advanceTimersByTime(200);
          expect(runOnce).toHaveBeenCalledTimes(runs);
          await latestRun();
        }
        expect(await counterValues(registry, "proxyscale_retention_runs_total")).toEqual({ pruned: 3 });
        await retention.close();
        expect(vi.getTimerCount()).toBe(0);
        vi.advanceTimersByTime(600);
        expect(runOnce).toHaveBeenCalledTimes(3);
        expect(await counterValues(registry, "proxyscale_retention_runs_total")).toEqual({ pruned: 3 });
        expect(await retention.runOnce()).toEqual({ ran: false, reason: "stopped" });
        const leases = await listLeases(database.db, { prefix: RETENTION_LEASE });
        expect(leases.filter((lease) => lease.live)).toEqual([]);
      });

      it("does nothing when the interval is 0", async () => {
        const { retention, registry } = scheduler(database.db, { intervalMs: 0 });
        const runOnce = vi.spyOn(retention, "runOnce");
        expect(retention.enabled).toBe(false);
        retention.start();
        expect(vi.getTimerCount()).toBe(0);
        vi.advanceTimersByTime(HOUR);
        expect(runOnce).not.toHaveBeenCalled();
        expect(await counterValues(registry, "proxyscale_retention_runs_total")).toEqual({});
        await retention.close();
      });
    });
  });
}

describe.skipIf(!postgresAvailable)("two retention schedulers on one PostgreSQL", () => {
  const schema = randomSchemaName("retention");
  let databases: Database[] = [];

  beforeAll(async () => {
    databases = await Promise.all(
      [0, 1].map(() => openDatabase({ driver: "postgres", url: POSTGRES_URL, pgSchema: schema, poolMax: 4 })),
    );
  });
  afterAll(async () => {
    await databases[1]?.close();
    if (databases[0]) await disposeDatabase(databases[0]);
  });

  it("lets exactly one of them prune in each interval, and the other take over once it stops", async () => {
    const [first, second] = databases.map((database, index) =>
      scheduler(database.db, { holder: `server-${index}`, intervalMs: HOUR }),
    ) as [ReturnType<typeof scheduler>, ReturnType<typeof scheduler>];
    const owner = unique("owner");
    const proxy = await createProxy(databases[0]!.db, { ownerId: owner, name: unique("p"), actorId: owner });
    await insertSamples(databases[0]!.db, [
      { proxyId: proxy.id, sample: sample(NOW - 30 * DAY, "a"), loadScore: 1 },
    ]);

    const rounds = [];
    for (let round = 0; round < 4; round++) {
      rounds.push(await Promise.all([first.retention.runOnce(), second.retention.runOnce()]));
    }
    // The same server prunes every round (it renews its lease); the other is skipped every round.
    const winners = rounds.map((runs) => runs.findIndex((run) => run.ran));
    expect(rounds.every((runs) => runs.filter((run) => run.ran).length === 1)).toBe(true);
    expect(new Set(winners).size).toBe(1);
    const winner = winners[0] === 0 ? first : second;
    const loser = winners[0] === 0 ? second : first;
    const deleted = rounds.flat().reduce((sum, run) => sum + (run.ran ? run.result.rawDeleted : 0), 0);
    expect(deleted).toBe(1);
    expect(await counterValues(winner.registry, "proxyscale_retention_runs_total")).toEqual({ pruned: 4 });
    expect(await counterValues(loser.registry, "proxyscale_retention_runs_total")).toEqual({ skipped: 4 });

    await winner.retention.close();
    expect((await loser.retention.runOnce()).ran).toBe(true);
    await loser.retention.close();
  });
});

describe("retention in the server", () => {
  it("starts with the control loop in startServer and stops with its graceful close, releasing the lease", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "proxyscale-retention-"));
    try {
      const running = await startServer(
        loadConfig({ PORT: "0", PROXYSCALE_DATA_DIR: dataDir, PROXYSCALE_DEMO: "0", LOG_LEVEL: "silent" }),
      );
      let closed = false;
      try {
        expect(running.retention.enabled).toBe(true);
        const lease = await vi.waitFor(
          async () => {
            const leases = await listLeases(running.database.db, { prefix: RETENTION_LEASE });
            const live = leases.find((row) => row.live);
            if (!live) throw new Error(`no live retention lease yet: ${JSON.stringify(leases)}`);
            return live;
          },
          { timeout: 20_000 },
        );
        expect(lease.holder).toBe(running.control.holder);
        await running.close();
        closed = true;
        expect(await running.retention.runOnce()).toEqual({ ran: false, reason: "stopped" });
      } finally {
        if (!closed) await running.close();
      }
      const reopened = await openDatabase({ driver: "pglite", dataDir });
      try {
        const leases = await listLeases(reopened.db, { prefix: RETENTION_LEASE });
        expect(leases.filter((row) => row.live)).toEqual([]);
      } finally {
        await reopened.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("retention configuration", () => {
  it("reads the retention env vars with defaults (decisions follow the metrics window), and names a bad one", () => {
    expect(loadConfig({}).control.retention).toEqual({
      intervalMs: 3_600_000,
      rawRetentionDays: 7,
      rollupRetentionDays: 90,
      decisionRetentionDays: 7,
    });
    expect(
      loadConfig({
        PROXYSCALE_RETENTION_INTERVAL_SECONDS: "0",
        PROXYSCALE_METRICS_RETENTION_DAYS: "14",
        PROXYSCALE_ROLLUP_RETENTION_DAYS: "",
      }).control.retention,
    ).toEqual({ intervalMs: 0, rawRetentionDays: 14, rollupRetentionDays: 90, decisionRetentionDays: 14 });
    expect(
      loadConfig({ PROXYSCALE_DECISION_RETENTION_DAYS: "2.5" }).control.retention.decisionRetentionDays,
    ).toBe(2.5);
    const bad = () =>
      loadConfig({
        PROXYSCALE_RETENTION_INTERVAL_SECONDS: "-1",
        PROXYSCALE_METRICS_RETENTION_DAYS: "0",
        PROXYSCALE_DECISION_RETENTION_DAYS: "soon",
      });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(
      /PROXYSCALE_RETENTION_INTERVAL_SECONDS: must be 0 \(off\) or more[\s\S]*PROXYSCALE_METRICS_RETENTION_DAYS: must be greater than 0[\s\S]*PROXYSCALE_DECISION_RETENTION_DAYS: must be a number of days/,
    );
  });
});
