import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "../src/data-dir-lock.ts";
import {
  createProxy,
  DatabaseUnavailableError,
  DataDirectoryInUseError,
  getProxy,
  isDatabaseUnavailable,
  loadObservedStates,
  openDatabase,
} from "../src/index.ts";
import { disposeDatabase, drivers, POSTGRES_URL, postgresAvailable, randomSchemaName } from "./drivers.ts";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const fixture = join(packageDir, "test/fixtures/open-data-dir.ts");
/** Node itself with tsx's loader (not the tsx CLI, which forks): the child's pid is the one that locks. */
const childArgs = (...args: string[]) => ["--import", "tsx", fixture, ...args];

function openInAnotherProcess(dataDir: string) {
  const result = spawnSync(process.execPath, childArgs(dataDir), {
    cwd: packageDir,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A second process that opens the directory and holds it; resolves once it has. */
function holdInAnotherProcess(dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, childArgs(dataDir, "--hold"), {
    cwd: packageDir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      if (output.includes("opened")) resolve(child);
    });
    child.stderr!.on("data", (chunk) => {
      output += chunk;
    });
    child.on("exit", (code) => reject(new Error(`holder exited ${code}: ${output}`)));
  });
}

function lockOwnerPid(dataDir: string): number {
  return (JSON.parse(readFileSync(join(dataDir, LOCK_FILE), "utf8")) as { pid: number }).pid;
}

describe("PGlite data directory", () => {
  const root = mkdtempSync(join(tmpdir(), "proxyscale-datadir-"));
  const dataDir = join(root, "data");
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("persists in PROXYSCALE_DATA_DIR across opens", async () => {
    const previous = process.env.PROXYSCALE_DATA_DIR;
    process.env.PROXYSCALE_DATA_DIR = dataDir;
    try {
      const first = await openDatabase({ driver: "pglite" });
      expect(first.dataDir).toBe(dataDir);
      const proxy = await createProxy(first.db, { ownerId: "o", name: "kept", actorId: "o" });
      await first.close();
      expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
      const second = await openDatabase({ driver: "pglite" });
      expect((await getProxy(second.db, { id: proxy.id }))?.name).toBe("kept");
      await second.close();
    } finally {
      if (previous === undefined) delete process.env.PROXYSCALE_DATA_DIR;
      else process.env.PROXYSCALE_DATA_DIR = previous;
    }
  });

  it("refuses a second process with a clear error naming the owner, and admits it once closed", async () => {
    const database = await openDatabase({ driver: "pglite", dataDir });
    try {
      const refused = openInAnotherProcess(dataDir);
      expect(refused.status).toBe(3);
      expect(refused.stderr).toContain("DatabaseUnavailableError");
      expect(refused.stderr).toContain(`in use by process ${process.pid}`);
      expect(refused.stderr).toContain("PROXYSCALE_DATA_DIR");
    } finally {
      await database.close();
    }
    const admitted = openInAnotherProcess(dataDir);
    expect(admitted.stderr).toBe("");
    expect(admitted).toMatchObject({ status: 0, stdout: "opened\n" });
  });

  it("refuses this process opening the same directory twice", async () => {
    const database = await openDatabase({ driver: "pglite", dataDir });
    try {
      await expect(openDatabase({ driver: "pglite", dataDir })).rejects.toBeInstanceOf(
        DataDirectoryInUseError,
      );
    } finally {
      await database.close();
    }
  });

  it("takes over the lock of a killed process", async () => {
    const holder = await holdInAnotherProcess(dataDir);
    expect(lockOwnerPid(dataDir)).toBe(holder.pid);
    await expect(openDatabase({ driver: "pglite", dataDir })).rejects.toThrow(
      `in use by process ${holder.pid}`,
    );
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    holder.kill("SIGKILL");
    await exited;
    // The killed holder could not clean up: its lock file is still there, naming a dead process.
    expect(lockOwnerPid(dataDir)).toBe(holder.pid);
    const database = await openDatabase({ driver: "pglite", dataDir });
    expect(lockOwnerPid(dataDir)).toBe(process.pid);
    await database.close();
  });

  it("treats an unreadable lock file as stale", async () => {
    writeFileSync(join(dataDir, LOCK_FILE), "not json");
    const database = await openDatabase({ driver: "pglite", dataDir });
    expect(lockOwnerPid(dataDir)).toBe(process.pid);
    await database.close();
  });
});

describe("connections", () => {
  it("reports an unreachable PostgreSQL as DatabaseUnavailableError without the password", async () => {
    const error = await openDatabase({ url: "postgres://postgres:hunter2@127.0.0.1:1/test" }).catch((e) => e);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(error.message).toContain("postgres://postgres:***@127.0.0.1:1/test");
    expect(error.message).not.toContain("hunter2");
  });

  it("rejects a pgSchema that is not a plain identifier", async () => {
    await expect(
      openDatabase({ driver: "pglite", dataDir: "memory://", pgSchema: 'x"; drop' }),
    ).rejects.toThrow(/pgSchema/);
  });

  it.skipIf(!postgresAvailable)(
    "answers ping, and reports a closed PostgreSQL database as unavailable",
    async () => {
      const database = await openDatabase({
        driver: "postgres",
        url: POSTGRES_URL,
        migrate: false,
        poolMax: 1,
      });
      await database.ping();
      await database.close();
      const error = await database.ping().catch((e) => e);
      expect(error).toBeInstanceOf(DatabaseUnavailableError);
    },
  );

  it.skipIf(!postgresAvailable)(
    "prepared statements read each pool's own schema on every execution",
    async () => {
      const open = () =>
        openDatabase({ driver: "postgres", url: POSTGRES_URL, pgSchema: randomSchemaName(), poolMax: 1 });
      const [first, second] = await Promise.all([open(), open()]);
      try {
        const ids = await Promise.all(
          [first, second].map(
            async ({ db }, index) =>
              (await createProxy(db, { ownerId: `owner-${index}`, name: "same-name", actorId: "test" })).id,
          ),
        );
        // Past the fifth execution, where PostgreSQL would consider a generic plan without force_custom_plan.
        for (let round = 0; round < 8; round++) {
          for (const [index, { db }] of [first, second].entries()) {
            const states = await loadObservedStates(db, {
              proxyIds: ids,
              now: Date.now(),
              historySeconds: 60,
              reconcileIntervalMs: 10_000,
            });
            expect([...states.keys()]).toEqual([ids[index]]);
            expect(states.get(ids[index]!)?.proxy.ownerId).toBe(`owner-${index}`);
          }
        }
      } finally {
        await Promise.all([first, second].map(disposeDatabase));
      }
    },
  );

  describe.each(drivers)("advisory locks [$name]", (driver) => {
    it.skipIf(!driver.available)("exclude a second holder until released", async () => {
      const schema = randomSchemaName();
      const first = await driver.open({ pgSchema: schema, migrate: false });
      const second =
        driver.name === "postgres" ? await driver.open({ pgSchema: schema, migrate: false }) : first;
      try {
        const key = `reconcile-${schema}`;
        const held = await first.tryAdvisoryLock(key);
        expect(held).not.toBeNull();
        expect(await second.tryAdvisoryLock(key)).toBeNull();
        const other = await second.tryAdvisoryLock(`${key}-other`);
        expect(other).not.toBeNull();
        await held!.release();
        const taken = await second.tryAdvisoryLock(key);
        expect(taken).not.toBeNull();
        await taken!.release();
        await other!.release();
      } finally {
        await first.close();
        if (second !== first) await second.close();
      }
    });
  });
});
