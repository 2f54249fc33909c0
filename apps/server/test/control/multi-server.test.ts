import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  type Database,
  listAudit,
  listLeases,
  listScalingEvents,
  openDatabase,
  proxyShard,
  queryRows,
  readMigrations,
} from "@proxyscale/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SHARD_COUNT } from "../../src/control/shards.ts";
import {
  type Client,
  client,
  disposeDatabase,
  HIGH_LOAD,
  POSTGRES_URL,
  postgresAvailable,
  TEST_SECRET,
  token,
  unique,
} from "../support.ts";
import { FleetReceiver } from "./harness.ts";
import { type ControlNode, startControlNode } from "./node.ts";

const serverDir = fileURLToPath(new URL("../..", import.meta.url));
const LEASE_MS = 2_000;

const openShared = (schema: string) => openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 6 });

async function ownerOf(database: Database, proxyId: string): Promise<string | undefined> {
  const leases = await listLeases(database.db, { prefix: "shard:" });
  return leases.find((lease) => lease.live && lease.name === `shard:${proxyShard(proxyId, SHARD_COUNT)}`)
    ?.holder;
}

async function register(api: Client, receiver: FleetReceiver, policy: Record<string, unknown> = {}) {
  const created = await api.request("POST", "/api/proxies", {
    body: { name: unique("shared"), actuator: receiver.actuator() },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const proxyId = created.body.id as string;
  const stored = await api.request("POST", `/api/proxy/scaling/policies/${proxyId}`, { body: policy });
  expect(stored.status, JSON.stringify(stored.body)).toBeLessThan(300);
  return proxyId;
}

describe.skipIf(!postgresAvailable)("two servers on one PostgreSQL", () => {
  const schema = `control_${randomBytes(6).toString("hex")}`;
  let databases: Database[] = [];
  let nodes: ControlNode[] = [];
  let receiver: FleetReceiver;
  let apis: Client[];

  beforeAll(async () => {
    receiver = await new FleetReceiver().start();
    // Both open (and migrate) an empty schema at the same moment, as servers starting together do.
    databases = await Promise.all([openShared(schema), openShared(schema)]);
    nodes = await Promise.all(
      databases.map((database) =>
        startControlNode(database, TEST_SECRET, { leaseTtlMs: LEASE_MS, reconcileIntervalMs: 60_000 }),
      ),
    );
    const adminToken = await token({ role: "admin", sub: "shared-admin" });
    apis = nodes.map((node) => client(node.url, adminToken));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await receiver?.close();
    if (databases[1]) await databases[1].close();
    if (databases[0]) await disposeDatabase(databases[0]);
  });

  it("migrates once when both start together, then splits the shards so every proxy has exactly one owner", async () => {
    const applied = await queryRows<{ n: number }>(
      databases[0]!.db,
      sql`select count(*)::int as n from __drizzle_migrations`,
    );
    expect(applied[0]!.n).toBe(readMigrations().length);
    // The two servers split the shards.
    const [a, b] = await vi.waitFor(
      () => {
        const [first, second] = nodes.map((node) => node.control.shards.heldShards()) as [number[], number[]];
        expect(
          first.filter((shard) => second.includes(shard)),
          "shards held by both",
        ).toEqual([]);
        expect(first.length).toBeGreaterThan(0);
        expect(second.length).toBeGreaterThan(0);
        expect(first.length + second.length).toBe(SHARD_COUNT);
        return [first, second];
      },
      { timeout: 20_000 },
    );
    expect(Math.abs(a.length - b.length)).toBeLessThanOrEqual(1);
  });

  it("hands a push to the proxy's owner at once when another server receives it", async () => {
    const proxyId = await register(apis[0]!, receiver);
    const owner = await vi.waitFor(
      async () => {
        const holder = await ownerOf(databases[0]!, proxyId);
        if (!holder) throw new Error(`no server owns ${proxyId}'s shard yet`);
        return holder;
      },
      { timeout: 20_000 },
    );
    const ownerIndex = nodes.findIndex((node) => node.control.holder === owner);
    expect(ownerIndex).toBeGreaterThanOrEqual(0);
    const other = apis[1 - ownerIndex]!;
    const pushedAt = Date.now();
    expect(
      (await other.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD })).status,
    ).toBe(201);
    const event = await vi.waitFor(
      async () => {
        const [latest] = (await listScalingEvents(databases[0]!.db, { proxyId })).items;
        expect(latest?.status).toBe("completed");
        return latest!;
      },
      { timeout: 10_000 },
    );
    // The reconcile interval is 60 s: only the hand-off (NOTIFY) explains a scale this soon.
    expect(event.completedAt!.getTime() - pushedAt).toBeLessThan(5_000);
    const audit = await listAudit(databases[0]!.db, { entityId: event.id });
    expect(audit.items.find((entry) => entry.action === "scaling.start")?.actorId).toBe(`control:${owner}`);
    expect(receiver.callsFor(proxyId)).toHaveLength(1);
  });

  it("under concurrent pushes to both servers for the same proxies, every scale happens exactly once", async () => {
    const rounds = 3;
    const proxies = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        register(apis[i % 2]!, receiver, { scaleUpCooldownSeconds: 0, maxReplicas: 8 }),
      ),
    );
    const db = databases[0]!.db;
    for (let round = 0; round < rounds; round++) {
      const pushes = proxies.flatMap((proxyId) =>
        Array.from({ length: 8 }, (_, i) =>
          apis[i % 2]!.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: HIGH_LOAD }),
        ),
      );
      const responses = await Promise.all(pushes);
      expect(responses.every((response) => response.status === 201)).toBe(true);
      // Settled: nothing running on either server, and no event left active.
      await vi.waitFor(
        async () => {
          await Promise.all(nodes.map((node) => node.control.idle()));
          const active = await queryRows<{ n: number }>(
            db,
            sql`select count(*)::int as n from proxy_scaling_events where status in ('pending', 'in_progress')`,
          );
          expect(active[0]!.n, "scales not finished").toBe(0);
        },
        { timeout: 30_000 },
      );
    }

    let scales = 0;
    for (const proxyId of proxies) {
      const events = (await listScalingEvents(db, { proxyId, limit: 100 })).items.reverse();
      const calls = receiver.callsFor(proxyId);
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((event) => event.status === "completed")).toBe(true);
      // One actuator call per event, and no call without its event.
      expect(calls.map((call) => call.eventId).sort()).toEqual(events.map((event) => event.id).sort());
      for (let i = 1; i < events.length; i++) {
        expect(events[i]!.previousReplicas).toBe(events[i - 1]!.newReplicas);
      }
      const row = await apis[0]!.request("GET", `/api/proxies/${proxyId}`);
      expect(row.body.currentReplicas).toBe(events.at(-1)!.newReplicas);
      expect(receiver.replicas.get(proxyId)).toBe(events.at(-1)!.newReplicas);
      scales += events.length;
    }
    // Each round found its proxy idle and past its (zero) cooldown, so it scaled at least once per round.
    expect(scales).toBeGreaterThanOrEqual(proxies.length * rounds);
  });
});

