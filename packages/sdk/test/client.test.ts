import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import {
  allLatestSamples,
  createProxyScaleClient,
  isProxyScaleError,
  issuesOf,
  type ProxyScaleClient,
  type RouterInputs,
  type RouterOutputs,
  statusOf,
} from "../src/client.ts";
import { MetricsReporter } from "../src/reporter.ts";
import {
  HIGH_LOAD,
  SECRET,
  startPgliteServer,
  startPostgresServer,
  type TestServer,
  token,
  unique,
} from "./support.ts";

const TIMEOUT = 60_000;

/** The rejection of `call`, which must reject. */
async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}

const drivers: Array<{ name: string; start: () => Promise<TestServer | null> }> = [
  { name: "pglite", start: startPgliteServer },
  { name: "postgres", start: startPostgresServer },
];

for (const driver of drivers) {
  describe(`createProxyScaleClient against a real server [${driver.name}]`, () => {
    let server: TestServer | null = null;
    let admin: ProxyScaleClient;
    let operator: ProxyScaleClient;

    beforeAll(async () => {
      server = await driver.start();
      if (!server) return;
      admin = createProxyScaleClient({
        url: server.url,
        token: await token({ role: "admin", sub: unique("admin") }),
      });
      operator = createProxyScaleClient({ url: server.url, token: await token({ role: "operator" }) });
    }, TIMEOUT);
    afterAll(async () => {
      await server?.close();
    }, TIMEOUT);

    it(
      "allLatestSamples follows metrics.latest's pages to every instance",
      async (context) => {
        if (!server) return context.skip();
        const proxy = await operator.proxies.register.mutate({ name: unique("pods") });
        const samples = Array.from({ length: 120 }, (_, i) => ({ ...HIGH_LOAD, instanceId: `pod-${i}` }));
        await operator.metrics.recordBatch.mutate({ proxyId: proxy.id, samples: [HIGH_LOAD, ...samples] });
        const first = await operator.metrics.latest.query({ proxyId: proxy.id });
        expect(first.samples).toHaveLength(50);
        expect(first.nextCursor).not.toBeNull();
        const all = await allLatestSamples(operator, proxy.id, { pageSize: 50 });
        expect(all).toHaveLength(121);
        expect(new Set(all.map((sample) => sample.instanceId ?? "")).size).toBe(121);
      },
      TIMEOUT,
    );

    it(
      "round-trips typed calls: register, policy, metrics, evaluate, execute, events, summary, delete",
      async (context) => {
        if (!server) return context.skip();
        const proxy = await operator.proxies.register.mutate({ name: unique("edge"), region: "eu-west-1" });
        expectTypeOf(proxy.createdAt).toEqualTypeOf<string>();
        expect(proxy).toMatchObject({ region: "eu-west-1", environment: "production", currentReplicas: 1 });
        expect(Number.isNaN(Date.parse(proxy.createdAt))).toBe(false);

        const listed = await operator.proxies.list.query({});
        expect(listed.items.map((item) => item.id)).toContain(proxy.id);

        // dryRun keeps the server's control loop from scaling (it only records), so the manual evaluate and
        // execute below see 1 replica, and the preview still says what it would do.
        const stored = await admin.policies.upsert.mutate({
          proxyId: proxy.id,
          mode: "dryRun",
          minReplicas: 1,
          maxReplicas: 6,
          scaleUpThreshold: 70,
        });
        expect(stored).toMatchObject({ created: true, source: "proxy", policy: { maxReplicas: 6 } });
        const effective = await operator.policies.get.query({ proxyId: proxy.id });
        expect(effective).toMatchObject({
          source: "proxy",
          policy: { scaleUpThreshold: 70, mode: "dryRun" },
        });

        const recorded = await operator.metrics.record.mutate({ proxyId: proxy.id, ...HIGH_LOAD });
        expect(recorded.loadScore).toBeGreaterThan(70);
        const batch = await operator.metrics.recordBatch.mutate({
          proxyId: proxy.id,
          samples: [
            { ...HIGH_LOAD, instanceId: "a" },
            { ...HIGH_LOAD, instanceId: "b" },
          ],
        });
        expect(batch).toMatchObject({ recorded: 2 });
        expect(batch.loadScores).toHaveLength(2);

        const decision = await operator.scaling.evaluate.mutate({ proxyId: proxy.id });
        expectTypeOf(decision.action).toEqualTypeOf<"scale_up" | "scale_down" | "none">();
        expect(decision).toMatchObject({ action: "scale_up", currentReplicas: 1, proxyId: proxy.id });
        expect(decision.desiredReplicas).toBeGreaterThan(1);
        expect(decision.explanation).toMatch(/scale up 1 → \d/);

        const event = await operator.scaling.execute.mutate({
          proxyId: proxy.id,
          newReplicaCount: 3,
          reason: "sdk test",
        });
        expect(event).toMatchObject({
          eventType: "scale_up",
          previousReplicas: 1,
          newReplicas: 3,
          status: "pending",
        });
        const events = await operator.scaling.events.query({ proxyId: proxy.id });
        expect(events.items.map((item) => item.id)).toEqual([event.id]);

        const summary = await operator.scaling.summary.query({ proxyId: proxy.id, hoursBack: 1 });
        expect(summary).toMatchObject({ proxyId: proxy.id, hoursBack: 1, samples: 3, events: { total: 1 } });

        await expect(operator.proxies.delete.mutate({ proxyId: proxy.id })).resolves.toEqual({
          proxyId: proxy.id,
          deleted: true,
        });
        const gone = await failure(operator.proxies.get.query({ proxyId: proxy.id }));
        expect(statusOf(gone)).toBe(404);
      },
      TIMEOUT,
    );

    it(
      "surfaces the server's message and zod issues for invalid input",
      async (context) => {
        if (!server) return context.skip();
        const proxy = await operator.proxies.register.mutate({ name: unique("edge") });
        const error = await failure(
          operator.metrics.record.mutate({
            proxyId: proxy.id,
            ...HIGH_LOAD,
            cpuPercent: 150,
            errorRatePercent: -1,
          }),
        );
        expect(isProxyScaleError(error)).toBe(true);
        expect(statusOf(error)).toBe(400);
        expect(issuesOf(error)).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ field: "cpuPercent", message: "must be a percent: at most 100" }),
            expect.objectContaining({ field: "errorRatePercent", message: "must not be negative" }),
          ]),
        );
        expect((error as Error).message).toContain("cpuPercent: must be a percent: at most 100");

        const wrongType = await failure(
          // @ts-expect-error newReplicaCount is a number: the inferred input type refuses a string
          operator.scaling.execute.mutate({ proxyId: proxy.id, newReplicaCount: "3" }),
        );
        expect(issuesOf(wrongType).map((issue) => issue.field)).toEqual(["newReplicaCount"]);

        const outOfPolicy = await failure(
          operator.scaling.execute.mutate({ proxyId: proxy.id, newReplicaCount: 99 }),
        );
        expect(statusOf(outOfPolicy)).toBe(400);
        expect(issuesOf(outOfPolicy)[0]).toMatchObject({ field: "newReplicaCount" });
      },
      TIMEOUT,
    );

    it(
      "surfaces auth failures: forged, expired and missing-role tokens",
      async (context) => {
        if (!server) return context.skip();
        const forged = createProxyScaleClient({
          url: server.url,
          token: await token({ secret: `${SECRET}-not-the-servers` }),
        });
        const forgedError = await failure(forged.proxies.list.query({}));
        expect(statusOf(forgedError)).toBe(401);
        expect((forgedError as Error).message).toBe("token signature is invalid");

        const expired = createProxyScaleClient({
          url: server.url,
          token: await token({ issuedAt: Date.now() - 2 * 3_600_000 }),
        });
        const expiredError = await failure(expired.proxies.list.query({}));
        expect(statusOf(expiredError)).toBe(401);
        expect((expiredError as Error).message).toBe("token has expired");

        const viewer = createProxyScaleClient({ url: server.url, token: await token({ role: "viewer" }) });
        const forbidden = await failure(viewer.proxies.register.mutate({ name: unique("edge") }));
        expect(statusOf(forbidden)).toBe(403);
        expect((forbidden as Error).message).toBe(
          "requires role operator or above; your token has role viewer",
        );
        expect(issuesOf(forbidden)).toEqual([]);
      },
      TIMEOUT,
    );

    it(
      "reads a token function before each request and batches same-tick calls into one fetch",
      async (context) => {
        if (!server) return context.skip();
        let current = await token({ role: "operator" });
        const requests: string[] = [];
        const client = createProxyScaleClient({
          url: `${server.url}/`,
          token: () => current,
          fetch: (input, init) => {
            requests.push(String(input instanceof Request ? input.url : input));
            return fetch(input, init);
          },
        });
        const [first, second] = await Promise.all([
          client.proxies.register.mutate({ name: unique("edge") }),
          client.proxies.register.mutate({ name: unique("edge") }),
        ]);
        expect(first.ownerId).toBe(second.ownerId);
        expect(requests).toHaveLength(1);
        expect(requests[0]).toContain("/trpc/proxies.register,proxies.register");

        current = "not-a-jwt";
        const rotated = await failure(client.proxies.list.query({}));
        expect(statusOf(rotated)).toBe(401);
        expect((rotated as Error).message).toBe("token is not a JWT");
      },
      TIMEOUT,
    );

    it(
      "takes the MetricsReporter's batches at the batch endpoint, one POST per flush",
      async (context) => {
        if (!server) return context.skip();
        const ownerToken = await token({ role: "operator" });
        const owner = createProxyScaleClient({ url: server.url, token: ownerToken });
        const proxy = await owner.proxies.register.mutate({ name: unique("edge") });
        const reporter = new MetricsReporter({
          http: { url: server.url, token: ownerToken, proxyId: proxy.id },
          instanceId: "replica-1",
          sampleIntervalMs: 60_000,
        });
        for (let i = 0; i < 3; i++) {
          reporter.recordRequest(25, true);
          reporter.sampleNow();
        }
        await reporter.flush();
        expect(reporter.stats()).toMatchObject({ samplesSent: 3, pushes: 1, failedPushes: 0, buffered: 0 });
        const latest = await owner.metrics.latest.query({ proxyId: proxy.id });
        expect(latest.samples.map((sample) => sample.instanceId)).toEqual(["replica-1"]);
        const summary = await owner.scaling.summary.query({ proxyId: proxy.id });
        expect(summary.samples).toBe(3);
      },
      TIMEOUT,
    );

    it(
      "delivers gzip-compressed batches when the reporter's http.gzip is set",
      async (context) => {
        if (!server) return context.skip();
        const ownerToken = await token({ role: "operator" });
        const owner = createProxyScaleClient({ url: server.url, token: ownerToken });
        const proxy = await owner.proxies.register.mutate({ name: unique("gzip") });
        const reporter = new MetricsReporter({
          http: { url: server.url, token: ownerToken, proxyId: proxy.id, gzip: true },
          sampleIntervalMs: 60_000,
        });
        for (let i = 0; i < 200; i++) reporter.sampleNow();
        await reporter.flush();
        expect(reporter.stats()).toMatchObject({ samplesSent: 200, failedPushes: 0, buffered: 0 });
        expect((await owner.scaling.summary.query({ proxyId: proxy.id })).samples).toBe(200);
      },
      TIMEOUT,
    );
  });
}

describe("inferred types", () => {
  it("come from the router: inputs and outputs of every procedure", () => {
    expectTypeOf<RouterInputs["scaling"]["execute"]>().toHaveProperty("newReplicaCount");
    expectTypeOf<RouterInputs["scaling"]["execute"]["newReplicaCount"]>().toEqualTypeOf<number>();
    expectTypeOf<RouterOutputs["scaling"]["evaluate"]["explanation"]>().toEqualTypeOf<string>();
    expectTypeOf<RouterOutputs["policies"]["get"]["source"]>().not.toEqualTypeOf<unknown>();
    // A runtime witness too, so this test can fail: the client exposes the router's procedures.
    const client = createProxyScaleClient({ url: "http://127.0.0.1:1", token: "t" });
    expect(typeof client.scaling.evaluate.mutate).toBe("function");
    expect(typeof client.proxies.list.query).toBe("function");
  });
});
