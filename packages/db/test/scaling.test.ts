import {
  DEFAULT_POLICY,
  type Decision,
  type MetricSample,
  TIER_LIMITS,
  TIERS,
  type Tier,
} from "@proxyscale/core";
import { desc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  acquireLeases,
  ConflictError,
  completeScalingEvent,
  createProxy,
  createScalingEvent,
  type Database,
  type Db,
  findActiveScalingEvent,
  getProxy,
  getScalingEvent,
  getScalingSummary,
  InvalidInputError,
  insertSamples,
  latestSamples,
  listActiveScalingEvents,
  listAudit,
  listDecisions,
  listScalingEvents,
  loadObservedStates,
  NotFoundError,
  openDatabase,
  queryRows,
  recordDecision,
  recordDecisions,
  releaseLeases,
  rollupMetrics,
  schema,
  setEnvironmentPolicy,
  startScalingEventAudited,
  UNSPECIFIED_ERROR,
  upsertPolicy,
  withTransaction,
} from "../src/index.ts";
import { forEachDriver, inFreshSchema, POSTGRES_URL, StatementCounter, unique } from "./drivers.ts";

const HOUR = 3_600_000;
const RECONCILE_MS = 10_000;
const ACTOR = "control:test";

/** The history snapshots of a proxy's scales, newest first (no production code reads them back). */
function historyOf(db: Db, proxyId: string) {
  return db
    .select()
    .from(schema.proxyScalingHistory)
    .where(eq(schema.proxyScalingHistory.proxyId, proxyId))
    .orderBy(desc(schema.proxyScalingHistory.recordedAt));
}

function sample(at: number, value: number, instanceId?: string): MetricSample {
  return {
    at,
    cpuPercent: value,
    memoryPercent: value,
    requestRate: value,
    avgLatencyMs: value,
    errorRatePercent: 0,
    ...(instanceId ? { instanceId } : {}),
  };
}

function decision(at: number, replicas: number): Decision {
  return {
    strategy: "threshold",
    action: "scale_up",
    currentReplicas: replicas - 1,
    recommendedReplicas: replicas,
    desiredReplicas: replicas,
    loadScore: 85,
    metrics: [],
    limits: [],
    explanation: `load 85 is above 80: scale to ${replicas}`,
    recommendation: { at, replicas },
    evaluatedAt: at,
  };
}

async function newProxy(db: Db, currentReplicas = 2, environment?: string) {
  const ownerId = unique("owner");
  return createProxy(db, { ownerId, name: unique("proxy"), currentReplicas, environment, actorId: ownerId });
}

const counter = new StatementCounter();