describe.skipIf(!postgresAvailable)("a server killed in the middle of a scale", () => {
  const schema = `control_${randomBytes(6).toString("hex")}`;
  let database: Database | undefined;
  let survivor: ControlNode | undefined;
  let child: ChildProcess | undefined;
  let receiver: FleetReceiver;

  beforeAll(async () => {
    receiver = await new FleetReceiver().start();
    database = await openShared(schema);
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await survivor?.close();
    await receiver?.close();
    if (database) await disposeDatabase(database);
  });

  it("lets the other server recover the event against the actuator, without running it again", async () => {
    // Node itself with tsx's loader (not the tsx CLI, whose node child would outlive a SIGKILL of the CLI).
    child = spawn(process.execPath, ["--import", "tsx", "test/control/child-server.ts"], {
      cwd: serverDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: POSTGRES_URL,
        CONTROL_SCHEMA: schema,
        CONTROL_SECRET: TEST_SECRET,
        CONTROL_LEASE_MS: String(LEASE_MS),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<void>((resolve) => child!.on("exit", () => resolve()));
    const doomed = await vi.waitFor(
      () => {
        const line = stdout.split("\n").find((text) => text.startsWith("{"));
        if (!line) throw new Error(`the child server has not started yet (stderr: ${stderr})`);
        return JSON.parse(line) as { url: string; holder: string };
      },
      { timeout: 60_000 },
    );
    survivor = await startControlNode(database!, TEST_SECRET, {
      leaseTtlMs: LEASE_MS,
      reconcileIntervalMs: 60_000,
    });
    const api = client(doomed.url, await token({ role: "admin", sub: "kill-admin" }));
    await expect
      .poll(() => survivor!.control.shards.heldShards().length, {
        timeout: 20_000,
        message: "the survivor takes its share of the shards",
      })
      .toBeGreaterThanOrEqual(SHARD_COUNT / 2 - 1);

    // Two proxies the doomed server owns: one fleet moves before its slow answer, the other never moves.
    const owned: string[] = [];
    while (owned.length < 2) {
      const proxyId = await register(api, receiver);
      if ((await ownerOf(database!, proxyId)) === doomed.holder) owned.push(proxyId);
    }
    const [moved, stuck] = owned as [string, string];
    for (const proxyId of owned) {
      const patched = await api.request("PATCH", `/api/proxies/${proxyId}`, {
        body: { actuator: receiver.actuator({ statusOf: proxyId }) },
      });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      receiver.replicas.set(proxyId, 1);
    }
    receiver.behaviourOf.set(moved, { delayMs: 30_000, applyBeforeDelay: true });
    receiver.behaviourOf.set(stuck, { delayMs: 30_000 });
    const started = await Promise.all(
      owned.map((proxyId) =>
        api.request("POST", `/api/proxy/scaling/execute/${proxyId}`, { body: { newReplicaCount: 3 } }),
      ),
    );
    expect(started.map((response) => response.status)).toEqual([202, 202]);
    await expect
      .poll(() => owned.map((proxyId) => receiver.callsFor(proxyId).length), { timeout: 10_000 })
      .toEqual([1, 1]);

    child.kill("SIGKILL");
    await exited;
    const db = database!.db;
    // The survivor recovers both events: each ends completed, failed or cancelled.
    const finished = await vi.waitFor(
      async () => {
        const events = await Promise.all(
          owned.map(async (proxyId) => (await listScalingEvents(db, { proxyId })).items[0]),
        );
        for (const event of events) expect(["completed", "failed", "cancelled"]).toContain(event?.status);
        return events;
      },
      { timeout: 30_000 },
    );
    const [movedEvent, stuckEvent] = finished as [
      NonNullable<(typeof finished)[number]>,
      NonNullable<(typeof finished)[number]>,
    ];
    expect(movedEvent).toMatchObject({ id: started[0]!.body.id, status: "completed", error: null });
    expect(stuckEvent).toMatchObject({ id: started[1]!.body.id, status: "failed" });
    expect(stuckEvent.error).toContain("the server running this scale stopped");
    expect(stuckEvent.error).toContain("observes 1 replicas");
    for (const event of [movedEvent, stuckEvent]) {
      const audit = await listAudit(db, { entityId: event.id });
      const recovery = audit.items.find((entry) => entry.action === "scaling.recover");
      expect(recovery?.actorId).toBe(`control:${survivor.control.holder}`);
      expect(audit.items.find((entry) => entry.action === "scaling.start")?.actorId).toBe(
        `control:${doomed.holder}`,
      );
    }
    // Reconciled, never executed again.
    expect(receiver.callsFor(moved)).toHaveLength(1);
    expect(receiver.callsFor(stuck)).toHaveLength(1);
    const rows = await Promise.all(
      owned.map(
        async (proxyId) =>
          (
            await client(survivor!.url, await token({ role: "admin" })).request(
              "GET",
              `/api/proxies/${proxyId}`,
            )
          ).body,
      ),
    );
    expect(rows.map((row) => row.currentReplicas)).toEqual([3, 1]);
  });
});
