import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { decide, decisionSchema, parsePolicy } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import {
  createProxy,
  type Db,
  MIGRATIONS_FOLDER,
  MigrationError,
  migrate,
  openDatabase,
  queryRows,
  readMigrations,
  violatedConstraint,
} from "../src/index.ts";
import { forEachDriver, inFreshSchema, POSTGRES_URL, randomSchemaName, unique } from "./drivers.ts";

const SEED_AND_OWN_TABLES = [
  "audit_log",
  "environment_scaling_policies",
  "leases",
  "metric_rollup_state",
  "proxies",
  "proxy_latest_metrics",
  "proxy_load_metrics",
  "proxy_load_metrics_1m",
  "proxy_scaling_events",
  "proxy_scaling_history",
  "proxy_scaling_policies",
  "rate_limit_windows",
  "scaling_decisions",
  "scaling_recommendations",
];

async function tablesIn(db: Db, schema: string): Promise<string[]> {
  const rows = await queryRows<{ table_name: string }>(
    db,
    sql`select table_name from information_schema.tables where table_schema = ${schema} order by table_name`,
  );
  return rows.map((row) => row.table_name);
}

async function journal(db: Db, schema: string): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    sql.raw(`select count(*)::int as n from "${schema}".__drizzle_migrations`),
  );
  return rows[0]!.n;
}

async function dropSchema(db: Db, schema: string) {
  await db.execute(sql.raw(`drop schema if exists "${schema}" cascade`));
}

/** Inserts that bypass every zod schema: the database alone must refuse them. */
async function expectViolation(db: Db, statement: ReturnType<typeof sql>, constraint: string) {
  // In a savepoint, so the surrounding test transaction survives the refusal.
  const error = await db
    .transaction((inner) => inner.execute(statement))
    .then(
      () => null,
      (caught: unknown) => caught,
    );
  expect(error, `expected ${constraint} to refuse the row`).not.toBeNull();
  expect(violatedConstraint(error)?.constraint).toBe(constraint);
}

