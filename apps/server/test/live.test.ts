import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { Writable } from "node:stream";
import { type AppRouter, createLiveFeed, type LiveChange } from "@proxyscale/api";
import type { Decision } from "@proxyscale/core";
import { type Database, openDatabase, type ProxyRecord, silentLogger } from "@proxyscale/db";
import { createTRPCClient, httpSubscriptionLink } from "@trpc/client";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/logger.ts";
import { startControlNode } from "./control/node.ts";
import {
  type Client,
  client,
  disposeDatabase,
  HIGH_LOAD,
  MID_LOAD,
  POSTGRES_URL,
  postgresAvailable,
  registerProxy,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  testDriverList,
  token,
  unique,
} from "./support.ts";

/** A live.onChange subscription through the UI's link: SSE, the token in connectionParams. */
function subscribe(url: string, bearer: string, input: { proxyId?: string } = {}) {
  const trpc = createTRPCClient<AppRouter>({
    links: [httpSubscriptionLink({ url: `${url}/trpc`, EventSource, connectionParams: { token: bearer } })],
  });
  const received: LiveChange[] = [];
  const errors: Array<{ message: string; data?: { code?: string } }> = [];
  const subscription = trpc.live.onChange.subscribe(input, {
    onData: (change) => received.push(change as LiveChange),
    onError: (error) => errors.push(error as (typeof errors)[number]),
  });
  return { received, errors, close: () => subscription.unsubscribe() };
}

const decisionsOf = (received: LiveChange[], proxyId: string) =>
  received.filter((change) => change.kind === "decision" && change.proxyId === proxyId);