forEachDriver(
  "scaling",
  ({ database, driver }) => {
    const db = () => database().db;

    /** A second handle on the same data: on PostgreSQL its own pool, so concurrency is real. */
    async function secondHandle(): Promise<{ db: Db; close(): Promise<void> }> {
      if (driver.name === "pglite") return { db: db(), close: async () => {} };
      const other: Database = await openDatabase({
        driver: "postgres",
        url: POSTGRES_URL,
        pgSchema: database().schema,
        poolMax: 4,
      });
      return { db: other.db, close: () => other.close() };
    }

    describe("events", () => {
      it("creates the event, its history snapshot and the proxy's desired replicas together, audited when manual", async () => {
        const proxy = await newProxy(db(), 2);
        const now = Date.now();
        await insertSamples(db(), [
          { proxyId: proxy.id, sample: sample(now, 80, "a"), loadScore: 80 },
          { proxyId: proxy.id, sample: sample(now, 90, "b"), loadScore: 90 },
        ]);
        const event = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 4,
          triggeredBy: "manual",
          reason: "traffic",
          actorId: "op-1",
        });
        expect(event).toMatchObject({
          proxyId: proxy.id,
          eventType: "scale_up",
          previousReplicas: 2,
          newReplicas: 4,
          triggeredBy: "manual",
          status: "pending",
          reason: "traffic",
          error: null,
          createdBy: "op-1",
          startedAt: null,
          completedAt: null,
          durationMs: null,
        });
        expect((await getProxy(db(), { id: proxy.id }))?.desiredReplicas).toBe(4);
        const [history] = await historyOf(db(), proxy.id);
        expect(history).toMatchObject({
          eventId: event.id,
          previousReplicas: 2,
          newReplicas: 4,
          loadScore: 85,
        });
        expect(history!.metrics.map((s) => s.instanceId)).toEqual(["a", "b"]);
        const [audit] = (await listAudit(db(), { entityId: event.id })).items;
        expect(audit).toMatchObject({
          actorId: "op-1",
          action: "scaling.execute",
          entityType: "scaling_event",
        });
      });

      it("keeps a given snapshot and decision, and does not audit automatic scales", async () => {
        const proxy = await newProxy(db(), 3);
        const { id: decisionId } = await recordDecision(db(), {
          proxyId: proxy.id,
          decision: decision(Date.now(), 2),
          triggeredBy: "auto",
        });
        const event = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 2,
          triggeredBy: "auto",
          reason: "idle",
          decisionId,
          snapshot: { loadScore: 12, samples: [sample(1_000, 12)], decision: decision(1_000, 2) },
        });
        expect(event).toMatchObject({ eventType: "scale_down", decisionId, previousReplicas: 3 });
        const [history] = await historyOf(db(), proxy.id);
        expect(history).toMatchObject({ loadScore: 12, metrics: [sample(1_000, 12)] });
        expect(history!.decision?.recommendation).toEqual({ at: 1_000, replicas: 2 });
        expect((await listAudit(db(), { entityId: event.id })).items).toEqual([]);
      });

      it("refuses a scale to the count in effect and a second scale while one is in flight", async () => {
        const proxy = await newProxy(db(), 2);
        const base = { proxyId: proxy.id, triggeredBy: "manual" as const, reason: "r" };
        await expect(createScalingEvent(db(), { ...base, newReplicas: 2 })).rejects.toBeInstanceOf(
          ConflictError,
        );
        const first = await createScalingEvent(db(), { ...base, newReplicas: 3 });
        await expect(createScalingEvent(db(), { ...base, newReplicas: 4 })).rejects.toBeInstanceOf(
          ConflictError,
        );
        expect((await findActiveScalingEvent(db(), { proxyId: proxy.id }))?.id).toBe(first.id);
        await completeScalingEvent(db(), { eventId: first.id, status: "completed", observedReplicas: 3 });
        expect(await findActiveScalingEvent(db(), { proxyId: proxy.id })).toBeNull();
        const second = await createScalingEvent(db(), { ...base, newReplicas: 4 });
        expect(second.previousReplicas).toBe(3);
      });

      it("refuses a scale decided from a replica count the proxy no longer runs, and records nothing", async () => {
        const proxy = await newProxy(db(), 2);
        const base = { proxyId: proxy.id, triggeredBy: "auto" as const, reason: "r" };
        const first = await createScalingEvent(db(), { ...base, previousReplicas: 2, newReplicas: 3 });
        await completeScalingEvent(db(), { eventId: first.id, status: "completed", observedReplicas: 3 });
        await expect(
          createScalingEvent(db(), { ...base, previousReplicas: 2, newReplicas: 4 }),
        ).rejects.toThrow(
          new ConflictError(`proxy ${proxy.id} runs 3 replicas now, not the 2 this scale was decided from`),
        );
        expect((await listScalingEvents(db(), { proxyId: proxy.id })).items.map((event) => event.id)).toEqual(
          [first.id],
        );
        expect((await getProxy(db(), { id: proxy.id }))?.desiredReplicas).toBe(3);
      });

      it("moves pending → in_progress (audited, once) → completed once, with duration = completedAt − startedAt", async () => {
        const proxy = await newProxy(db(), 1);
        const event = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 3,
          triggeredBy: "auto",
          reason: "r",
        });
        const started = await startScalingEventAudited(db(), { eventId: event.id, actorId: ACTOR });
        expect(started).toMatchObject({ status: "in_progress" });
        expect(started!.startedAt).toBeInstanceOf(Date);
        expect(await startScalingEventAudited(db(), { eventId: event.id, actorId: ACTOR })).toBeNull();
        const audit = (await listAudit(db(), { entityId: event.id })).items;
        expect(audit).toMatchObject([
          {
            actorId: ACTOR,
            action: "scaling.start",
            before: { status: "pending" },
            after: { status: "in_progress" },
          },
        ]);
        const done = await completeScalingEvent(db(), {
          eventId: event.id,
          status: "completed",
          observedReplicas: 3,
        });
        expect(done.status).toBe("completed");
        expect(done.durationMs).toBe(done.completedAt!.getTime() - done.startedAt!.getTime());
        expect(done.error).toBeNull();
        expect((await getProxy(db(), { id: proxy.id }))?.currentReplicas).toBe(3);
        expect(await startScalingEventAudited(db(), { eventId: event.id, actorId: ACTOR })).toBeNull();
      });

      it("refuses to complete a finished event with ConflictError and changes nothing", async () => {
        const proxy = await newProxy(db(), 1);
        const event = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 2,
          triggeredBy: "auto",
          reason: "r",
        });
        const done = await completeScalingEvent(db(), { eventId: event.id, status: "completed" });
        for (const status of ["completed", "failed", "cancelled"] as const) {
          await expect(
            completeScalingEvent(db(), { eventId: event.id, status, error: "late", observedReplicas: 9 }),
          ).rejects.toBeInstanceOf(ConflictError);
        }
        expect(await getScalingEvent(db(), { id: event.id })).toEqual(done);
        expect((await getProxy(db(), { id: proxy.id }))?.currentReplicas).toBe(1);
      });

      it("records the error of a failed event, and a placeholder when none is given", async () => {
        const proxy = await newProxy(db(), 1);
        const first = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 2,
          triggeredBy: "auto",
          reason: "r",
        });
        await startScalingEventAudited(db(), { eventId: first.id, actorId: ACTOR });
        const failed = await completeScalingEvent(db(), {
          eventId: first.id,
          status: "failed",
          error: "webhook answered 500",
        });
        expect(failed).toMatchObject({ status: "failed", error: "webhook answered 500" });
        const second = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 2,
          triggeredBy: "auto",
          reason: "r",
        });
        expect((await completeScalingEvent(db(), { eventId: second.id, status: "failed" })).error).toBe(
          UNSPECIFIED_ERROR,
        );
        const third = await createScalingEvent(db(), {
          proxyId: proxy.id,
          newReplicas: 2,
          triggeredBy: "auto",
          reason: "r",
        });
        const cancelled = await completeScalingEvent(db(), { eventId: third.id, status: "cancelled" });
        expect(cancelled).toMatchObject({ status: "cancelled", error: null, startedAt: null });
        expect(cancelled.durationMs).toBe(cancelled.completedAt!.getTime() - cancelled.createdAt.getTime());
      });

      it("throws NotFoundError for unknown events and proxies", async () => {
        const unknown = "00000000-0000-4000-8000-000000000000";
        await expect(
          completeScalingEvent(db(), { eventId: unknown, status: "completed" }),
        ).rejects.toBeInstanceOf(NotFoundError);
        await expect(
          completeScalingEvent(db(), { eventId: "x", status: "completed" }),
        ).rejects.toBeInstanceOf(NotFoundError);
        expect(await startScalingEventAudited(db(), { eventId: unknown, actorId: ACTOR })).toBeNull();
        expect(await getScalingEvent(db(), { id: unknown })).toBeNull();
        await expect(
          createScalingEvent(db(), { proxyId: unknown, newReplicas: 2, triggeredBy: "auto", reason: "r" }),
        ).rejects.toBeInstanceOf(NotFoundError);
      });

      it("leaves nothing behind when a write fails mid-transaction", async () => {
        const proxy = await newProxy(db(), 2);
        // The event row is written first; the history row then fails (jsonb refuses \u0000), so all rolls back.
        await expect(
          createScalingEvent(db(), {
            proxyId: proxy.id,
            newReplicas: 5,
            triggeredBy: "manual",
            reason: "r",
            actorId: "op",
            snapshot: { loadScore: 1, samples: [sample(1, 1, "bad\u0000id")] },
          }),
        ).rejects.toThrow();
        expect((await listScalingEvents(db(), { proxyId: proxy.id })).items).toEqual([]);
        expect(await historyOf(db(), proxy.id)).toEqual([]);
        expect((await getProxy(db(), { id: proxy.id }))?.desiredReplicas).toBe(2);

        const ownerId = unique("owner");
        await expect(
          withTransaction(db(), async (tx) => {
            await createProxy(tx, { ownerId, name: "doomed", actorId: ownerId });
            throw new Error("abort");
          }),
        ).rejects.toThrow("abort");
        const rows = await queryRows<{ n: number }>(
          db(),
          sql`select (select count(*) from proxies where owner_id = ${ownerId})::int
                   + (select count(*) from audit_log where actor_id = ${ownerId})::int as n`,
        );
        expect(rows[0]!.n).toBe(0);
      });

      it("lets exactly one of many concurrent starts and completions win", async () => {
        const other = await secondHandle();
        try {
          const proxy = await newProxy(db(), 1);
          const event = await createScalingEvent(db(), {
            proxyId: proxy.id,
            newReplicas: 2,
            triggeredBy: "auto",
            reason: "r",
          });
          const handles = [db(), other.db];
          const starts = await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              startScalingEventAudited(handles[i % 2]!, { eventId: event.id, actorId: ACTOR }),
            ),
          );
          expect(starts.filter((started) => started !== null)).toHaveLength(1);
          const statuses = ["completed", "failed", "cancelled"] as const;
          const completions = await Promise.allSettled(
            Array.from({ length: 9 }, (_, i) =>
              completeScalingEvent(handles[i % 2]!, {
                eventId: event.id,
                status: statuses[i % 3]!,
                error: "e",
              }),
            ),
          );
          const winners = completions.filter((result) => result.status === "fulfilled");
          expect(winners).toHaveLength(1);
          for (const result of completions) {
            if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
          }
          const stored = await getScalingEvent(db(), { id: event.id });
          expect(stored?.status).toBe(
            (winners[0] as PromiseFulfilledResult<{ status: string }>).value.status,
          );
        } finally {
          await other.close();
        }
      });

      it.skipIf(driver.name === "pglite")(
        "locks the proxy row before its events: a start or completion waits for a scale that holds the proxy, which is refused as in flight instead of deadlocking",
        async () => {
          const other = await secondHandle();
          try {
            const proxy = await newProxy(db(), 1);
            const base = { proxyId: proxy.id, triggeredBy: "manual" as const, reason: "r" };
            const pending = await createScalingEvent(db(), { ...base, newReplicas: 2 });
            for (const writer of ["start", "complete"] as const) {
              const settled = await withTransaction(db(), async (tx) => {
                // What a manual scale holds between its lock and its insert.
                await tx.execute(sql`select 1 from proxies where id = ${proxy.id}::uuid for no key update`);
                const [{ pid }] = (await queryRows<{ pid: number }>(
                  tx,
                  sql`select pg_backend_pid() as pid`,
                )) as [{ pid: number }];
                const write =
                  writer === "start"
                    ? startScalingEventAudited(other.db, { eventId: pending.id, actorId: ACTOR })
                    : completeScalingEvent(other.db, {
                        eventId: pending.id,
                        status: "completed",
                        observedReplicas: 2,
                      });
                await expect
                  .poll(
                    async () =>
                      (
                        await queryRows<{ n: number }>(
                          db(),
                          sql`select count(*)::int as n from pg_stat_activity
                              where ${pid}::int = any(pg_blocking_pids(pid))`,
                        )
                      )[0]!.n,
                    { timeout: 5_000 },
                  )
                  .toBe(1);
                // The waiting writer holds no lock on the event (NOWAIT fails at once on a locked row)…
                await expect(
                  queryRows(
                    db(),
                    sql`select id from proxy_scaling_events where id = ${pending.id}::uuid for no key update nowait`,
                  ),
                ).resolves.toHaveLength(1);
                // …so the event is still in flight as it was, and the scale is refused at once.
                await expect(createScalingEvent(tx, { ...base, newReplicas: 3 })).rejects.toThrow(
                  new ConflictError(`proxy ${proxy.id} already has a scaling event in flight`),
                );
                // Wrapped: a returned promise would be awaited inside the transaction, which it waits for.
                return { write };
              });
              expect(await settled.write, writer).toMatchObject({
                status: writer === "start" ? "in_progress" : "completed",
              });
            }
            expect((await getProxy(db(), { id: proxy.id }))?.currentReplicas).toBe(2);
          } finally {
            await other.close();
          }
        },
      );

      it("lets exactly one of many concurrent scales of one proxy be created", async () => {
        const other = await secondHandle();
        try {
          const proxy = await newProxy(db(), 1);
          const handles = [db(), other.db];
          const results = await Promise.allSettled(
            Array.from({ length: 6 }, (_, i) =>
              createScalingEvent(handles[i % 2]!, {
                proxyId: proxy.id,
                newReplicas: 2 + i,
                triggeredBy: "auto",
                reason: `r${i}`,
              }),
            ),
          );
          const created = results.filter((result) => result.status === "fulfilled");
          expect(created).toHaveLength(1);
          for (const result of results) {
            if (result.status === "rejected") expect(result.reason).toBeInstanceOf(ConflictError);
          }
          const winner = (created[0] as PromiseFulfilledResult<{ newReplicas: number }>).value;
          expect(await historyOf(db(), proxy.id)).toHaveLength(1);
          expect((await getProxy(db(), { id: proxy.id }))?.desiredReplicas).toBe(winner.newReplicas);
        } finally {
          await other.close();
        }
      });

      it("pages events newest first and lists the ones in flight", async () => {
        const proxy = await newProxy(db(), 1);
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const event = await createScalingEvent(db(), {
            proxyId: proxy.id,
            newReplicas: i + 2,
            triggeredBy: "auto",
            reason: `r${i}`,
          });
          ids.push(event.id);
          if (i < 2)
            await completeScalingEvent(db(), {
              eventId: event.id,
              status: "completed",
              observedReplicas: i + 2,
            });
        }
        const first = await listScalingEvents(db(), { proxyId: proxy.id, limit: 2 });
        const second = await listScalingEvents(db(), {
          proxyId: proxy.id,
          limit: 2,
          cursor: first.nextCursor,
        });
        expect([...first.items, ...second.items].map((event) => event.id)).toEqual([...ids].reverse());
        expect(second.nextCursor).toBeNull();
        const active = await listActiveScalingEvents(db(), {});
        expect(active.map((event) => event.id)).toContain(ids[2]);
        expect(active.map((event) => event.id)).not.toContain(ids[0]);
        expect(
          (await listActiveScalingEvents(db(), { createdBefore: new Date(0) })).map((event) => event.id),
        ).toEqual([]);
        await expect(
          listScalingEvents(db(), { proxyId: proxy.id, cursor: "garbage" }),
        ).rejects.toBeInstanceOf(InvalidInputError);
      });
    });

    describe("decisions", () => {
      it("stores every decision and pages them newest first", async () => {
        const proxy = await newProxy(db(), 1);
        const base = Date.UTC(2030, 0, 1);
        for (let i = 0; i < 3; i++) {
          await recordDecision(db(), {
            proxyId: proxy.id,
            decision: decision(base + i * 1000, 2 + i),
            triggeredBy: "auto",
          });
        }
        const first = await listDecisions(db(), { proxyId: proxy.id, limit: 2 });
        const second = await listDecisions(db(), { proxyId: proxy.id, limit: 2, cursor: first.nextCursor });
        expect([...first.items, ...second.items].map((record) => record.decision.desiredReplicas)).toEqual([
          4, 3, 2,
        ]);
        expect(first.items[0]).toMatchObject({ triggeredBy: "auto", evaluatedAt: new Date(base + 2000) });
        expect(first.items[0]!.decision).toEqual(decision(base + 2000, 4));
        await expect(
          recordDecision(db(), {
            proxyId: "00000000-0000-4000-8000-000000000000",
            decision: decision(base, 2),
            triggeredBy: "auto",
          }),
        ).rejects.toBeInstanceOf(NotFoundError);
      });
      it("stores a batch of decisions in one statement, with a null in place of each proxy that does not exist", async () => {
        const first = await newProxy(db(), 1);
        const second = await newProxy(db(), 1);
        const base = Date.UTC(2030, 0, 2);
        const ids = await recordDecisions(db(), [
          { proxyId: first.id, decision: decision(base, 2), triggeredBy: "auto" },
          {
            proxyId: "00000000-0000-4000-8000-000000000000",
            decision: decision(base, 3),
            triggeredBy: "auto",
          },
          { proxyId: "not-a-uuid", decision: decision(base, 4), triggeredBy: "manual" },
          { proxyId: second.id, decision: decision(base + 1000, 5), triggeredBy: "admin" },
        ]);
        expect(ids[1]).toBeNull();
        expect(ids[2]).toBeNull();
        const firstPage = await listDecisions(db(), { proxyId: first.id });
        const secondPage = await listDecisions(db(), { proxyId: second.id });
        expect(firstPage.items.map((record) => record.id)).toEqual([ids[0]]);
        expect(secondPage.items.map((record) => record.id)).toEqual([ids[3]]);
        expect(firstPage.items[0]!.decision).toEqual(decision(base, 2));
        expect(secondPage.items[0]).toMatchObject({
          triggeredBy: "admin",
          evaluatedAt: new Date(base + 1000),
        });
        expect(await recordDecisions(db(), [])).toEqual([]);
      });
    });

    describe("observed state", () => {
      it("reads further back, in five more statements, for the proxies whose policy looks back past historySeconds", async () => {
        const now = Date.now();
        const longWindow = await newProxy(db(), 3);
        const plain = await newProxy(db(), 3);
        await upsertPolicy(db(), {
          proxyId: longWindow.id,
          policy: {
            ...DEFAULT_POLICY,
            behavior: {
              ...DEFAULT_POLICY.behavior,
              scaleDown: { ...DEFAULT_POLICY.behavior.scaleDown, stabilizationWindowSeconds: 3_600 },
            },
          },
          actorId: "a",
        });
        for (const proxy of [longWindow, plain]) {
          await recordDecision(db(), {
            proxyId: proxy.id,
            decision: decision(now - 2_000_000, 6),
            triggeredBy: "auto",
          });
        }
        counter.reset();
        const states = await loadObservedStates(db(), {
          proxyIds: [longWindow.id, plain.id],
          now,
          historySeconds: 600,
          reconcileIntervalMs: RECONCILE_MS,
        });
        expect(counter.statements).toHaveLength(10);
        expect(states.get(longWindow.id)!.state.recommendations).toEqual([
          { at: now - 2_000_000, replicas: 6 },
        ]);
        expect(states.get(plain.id)!.state.recommendations).toEqual([]);
      });

      it("loads the state of N proxies in five statements whatever N, with policies, samples, events and recommendations", async () => {
        const now = Date.now();
        const environment = unique("env");
        const p1 = await newProxy(db(), 2);
        const p2 = await newProxy(db(), 3, environment);
        const p3 = await newProxy(db(), 1);
        const rest = await Promise.all(Array.from({ length: 17 }, () => newProxy(db(), 1)));
        await upsertPolicy(db(), {
          proxyId: p1.id,
          policy: { ...DEFAULT_POLICY, maxReplicas: 7 },
          actorId: "a",
        });
        await setEnvironmentPolicy(db(), {
          environment,
          policy: { ...DEFAULT_POLICY, maxReplicas: 5 },
          actorId: "a",
        });
        await insertSamples(db(), [
          { proxyId: p1.id, sample: sample(now - 10_000, 40, "a"), loadScore: 40 },
          { proxyId: p1.id, sample: sample(now - 5_000, 60, "b"), loadScore: 60 },
          { proxyId: p1.id, sample: sample(now - 2 * HOUR, 99, "gone"), loadScore: 99 },
          ...rest.map((proxy) => ({ proxyId: proxy.id, sample: sample(now, 10), loadScore: 10 })),
        ]);
        const failed = await createScalingEvent(db(), {
          proxyId: p1.id,
          newReplicas: 3,
          triggeredBy: "auto",
          reason: "r",
        });
        await completeScalingEvent(db(), { eventId: failed.id, status: "failed", error: "x" });
        const scaled = await createScalingEvent(db(), {
          proxyId: p1.id,
          newReplicas: 3,
          triggeredBy: "auto",
          reason: "r",
        });
        await completeScalingEvent(db(), { eventId: scaled.id, status: "completed", observedReplicas: 3 });
        await recordDecision(db(), {
          proxyId: p1.id,
          decision: decision(now - 100_000, 3),
          triggeredBy: "auto",
        });
        await recordDecision(db(), {
          proxyId: p1.id,
          decision: decision(now - 4_000_000, 9),
          triggeredBy: "auto",
        });

        const ids = [p1.id, p2.id, p3.id, ...rest.map((proxy) => proxy.id)];
        counter.reset();
        const states = await loadObservedStates(db(), {
          proxyIds: [...ids, "00000000-0000-4000-8000-000000000000"],
          now,
          historySeconds: 600,
          reconcileIntervalMs: RECONCILE_MS,
        });
        const forTwenty = counter.statements.length;
        expect(forTwenty).toBe(5);
        expect(states.size).toBe(20);

        const s1 = states.get(p1.id)!;
        expect(s1.policySource).toBe("proxy");
        expect(s1.policy.maxReplicas).toBe(7);
        expect(Object.isFrozen(s1.policy.behavior.scaleUp)).toBe(true);
        expect(s1.proxy.currentReplicas).toBe(3);
        expect(s1.state.currentReplicas).toBe(3);
        expect(s1.state.unhealthyReplicas).toBe(0);
        expect(s1.state.samples).toEqual([sample(now - 10_000, 40, "a"), sample(now - 5_000, 60, "b")]);
        expect(s1.state.recentEvents).toEqual([
          { at: scaled.createdAt.getTime(), fromReplicas: 2, toReplicas: 3 },
        ]);
        expect(s1.state.recommendations).toEqual([{ at: now - 100_000, replicas: 3 }]);
        expect(s1.state).toMatchObject({
          lastSampleAt: now - 5_000,
          createdAt: p1.createdAt.getTime(),
          activeEvent: null,
          reconcileIntervalMs: RECONCILE_MS,
        });
        expect(s1.activeEvent).toBeNull();
        expect(states.get(p2.id)).toMatchObject({ policySource: "environment", policy: { maxReplicas: 5 } });
        expect(states.get(p2.id)!.state).toEqual({
          currentReplicas: 3,
          unhealthyReplicas: 0,
          samples: [],
          recentEvents: [],
          recommendations: [],
          caps: { tierMaxReplicas: TIER_LIMITS.free.maxReplicasPerProxy },
          lastSampleAt: null,
          createdAt: p2.createdAt.getTime(),
          activeEvent: null,
          reconcileIntervalMs: RECONCILE_MS,
        });
        expect(states.get(p3.id)!.policySource).toBe("default");
        expect(states.get(rest[0]!.id)!.state.samples).toEqual([sample(now, 10)]);

        counter.reset();
        await loadObservedStates(db(), {
          proxyIds: [p1.id],
          now,
          historySeconds: 600,
          reconcileIntervalMs: RECONCILE_MS,
        });
        expect(counter.statements).toHaveLength(forTwenty);
        counter.reset();
        await latestSamples(db(), { proxyIds: ids });
        expect(counter.statements).toHaveLength(1);
      });
    });

    describe("observed state: what fallback and the in-flight limit read", () => {
      it("carries the newest sample time of any age, the creation time and the event in flight, in the same five statements", async () => {
        const now = Date.now();
        const stale = await newProxy(db(), 2);
        const pending = await newProxy(db(), 1);
        const running = await newProxy(db(), 4);
        await insertSamples(db(), [
          { proxyId: stale.id, sample: sample(now - 3 * HOUR, 50, "old"), loadScore: 50 },
          { proxyId: stale.id, sample: sample(now - 2 * HOUR, 50, "older-but-newest"), loadScore: 50 },
          { proxyId: pending.id, sample: sample(now - 1_000, 50), loadScore: 50 },
        ]);
        const queued = await createScalingEvent(db(), {
          proxyId: pending.id,
          newReplicas: 2,
          triggeredBy: "manual",
          reason: "r",
        });
        const started = await createScalingEvent(db(), {
          proxyId: running.id,
          newReplicas: 3,
          triggeredBy: "auto",
          reason: "r",
        });
        await startScalingEventAudited(db(), { eventId: started.id, actorId: ACTOR });

        counter.reset();
        const states = await loadObservedStates(db(), {
          proxyIds: [stale.id, pending.id, running.id],
          now,
          historySeconds: 600,
          reconcileIntervalMs: 15_000,
        });
        expect(counter.statements).toHaveLength(5);

        const s = states.get(stale.id)!;
        expect(s.state.samples).toEqual([]);
        expect(s.state.lastSampleAt).toBe(now - 2 * HOUR);
        expect(s.state.createdAt).toBe(stale.createdAt.getTime());
        expect(s.state.reconcileIntervalMs).toBe(15_000);

        const p = states.get(pending.id)!;
        expect(p.state.lastSampleAt).toBe(now - 1_000);
        expect(p.state.activeEvent).toEqual({
          id: queued.id,
          status: "pending",
          fromReplicas: 1,
          toReplicas: 2,
        });
        expect(p.activeEvent).toEqual({
          id: queued.id,
          proxyId: pending.id,
          status: "pending",
          previousReplicas: 1,
          newReplicas: 2,
        });
        // The event in flight counts for cooldowns too.
        expect(p.state.recentEvents).toEqual([
          { at: queued.createdAt.getTime(), fromReplicas: 1, toReplicas: 2 },
        ]);

        const r = states.get(running.id)!;
        expect(r.state.lastSampleAt).toBeNull();
        expect(r.state.activeEvent).toEqual({
          id: started.id,
          status: "in_progress",
          fromReplicas: 4,
          toReplicas: 3,
        });
        expect(r.activeEvent).toMatchObject({ id: started.id, status: "in_progress" });

        await completeScalingEvent(db(), { eventId: started.id, status: "completed", observedReplicas: 3 });
        const after = await loadObservedStates(db(), {
          proxyIds: [running.id],
          now,
          historySeconds: 600,
          reconcileIntervalMs: 15_000,
        });
        expect(after.get(running.id)!.state.activeEvent).toBeNull();
        expect(after.get(running.id)!.activeEvent).toBeNull();
      });

      it("refuses a reconcile interval that is not positive", async () => {
        const proxy = await newProxy(db(), 1);
        await expect(
          loadObservedStates(db(), {
            proxyIds: [proxy.id],
            now: Date.now(),
            historySeconds: 60,
            reconcileIntervalMs: 0,
          }),
        ).rejects.toThrow(new InvalidInputError("reconcileIntervalMs: must be positive"));
      });
    });

    describe("observed state caps", () => {
      it("caps each proxy by its owner's tier, whoever loads it", async () => {
        const ownerId = unique("owner");
        const byTier = new Map<Tier, string>();
        for (const ownerTier of TIERS) {
          const proxy = await createProxy(db(), {
            ownerId,
            ownerTier,
            name: unique(ownerTier),
            actorId: ownerId,
          });
          byTier.set(ownerTier, proxy.id);
        }
        const states = await loadObservedStates(db(), {
          proxyIds: [...byTier.values()],
          now: Date.now(),
          historySeconds: 60,
          reconcileIntervalMs: RECONCILE_MS,
        });
        for (const [tier, proxyId] of byTier) {
          expect(states.get(proxyId)!.state.caps, tier).toEqual({
            tierMaxReplicas: TIER_LIMITS[tier].maxReplicasPerProxy,
          });
        }
      });
    });

    describe("leases", () => {
      it("grant a free lease once, renew it for its holder, and pass it on when it expires or is released", async () => {
        const name = unique("lease");
        const other = unique("lease");
        expect(
          await acquireLeases(db(), { names: [name, other], holder: "server-a", ttlMs: 60_000 }),
        ).toEqual([name, other].sort());
        expect(await acquireLeases(db(), { names: [name], holder: "server-b", ttlMs: 60_000 })).toEqual([]);
        expect(await acquireLeases(db(), { names: [name], holder: "server-a", ttlMs: 60_000 })).toEqual([
          name,
        ]);
        expect(await releaseLeases(db(), { names: [name, other], holder: "server-b" })).toBe(0);
        expect(await releaseLeases(db(), { names: [name], holder: "server-a" })).toBe(1);
        expect(await acquireLeases(db(), { names: [name], holder: "server-b", ttlMs: 60_000 })).toEqual([
          name,
        ]);
        // A lease that has run out is free for the next holder.
        await db().execute(
          sql`update leases set expires_at = acquired_at + interval '1 millisecond' where name = ${other}`,
        );
        expect(await acquireLeases(db(), { names: [other], holder: "server-b", ttlMs: 60_000 })).toEqual([
          other,
        ]);
        await expect(acquireLeases(db(), { names: [name], holder: "x", ttlMs: 0 })).rejects.toBeInstanceOf(
          InvalidInputError,
        );
      });
    });

    describe("summary", () => {
      it("computes counts, load, replicas, duration and trend exactly, the same from raw samples and rollups", async () => {
        await inFreshSchema(database(), async (tx) => {
          const proxy = await newProxy(tx, 2);
          const other = await newProxy(tx, 1);
          const now = Date.now() + 60_000;
          // Ten hourly samples, load 20, 23, … 47 (slope 3/h); replicas 2 for the first five, 4 after.
          await insertSamples(tx, [
            ...Array.from({ length: 10 }, (_, i) => ({
              proxyId: proxy.id,
              sample: sample(now - 10 * HOUR + i * HOUR - 30 * 60_000, 20 + 3 * i),
              loadScore: 20 + 3 * i,
              replicas: i < 5 ? 2 : 4,
            })),
            { proxyId: proxy.id, sample: sample(now - 25 * HOUR, 100), loadScore: 100, replicas: 9 },
            { proxyId: other.id, sample: sample(now - HOUR, 100), loadScore: 100 },
          ]);
          const up = await createScalingEvent(tx, {
            proxyId: proxy.id,
            newReplicas: 4,
            triggeredBy: "auto",
            reason: "r",
          });
          await startScalingEventAudited(tx, { eventId: up.id, actorId: ACTOR });
          const completed = await completeScalingEvent(tx, {
            eventId: up.id,
            status: "completed",
            observedReplicas: 4,
          });
          const down = await createScalingEvent(tx, {
            proxyId: proxy.id,
            newReplicas: 3,
            triggeredBy: "auto",
            reason: "r",
          });
          await completeScalingEvent(tx, { eventId: down.id, status: "failed", error: "boom" });
          await createScalingEvent(tx, {
            proxyId: proxy.id,
            newReplicas: 5,
            triggeredBy: "manual",
            reason: "r",
          });
          await createScalingEvent(tx, {
            proxyId: other.id,
            newReplicas: 2,
            triggeredBy: "auto",
            reason: "r",
          });

          const raw = await getScalingSummary(tx, { proxyId: proxy.id, now });
          expect(raw).toMatchObject({
            proxyId: proxy.id,
            hoursBack: 24,
            events: {
              total: 3,
              byType: { scale_up: 2, scale_down: 1 },
              byStatus: { pending: 1, in_progress: 0, completed: 1, failed: 1, cancelled: 0 },
            },
            loadScore: { avg: 33.5, max: 47 },
            replicas: { avg: 3, max: 4 },
            avgScalingDurationMs: completed.durationMs,
            samples: 10,
          });
          expect(raw.trend.direction).toBe("rising");
          expect(raw.trend.slopePerHour).toBeCloseTo(3, 9);
          expect(raw.from).toEqual(new Date(now - 24 * HOUR));

          await rollupMetrics(tx, { now: Date.now() });
          const rolled = await getScalingSummary(tx, { proxyId: proxy.id, now });
          expect(rolled.samples).toBe(10);
          expect(rolled.loadScore.avg).toBeCloseTo(33.5, 9);
          expect(rolled.loadScore.max).toBe(47);
          expect(rolled.replicas).toEqual({ avg: 3, max: 4 });
          expect(rolled.trend.slopePerHour).toBeCloseTo(3, 9);

          const lastHours = await getScalingSummary(tx, { proxyId: proxy.id, now, hoursBack: 2 });
          expect(lastHours).toMatchObject({ samples: 1, loadScore: { avg: 47, max: 47 } });
          expect(lastHours.trend).toEqual({ slopePerHour: null, direction: "steady" });
        });
      });

      it("reads a falling trend, a steady one, and an empty window", async () => {
        const falling = await newProxy(db(), 1);
        const steady = await newProxy(db(), 1);
        const empty = await newProxy(db(), 1);
        const now = Date.now();
        await insertSamples(db(), [
          ...[90, 70, 50, 30].map((v, i) => ({
            proxyId: falling.id,
            sample: sample(now - (4 - i) * HOUR, v),
            loadScore: v,
          })),
          ...[50, 51, 50, 51].map((v, i) => ({
            proxyId: steady.id,
            sample: sample(now - (4 - i) * HOUR, v),
            loadScore: v,
          })),
        ]);
        const down = await getScalingSummary(db(), { proxyId: falling.id, now });
        expect(down.trend.direction).toBe("falling");
        expect(down.trend.slopePerHour).toBeCloseTo(-20, 9);
        expect((await getScalingSummary(db(), { proxyId: steady.id, now })).trend.direction).toBe("steady");
        expect(await getScalingSummary(db(), { proxyId: empty.id, now })).toMatchObject({
          samples: 0,
          loadScore: { avg: null, max: null },
          replicas: { avg: null, max: null },
          avgScalingDurationMs: null,
          events: { total: 0 },
          trend: { slopePerHour: null, direction: "steady" },
        });
        await expect(
          getScalingSummary(db(), { proxyId: empty.id, now, hoursBack: 0 }),
        ).rejects.toBeInstanceOf(InvalidInputError);
      });
    });
  },
  { logger: counter },
);