forEachDriver("schema and migrations", ({ database, driver }) => {
  const db = () => database().db;
  const allTags = readMigrations().map((migration) => migration.tag);

  describe("migrations", () => {
    it("apply to an empty schema, creating the seed's tables and ours, and a second run applies nothing", async () => {
      const schema = randomSchemaName("empty");
      try {
        expect(await migrate(db(), { schema })).toEqual({ applied: allTags });
        expect(await tablesIn(db(), schema)).toEqual([...SEED_AND_OWN_TABLES, "__drizzle_migrations"].sort());
        expect(await migrate(db(), { schema })).toEqual({ applied: [] });
        expect(await journal(db(), schema)).toBe(allTags.length);
      } finally {
        await dropSchema(db(), schema);
      }
    });

    it("let two concurrent migrators both succeed, each migration applied once", async () => {
      const schema = randomSchemaName("race");
      try {
        if (driver.name === "postgres") {
          // Two servers starting together: two pools racing on an empty schema.
          const [a, b] = await Promise.all([
            openDatabase({ driver: "postgres", url: POSTGRES_URL, pgSchema: schema, poolMax: 2 }),
            openDatabase({ driver: "postgres", url: POSTGRES_URL, pgSchema: schema, poolMax: 2 }),
          ]);
          await Promise.all([a.close(), b.close()]);
        } else {
          const results = await Promise.all([migrate(db(), { schema }), migrate(db(), { schema })]);
          expect(results.flatMap((result) => result.applied)).toEqual(allTags);
        }
        expect(await journal(db(), schema)).toBe(allTags.length);
        expect(await tablesIn(db(), schema)).toContain("proxy_scaling_events");
      } finally {
        await dropSchema(db(), schema);
      }
    });

    it("refuse a committed migration whose file changed after it was applied", async () => {
      await inFreshSchema(database(), async (tx) => {
        const [first, ...rest] = readMigrations();
        const edited = [{ ...first!, hash: "edited" }, ...rest];
        await expect(migrate(tx, { schema: database().schema, migrations: edited })).rejects.toBeInstanceOf(
          MigrationError,
        );
      });
    });

    it("run each migration in its own transaction: a failing one leaves the earlier ones and none of itself", async () => {
      const schema = randomSchemaName("broken");
      const broken = {
        tag: "9999_broken",
        createdAt: Number.MAX_SAFE_INTEGER,
        hash: "broken",
        statements: ["create table half_done (id int)", "select 1 / 0"],
      };
      try {
        await expect(migrate(db(), { schema, migrations: [...readMigrations(), broken] })).rejects.toThrow(
          /9999_broken failed: division by zero/,
        );
        expect(await journal(db(), schema)).toBe(allTags.length);
        expect(await tablesIn(db(), schema)).not.toContain("half_done");
      } finally {
        await dropSchema(db(), schema);
      }
    });

    it("backfill, from decisions stored before them, the recommendation columns (0001) and the newest recommendation of each replica count (0003)", async () => {
      const schema = randomSchemaName("backfill");
      const [first, ...later] = readMigrations();
      try {
        await migrate(db(), { schema, migrations: [first!] });
        await db().execute(
          sql.raw(
            `insert into "${schema}".proxies (id, owner_id, name) values ('00000000-0000-4000-8000-0000000000cc', 'o', 'p')`,
          ),
        );
        await db().execute(
          sql.raw(`insert into "${schema}".scaling_decisions (proxy_id, evaluated_at, triggered_by, strategy, action,
              current_replicas, recommended_replicas, desired_replicas, explanation, decision)
            values ('00000000-0000-4000-8000-0000000000cc', '2030-01-01T00:00:05Z', 'auto', 'threshold', 'none', 2, 3, 2,
              'e', '{"recommendation": {"at": 1893456000000, "replicas": 3}}'),
              ('00000000-0000-4000-8000-0000000000cc', '2030-01-01T00:00:10Z', 'auto', 'threshold', 'none', 2, 3, 2,
              'e', '{"recommendation": {"at": 1893456010000, "replicas": 3}}'),
              ('00000000-0000-4000-8000-0000000000cc', '2030-01-01T00:00:07Z', 'auto', 'threshold', 'none', 2, 4, 2,
              'e', '{"recommendation": {"at": 1893456007000, "replicas": 4}}')`),
        );
        expect((await migrate(db(), { schema, migrations: [first!, ...later] })).applied).toEqual(
          later.map((migration) => migration.tag),
        );
        const rows = await queryRows<{ at: number; replicas: number }>(
          db(),
          sql.raw(`select round(extract(epoch from recommendation_at) * 1000)::float8 as at,
                     recommendation_replicas as replicas from "${schema}".scaling_decisions order by evaluated_at`),
        );
        expect(rows).toEqual([
          { at: 1893456000000, replicas: 3 },
          { at: 1893456007000, replicas: 4 },
          { at: 1893456010000, replicas: 3 },
        ]);
        const newest = await queryRows<{ at: number; replicas: number }>(
          db(),
          sql.raw(`select round(extract(epoch from recommended_at) * 1000)::float8 as at, replicas
                   from "${schema}".scaling_recommendations order by replicas`),
        );
        expect(newest).toEqual([
          { at: 1893456010000, replicas: 3 },
          { at: 1893456007000, replicas: 4 },
        ]);
      } finally {
        await dropSchema(db(), schema);
      }
    });

    it("rewrite decisions stored with the old dryRun limit into core's mode limit (0005), so they match decisionSchema", async () => {
      const schema = randomSchemaName("modelimit");
      const migrations = readMigrations();
      const before = migrations.filter((migration) => migration.tag < "0005");
      const now = Date.parse("2030-01-01T00:00:00Z");
      const policy = parsePolicy({ mode: "dryRun", scaleUpCooldownSeconds: 0 });
      const sample = {
        at: now,
        cpuPercent: 99,
        memoryPercent: 99,
        requestRate: 5000,
        avgLatencyMs: 1,
        errorRatePercent: 0,
      };
      const current = decide(
        policy,
        {
          currentReplicas: 2,
          unhealthyReplicas: 0,
          samples: [sample],
          recentEvents: [],
          recommendations: [],
          lastSampleAt: now,
          createdAt: now,
          activeEvent: null,
          reconcileIntervalMs: 10_000,
        },
        now,
      );
      expect(current.limits.at(-1)).toEqual({ kind: "mode", mode: "dryRun", from: 3, to: 3 });
      const stored = { ...current, limits: [...current.limits.slice(0, -1), { kind: "dryRun" }] };
      expect(decisionSchema.safeParse(stored).success).toBe(false);
      try {
        await migrate(db(), { schema, migrations: before });
        await db().execute(
          sql.raw(
            `insert into "${schema}".proxies (id, owner_id, name) values ('00000000-0000-4000-8000-0000000000dd', 'o', 'p')`,
          ),
        );
        await db().execute(
          sql.raw(`insert into "${schema}".scaling_decisions (proxy_id, evaluated_at, triggered_by, strategy, action,
              current_replicas, recommended_replicas, desired_replicas, explanation, recommendation_at,
              recommendation_replicas, decision)
            values ('00000000-0000-4000-8000-0000000000dd', '2030-01-01T00:00:00Z', 'auto', 'threshold', 'scale_up',
              2, 3, 3, 'e', '2030-01-01T00:00:00Z', 3, '${JSON.stringify(stored)}')`),
        );
        await migrate(db(), { schema, migrations });
        const [row] = await queryRows<{ decision: unknown }>(
          db(),
          sql.raw(`select decision from "${schema}".scaling_decisions`),
        );
        expect(decisionSchema.parse(row!.decision)).toEqual(current);
      } finally {
        await dropSchema(db(), schema);
      }
    });

    it("keep an isolated pgSchema's rows in that schema", async () => {
      const ownerId = unique("owner");
      await createProxy(db(), { ownerId, name: "isolated", actorId: ownerId });
      const rows = await queryRows<{ n: number }>(
        db(),
        sql.raw(
          `select count(*)::int as n from "${database().schema}".proxies where owner_id = '${ownerId}'`,
        ),
      );
      expect(rows[0]!.n).toBe(1);
    });
  });

  describe("constraints refuse bad rows that bypass zod", () => {
    const proxyId = "00000000-0000-4000-8000-0000000000aa";
    const eventId = "00000000-0000-4000-8000-0000000000bb";

    it("on proxies: negative replicas, unknown health and actuator kinds, blank names", async () => {
      await inFreshSchema(database(), async (tx) => {
        await expectViolation(
          tx,
          sql`insert into proxies (owner_id, name, current_replicas) values ('o', 'p', -1)`,
          "proxies_current_replicas_non_negative",
        );
        await expectViolation(
          tx,
          sql`insert into proxies (owner_id, name, health) values ('o', 'p', 'sick')`,
          "proxies_health_valid",
        );
        await expectViolation(
          tx,
          sql`insert into proxies (owner_id, name, actuator_kind) values ('o', 'p', 'ssh')`,
          "proxies_actuator_kind_valid",
        );
        await expectViolation(
          tx,
          sql`insert into proxies (owner_id, name) values ('o', '  ')`,
          "proxies_name_not_blank",
        );
      });
    });

    it("on policies: min > max, crossed thresholds, unknown strategy, unknown proxy", async () => {
      await inFreshSchema(database(), async (tx) => {
        await tx.execute(sql`insert into proxies (id, owner_id, name) values (${proxyId}, 'o', 'p')`);
        const policy = (overrides: Record<string, unknown>) => {
          const values = {
            min_replicas: 1,
            max_replicas: 10,
            scale_up_threshold: 80,
            scale_down_threshold: 30,
            strategy: "threshold",
            proxy_id: proxyId,
            ...overrides,
          };
          return sql`insert into proxy_scaling_policies (proxy_id, owner_id, min_replicas, max_replicas,
              target_cpu_percent, target_memory_percent, target_request_rate, scale_up_threshold,
              scale_down_threshold, scale_up_cooldown_seconds, scale_down_cooldown_seconds, strategy, mode,
              behavior, strategy_settings, created_by, updated_by)
            values (${values.proxy_id}::uuid, 'o', ${values.min_replicas}, ${values.max_replicas}, 70, 80, 1000,
              ${values.scale_up_threshold}, ${values.scale_down_threshold}, 60, 300, ${values.strategy}, 'auto',
              '{}', '{}', 'a', 'a')`;
        };
        await expectViolation(
          tx,
          policy({ min_replicas: 5, max_replicas: 2 }),
          "proxy_scaling_policies_min_le_max",
        );
        await expectViolation(
          tx,
          policy({ scale_up_threshold: 30, scale_down_threshold: 80 }),
          "proxy_scaling_policies_thresholds_ordered",
        );
        await expectViolation(tx, policy({ strategy: "magic" }), "proxy_scaling_policies_strategy_valid");
        await expectViolation(
          tx,
          policy({ proxy_id: "00000000-0000-4000-8000-000000000001" }),
          "proxy_scaling_policies_proxy_id_proxies_id_fk",
        );
        await tx.execute(policy({}));
      });
    });

    it("on samples and rollups: out-of-range metrics, unknown proxy, a bucket off the minute", async () => {
      await inFreshSchema(database(), async (tx) => {
        await tx.execute(sql`insert into proxies (id, owner_id, name) values (${proxyId}, 'o', 'p')`);
        const sampleRow = (cpu: number, load: number, proxy = proxyId) =>
          sql`insert into proxy_load_metrics (proxy_id, recorded_at, cpu_percent, memory_percent, request_rate,
                avg_latency_ms, error_rate_percent, load_score)
              values (${proxy}::uuid, now(), ${cpu}, 10, 10, 10, 0, ${load})`;
        await expectViolation(tx, sampleRow(101, 50), "proxy_load_metrics_percents_valid");
        await expectViolation(tx, sampleRow(50, -1), "proxy_load_metrics_load_score_valid");
        await expectViolation(
          tx,
          sampleRow(50, 50, "00000000-0000-4000-8000-000000000001"),
          "proxy_load_metrics_proxy_id_proxies_id_fk",
        );
        await expectViolation(
          tx,
          sql`insert into proxy_load_metrics_1m (proxy_id, bucket, samples, cpu_percent_avg, cpu_percent_max,
                memory_percent_avg, memory_percent_max, request_rate_avg, request_rate_max, avg_latency_ms_avg,
                avg_latency_ms_max, error_rate_percent_avg, error_rate_percent_max, load_score_avg, load_score_max,
                replica_samples)
              values (${proxyId}::uuid, '2030-01-01T00:00:30Z', 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)`,
          "proxy_load_metrics_1m_bucket_minute",
        );
      });
    });

    it("on scaling events: unknown status and trigger, a type against its counts, failed without error", async () => {
      await inFreshSchema(database(), async (tx) => {
        await tx.execute(sql`insert into proxies (id, owner_id, name) values (${proxyId}, 'o', 'p')`);
        const eventRow = (values: {
          type?: string;
          from?: number;
          to?: number;
          trigger?: string;
          status?: string;
          error?: string | null;
          completed?: boolean;
        }) =>
          sql`insert into proxy_scaling_events (id, proxy_id, event_type, previous_replicas, new_replicas,
                triggered_by, status, error, completed_at)
              values (${eventId}, ${proxyId}, ${values.type ?? "scale_up"}, ${values.from ?? 1}, ${values.to ?? 2},
                ${values.trigger ?? "auto"}, ${values.status ?? "pending"}, ${values.error ?? null},
                ${values.completed ? sql`now()` : sql`null`})`;
        await expectViolation(tx, eventRow({ status: "done" }), "proxy_scaling_events_status_valid");
        await expectViolation(tx, eventRow({ trigger: "robot" }), "proxy_scaling_events_triggered_by_valid");
        await expectViolation(
          tx,
          eventRow({ type: "scale_up", from: 3, to: 2 }),
          "proxy_scaling_events_direction_matches_type",
        );
        await expectViolation(
          tx,
          eventRow({ from: -1, to: 2 }),
          "proxy_scaling_events_replicas_non_negative",
        );
        await expectViolation(
          tx,
          eventRow({ status: "failed", completed: true }),
          "proxy_scaling_events_error_when_failed",
        );
        await expectViolation(
          tx,
          eventRow({ status: "completed" }),
          "proxy_scaling_events_completed_when_finished",
        );
        await tx.execute(eventRow({}));
        await expectViolation(
          tx,
          sql`update proxy_scaling_events set status = 'in_progress' where id = ${eventId}`,
          "proxy_scaling_events_started_when_running",
        );
        await expectViolation(
          tx,
          sql`insert into proxy_scaling_events (proxy_id, event_type, previous_replicas, new_replicas, triggered_by)
              values (${proxyId}, 'scale_up', 1, 3, 'auto')`,
          "proxy_scaling_events_one_active_per_proxy",
        );
      });
    });
  });
});