async function evaluate(api: Client, proxyId: string) {
  const response = await api.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`, { body: {} });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as { decisionId: string; explanation: string };
}

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`live.onChange over SSE [${driver.name}]`, () => {
    let database: Database;
    let server: TestServer;
    const logLines: string[] = [];
    const closers: Array<() => void> = [];

    beforeAll(async () => {
      database = await driver.open({ poolMax: 8 });
      const destination = new Writable({
        write(chunk, _encoding, done) {
          logLines.push(String(chunk));
          done();
        },
      });
      server = await startTestServer(database, { logger: createLogger("debug", destination) });
    });
    afterAll(async () => {
      for (const close of closers) close();
      await server?.close();
      if (database) await disposeDatabase(database);
    });

    /** Subscribes and waits until the server holds the subscription, so no change is missed. */
    async function open(bearer: string, input: { proxyId?: string } = {}) {
      const before = server.server.live.subscriberCount();
      const live = subscribe(server.url, bearer, input);
      closers.push(live.close);
      await vi.waitFor(() => expect(server.server.live.subscriberCount()).toBe(before + 1));
      return live;
    }

    it("delivers a stored decision, a scaling event's transitions and a sample, with ISO timestamps", async () => {
      const bearer = await token({ role: "operator" });
      const api = client(server.url, bearer);
      const proxyId = await registerProxy(api);
      const live = await open(bearer, { proxyId });

      const pushed = await api.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, { body: MID_LOAD });
      expect(pushed.status).toBe(201);
      const evaluation = await evaluate(api, proxyId);
      const executed = await api.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
        body: { newReplicaCount: 3 },
      });
      expect(executed.status).toBe(202);
      const completed = await api.request("POST", "/api/proxy/scaling/complete", {
        body: { eventId: executed.body.id, status: "completed", observedReplicas: 3 },
      });
      expect(completed.status).toBe(200);

      await vi.waitFor(() => expect(live.received).toHaveLength(4));
      const [sample, decision, pending, done] = live.received;
      expect(sample).toEqual({
        kind: "sample",
        proxyId,
        loadScore: expect.any(Number),
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      });
      expect(decision).toMatchObject({
        kind: "decision",
        proxyId,
        decisionId: evaluation.decisionId,
        triggeredBy: "manual",
        evaluatedAt: expect.stringMatching(/Z$/),
        decision: { explanation: evaluation.explanation },
      });
      expect(pending).toMatchObject({
        kind: "event",
        proxyId,
        event: { id: executed.body.id, status: "pending", createdAt: expect.stringMatching(/Z$/) },
      });
      expect(done).toMatchObject({ kind: "event", event: { id: executed.body.id, status: "completed" } });
    });

    it("gives a non-admin only its own proxies' changes, and an admin everyone's", async () => {
      const [aliceSub, bobSub] = [unique("alice"), unique("bob")];
      const aliceApi = client(server.url, await token({ sub: aliceSub }));
      const bobApi = client(server.url, await token({ sub: bobSub }));
      const aliceProxy = await registerProxy(aliceApi);
      const bobProxy = await registerProxy(bobApi);
      const alice = await open(await token({ role: "viewer", sub: aliceSub }));
      const bob = await open(await token({ role: "viewer", sub: bobSub }));
      const admin = await open(await token({ role: "admin" }));

      const aliceDecision = await evaluate(aliceApi, aliceProxy);
      const bobDecision = await evaluate(bobApi, bobProxy);

      // One feed delivers in order: once bob has his own (later) decision, alice's has passed him by.
      await vi.waitFor(() => expect(decisionsOf(bob.received, bobProxy)).toHaveLength(1));
      await vi.waitFor(() => expect(decisionsOf(alice.received, aliceProxy)).toHaveLength(1));
      await vi.waitFor(() => expect(decisionsOf(admin.received, bobProxy)).toHaveLength(1));
      expect(bob.received.every((change) => change.proxyId === bobProxy)).toBe(true);
      expect(alice.received.every((change) => change.proxyId === aliceProxy)).toBe(true);
      expect(admin.received.map((change) => change.kind === "decision" && change.decisionId)).toEqual(
        expect.arrayContaining([aliceDecision.decisionId, bobDecision.decisionId]),
      );
    });

    it("refuses another owner's proxy (404), a missing token (401), and a bad proxy id (400)", async () => {
      const owner = await token();
      const proxyId = await registerProxy(client(server.url, owner));
      const stranger = subscribe(server.url, await token({ role: "viewer" }), { proxyId });
      const anonymous = subscribe(server.url, "", {});
      const malformed = subscribe(server.url, owner, { proxyId: "not-a-uuid" });
      closers.push(stranger.close, anonymous.close, malformed.close);
      await vi.waitFor(() => {
        expect(stranger.errors[0]?.data?.code).toBe("NOT_FOUND");
        expect(anonymous.errors[0]?.data?.code).toBe("UNAUTHORIZED");
        expect(malformed.errors[0]?.data?.code).toBe("BAD_REQUEST");
      });
      expect(malformed.errors[0]?.message).toContain("proxyId");
    });

    it("never writes the subscription's token (a query parameter) to the log or a metrics label", async () => {
      const bearer = await token({ role: "viewer" });
      const live = await open(bearer);
      live.close();
      await vi.waitFor(() =>
        expect(logLines.some((line) => line.includes('"route":"/trpc/live.onChange"'))).toBe(true),
      );
      const metrics = await (
        await fetch(`${server.url}/metrics`, {
          headers: { authorization: `Bearer ${await token({ role: "admin" })}` },
        })
      ).text();
      expect(metrics).toContain('route="/trpc/live.onChange"');
      for (const text of [...logLines, metrics]) {
        expect(text).not.toContain(bearer);
        expect(text).not.toContain("connectionParams");
      }
    });
  });
}

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`live.onChange with the control loop [${driver.name}]`, () => {
    it("delivers the loop's own decision on a push, and the scale it starts through to completed", async () => {
      const database = await driver.open({ poolMax: 8 });
      const node = await startControlNode(database, TEST_SECRET, { reconcileIntervalMs: 3_600_000 });
      const bearer = await token({ role: "operator" });
      const api = client(node.url, bearer);
      // No actuator ("none"): the scale completes as soon as the executor applies it.
      const proxyId = await registerProxy(api);
      const admin = client(node.url, await token({ role: "admin" }));
      const policy = await admin.request("POST", `/api/proxy/scaling/policies/${proxyId}`, {
        body: { minReplicas: 1, maxReplicas: 3, scaleUpCooldownSeconds: 0 },
      });
      expect(policy.status, JSON.stringify(policy.body)).toBeLessThan(300);
      const live = subscribe(node.url, bearer, { proxyId });
      try {
        await vi.waitFor(() => expect(node.server.live.subscriberCount()).toBe(1));
        const pushed = await api.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
          body: HIGH_LOAD,
        });
        expect(pushed.status).toBe(201);
        await vi.waitFor(() =>
          expect(live.received).toContainEqual(
            expect.objectContaining({
              kind: "event",
              event: expect.objectContaining({ status: "completed" }),
            }),
          ),
        );
        const decision = live.received.find((change) => change.kind === "decision");
        expect(decision).toMatchObject({ triggeredBy: "auto", decision: { action: "scale_up" } });
        const stored = await api.request("GET", `/api/proxy/scaling/decisions/${proxyId}`);
        expect(stored.body.items[0].id).toBe(decision?.kind === "decision" && decision.decisionId);
      } finally {
        live.close();
        await node.close();
        await disposeDatabase(database);
      }
    });
  });
}

describe("live.onChange ends with the server", () => {
  it("closes open subscriptions on close instead of waiting out the shutdown grace", async () => {
    const database = await openDatabase({ driver: "pglite", dataDir: "memory://" });
    const server = await startTestServer(database, { shutdownGraceMs: 60_000 });
    const live = subscribe(server.url, await token({ role: "viewer" }));
    await vi.waitFor(() => expect(server.server.live.subscriberCount()).toBe(1));
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(server.server.live.subscriberCount()).toBe(0);
    live.close();
    await database.close();
  });
});

describe("live.onChange and a client that stops reading", () => {
  it("holds at most the buffer's changes for it (the stream waits for the socket), keeping the newest", async () => {
    const database = await openDatabase({ driver: "pglite", dataDir: "memory://" });
    const live = createLiveFeed({ db: database.db, logger: silentLogger, bufferSize: 5 });
    const server = await startTestServer(database, { live });
    const bearer = await token({ role: "admin" });
    const query = `input=${encodeURIComponent("{}")}&connectionParams=${encodeURIComponent(JSON.stringify({ token: bearer }))}`;
    let text = "";
    const response = await new Promise<http.IncomingMessage>((resolve) =>
      http.get(`${server.url}/trpc/live.onChange?${query}`, resolve),
    );
    // Not read from here on: the socket's buffers fill, the server's writes wait, the feed's queue holds.
    response.pause();
    response.setEncoding("utf8");
    await vi.waitFor(() => expect(live.subscriberCount()).toBe(1));
    const proxy = { id: randomUUID(), ownerId: "slow" } as ProxyRecord;
    const COUNT = 2_000;
    // 20 KB each: 40 MB in all, far more than socket buffers hold.
    const explanation = "x".repeat(20_000);
    for (let index = 0; index < COUNT; index += 1) {
      live.telemetry.decisionMade?.(proxy, { evaluatedAt: index, explanation } as Decision, {
        id: `d-${index}`,
        triggeredBy: "auto",
      });
      if (index % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    response.on("data", (chunk: string) => {
      text += chunk;
    });
    response.resume();
    await vi.waitFor(() => expect(text).toContain(`"decisionId":"d-${COUNT - 1}"`), { timeout: 10_000 });
    const received = text.match(/"decisionId":"d-\d+"/g) ?? [];
    expect(received.length).toBeLessThan(COUNT / 4);
    response.destroy();
    await server.close();
    await database.close();
  });
});

describe.skipIf(!postgresAvailable)("live.onChange across two servers on one PostgreSQL", () => {
  const schema = `live_${randomBytes(6).toString("hex")}`;
  let databases: Database[] = [];
  let servers: TestServer[] = [];
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    databases = [];
    // One after the other: the first migrates the empty schema.
    for (let index = 0; index < 2; index += 1)
      databases.push(await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 4 }));
    servers = await Promise.all(databases.map((database) => startTestServer(database)));
  });
  afterAll(async () => {
    for (const close of closers) close();
    await Promise.all(servers.map((server) => server.close()));
    if (databases[1]) await databases[1].close();
    if (databases[0]) await disposeDatabase(databases[0]);
  });

  it("delivers a change made on server A to subscribers of server B, owner by owner", async () => {
    const [a, b] = servers as [TestServer, TestServer];
    const ownerToken = await token({ role: "operator" });
    const otherToken = await token({ role: "operator" });
    const ownerApi = client(a.url, ownerToken);
    const proxyId = await registerProxy(ownerApi);
    const otherProxy = await registerProxy(client(a.url, otherToken));
    // Nobody watches yet: A keeps its changes to itself (no NOTIFY per push).
    expect(a.server.live.sharesChanges()).toBe(false);
    const owner = subscribe(b.url, ownerToken);
    const other = subscribe(b.url, otherToken);
    const admin = subscribe(b.url, await token({ role: "admin" }), { proxyId });
    closers.push(owner.close, other.close, admin.close);
    await vi.waitFor(() => expect(b.server.live.subscriberCount()).toBe(3));
    // A sends its changes once it has seen B's watcher lease (it looks every second).
    await vi.waitFor(() => expect(a.server.live.sharesChanges()).toBe(true));

    const pushed = await ownerApi.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
      body: MID_LOAD,
    });
    expect(pushed.status).toBe(201);
    const evaluation = await evaluate(ownerApi, proxyId);
    const executed = await ownerApi.request("POST", `/api/proxy/scaling/execute/${proxyId}`, {
      body: { newReplicaCount: 2 },
    });
    expect(executed.status).toBe(202);
    // Then a change of the other owner's, which must reach `other` only after everything above passed it.
    await evaluate(client(a.url, otherToken), otherProxy);

    await vi.waitFor(() => expect(owner.received).toHaveLength(3));
    expect(owner.received.map((change) => change.kind)).toEqual(["sample", "decision", "event"]);
    expect(owner.received[1]).toMatchObject({
      kind: "decision",
      proxyId,
      decisionId: evaluation.decisionId,
      triggeredBy: "manual",
      decision: { explanation: evaluation.explanation },
    });
    expect(owner.received[2]).toMatchObject({ kind: "event", event: { id: executed.body.id, proxyId } });
    await vi.waitFor(() => expect(admin.received).toHaveLength(3));
    await vi.waitFor(() => expect(decisionsOf(other.received, otherProxy)).toHaveLength(1));
    expect(other.received.every((change) => change.proxyId === otherProxy)).toBe(true);
  });
});
