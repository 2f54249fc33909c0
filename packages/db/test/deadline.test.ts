import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type Database,
  DatabaseTimeoutError,
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  listenControl,
  openDatabase,
  queryRows,
} from "../src/index.ts";
import { type PrivateCluster, startPrivateCluster } from "../src/testing.ts";

/** Short, so the file is quick; the bounds below are generous multiples (correctness, not speed). */
const DEADLINE_MS = 500;

/** Milliseconds `promise` took to settle, and its error (undefined when it resolved). */
async function settle(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const startedAt = performance.now();
  try {
    await promise;
    return { ms: performance.now() - startedAt, error: undefined };
  } catch (error) {
    return { ms: performance.now() - startedAt, error };
  }
}

async function backendPid(database: Database): Promise<number> {
  const [row] = await queryRows<{ pid: number }>(database.db, sql`select pg_backend_pid() as pid`);
  return row!.pid;
}

describe("query deadline on PostgreSQL (private cluster)", () => {
  let cluster: PrivateCluster;
  const opened: Database[] = [];
  const open = async (options: Parameters<typeof openDatabase>[0] = {}) => {
    const database = await openDatabase({
      url: cluster.url,
      queryTimeoutMs: DEADLINE_MS,
      poolMax: 2,
      ...options,
    });
    opened.push(database);
    return database;
  };

  beforeAll(async () => {
    cluster = await startPrivateCluster();
  });
  afterEach(async () => {
    cluster.thaw();
    await Promise.all(opened.splice(0).map((database) => database.close({ timeoutMs: 1_000 })));
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  it("cuts a statement that runs past the deadline (statement_timeout) and reports it unavailable", async () => {
    const database = await open();
    const { ms, error } = await settle(database.db.execute(sql`select pg_sleep(10)`));
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(ms).toBeLessThan(DEADLINE_MS * 4);
    // The connection was kept: PostgreSQL cancelled the statement, nothing was cut.
    expect(await queryRows(database.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
  });

  it("lets maintenance statements run past the query deadline, within their own", async () => {
    const database = await open({ maintenanceTimeoutMs: 5_000 });
    await database.maintenance.execute(sql`select pg_sleep(${(DEADLINE_MS * 2) / 1000})`);
    const { error } = await settle(database.db.execute(sql`select pg_sleep(${(DEADLINE_MS * 2) / 1000})`));
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it("with PostgreSQL frozen, rejects statements, transactions and ping with DatabaseTimeoutError within the deadline, and works once thawed", async () => {
    const database = await open();
    cluster.freeze();
    const [statement, transaction, ping] = await Promise.all([
      settle(database.db.execute(sql`select 1`)),
      settle(
        database.db.transaction(async (tx) => {
          await tx.execute(sql`select 1`);
        }),
      ),
      settle(database.ping({ timeoutMs: DEADLINE_MS / 2 })),
    ]);
    for (const outcome of [statement, transaction]) {
      expect(isDatabaseUnavailable(outcome.error)).toBe(true);
      expect(
        outcome.error instanceof DatabaseTimeoutError ||
          (outcome.error as Error).cause instanceof DatabaseTimeoutError,
      ).toBe(true);
      expect(outcome.ms).toBeLessThan(DEADLINE_MS * 3);
    }
    expect(ping.error).toBeInstanceOf(DatabaseUnavailableError);
    expect(ping.ms).toBeLessThan(DEADLINE_MS * 2);
    cluster.thaw();
    await expect
      .poll(() => settle(database.ping()).then(({ error }) => error), { timeout: 10_000 })
      .toBeUndefined();
    expect(await queryRows(database.db, sql`select 2 as two`)).toEqual([{ two: 2 }]);
  });

  it("destroys a connection that never answers, so the pool reconnects instead of waiting on it", async () => {
    const database = await open({ poolMax: 1 });
    const before = await backendPid(database);
    cluster.freeze();
    await settle(database.db.execute(sql`select 1`));
    // The frozen server cannot close its end: the client's socket is gone once the stall guard cut it. Without
    // that, the same backend would answer the statement once thawed, and keep serving.
    await expect.poll(() => cluster.establishedConnections(), { timeout: 10_000 }).toBe(0);
    cluster.thaw();
    // A just-thawed cluster can take longer than the deadline to start the new backend (seen under CI's load), so
    // the statement is retried until it answers; it must answer from another backend than the frozen one.
    await expect.poll(() => backendPid(database).catch(() => before), { timeout: 10_000 }).not.toBe(before);
  });

  it("closes at once after a connection was lost mid-statement", async () => {
    const database = await open();
    const running = settle(database.db.execute(sql`select pg_sleep(${DEADLINE_MS / 1000 / 2})`));
    const admin = await open();
    await expect
      .poll(async () => {
        const [row] = await queryRows<{ terminated: number }>(
          admin.db,
          sql`select count(pg_terminate_backend(pid))::int as terminated from pg_stat_activity
              where query like 'select pg_sleep%' and pid <> pg_backend_pid()`,
        );
        return row!.terminated;
      })
      .toBe(1);
    expect(isDatabaseUnavailable((await running).error)).toBe(true);
    // postgres.js keeps a lost statement on its connection until that reconnects; end() used to wait for it.
    const { ms } = await settle(database.close({ timeoutMs: 5_000 }));
    expect(ms).toBeLessThan(1_000);
  });

  it("rejects a transaction whose connection is lost mid-statement, and goes on serving (postgres.js patched)", async () => {
    const database = await open();
    const admin = await open();
    let pid: number | undefined;
    const transaction = settle(
      database.db.transaction(async (tx) => {
        pid = (await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`))[0]?.pid;
        await tx.execute(sql`select pg_sleep(${DEADLINE_MS / 1000 / 2})`);
      }),
    );
    await expect.poll(() => pid).toBeDefined();
    await admin.db.execute(sql`select pg_terminate_backend(${pid})`);
    // Unpatched, postgres.js wrote the transaction's ROLLBACK to the lost socket from a timer: a TypeError that
    // no caller could catch ended the process (porsager/postgres#1208).
    expect(isDatabaseUnavailable((await transaction).error)).toBe(true);
    expect(await queryRows(database.db, sql`select 3 as three`)).toEqual([{ three: 3 }]);
  });

  it("spaces out LISTEN's reconnection attempts once its database is dropped", async () => {
    const name = `dropped_${Math.random().toString(36).slice(2, 8)}`;
    const database = await open({ url: await cluster.createDatabase(name) });
    const listener = await listenControl(database, () => {});
    const refusals = () =>
      (cluster.log().match(new RegExp(`database "${name}" does not exist`, "g")) ?? []).length;
    await cluster.dropDatabase(name);
    await expect.poll(refusals, { timeout: 10_000 }).toBeGreaterThan(0);
    const first = refusals();
    const startedAt = performance.now();
    await expect.poll(refusals, { timeout: 10_000 }).toBeGreaterThanOrEqual(first + 5);
    // postgres.js retried at once after each refusal (~70 a second). Spaced out 10, 30, 90, 270, 810 ms (at least
    // half of each, with the jitter), five more attempts take over 600 ms.
    expect(performance.now() - startedAt).toBeGreaterThan(500);
    await listener?.unlisten().catch(() => {});
  });
});