describe("schema drift", () => {
  const packageDir = fileURLToPath(new URL("..", import.meta.url));
  const scratch = mkdtempSync(join(tmpdir(), "proxyscale-drift-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  function generate(out: string) {
    const config = join(scratch, `drizzle-${readdirSync(scratch).length}.config.ts`);
    writeFileSync(
      config,
      // drizzle-kit resolves `out` relative to the working directory.
      `export default ${JSON.stringify({ dialect: "postgresql", schema: "./src/schema/index.ts", out: relative(packageDir, out) })};\n`,
    );
    const result = spawnSync(
      join(packageDir, "node_modules/.bin/drizzle-kit"),
      ["generate", "--config", config],
      {
        cwd: packageDir,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    return {
      output: result.stdout + result.stderr,
      files: readdirSync(out).filter((file) => file.endsWith(".sql")),
    };
  }

  it("drizzle-kit finds nothing to generate against the committed migrations", () => {
    const out = join(scratch, "committed");
    cpSync(MIGRATIONS_FOLDER, out, { recursive: true });
    const before = readdirSync(out).filter((file) => file.endsWith(".sql"));
    const { output, files } = generate(out);
    expect(output).toContain("No schema changes");
    expect(files).toEqual(before);
  });

  it("drizzle-kit does generate a migration from nothing (the check can fail)", () => {
    const out = join(scratch, "empty");
    const { files } = generate(out);
    expect(files).toHaveLength(1);
  });
});
