import type { Decision } from "@proxyscale/core";
import { type Database, openDatabase, type ProxyRecord, silentLogger } from "@proxyscale/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLiveFeed, type LiveChange, packPayloads } from "../src/live-feed.ts";

const PROXY = "11111111-1111-4111-8111-111111111111";
const proxy = { id: PROXY, ownerId: "ada" } as ProxyRecord;
const decision = (evaluatedAt: number) => ({ evaluatedAt }) as Decision;

describe("live feed", () => {
  let database: Database;
  beforeAll(async () => {
    database = await openDatabase({ driver: "pglite", dataDir: "memory://" });
  });
  afterAll(() => database.close());

  it("keeps a slow subscriber's newest changes up to its buffer, dropping the oldest", async () => {
    const feed = createLiveFeed({ db: database.db, logger: silentLogger, bufferSize: 5 });
    const subscription = feed.subscribe({});
    // The first read registers the subscriber; the first change then ends it.
    const first = subscription.next();
    feed.telemetry.decisionMade?.(proxy, decision(0), { id: "d-0", triggeredBy: "auto" });
    expect(((await first).value as LiveChange & { kind: "decision" }).decisionId).toBe("d-0");
    for (let index = 1; index <= 12; index += 1)
      feed.telemetry.decisionMade?.(proxy, decision(index), { id: `d-${index}`, triggeredBy: "auto" });
    await expect.poll(() => feed.subscriberCount()).toBe(1);
    const read: string[] = [];
    const drained = (async () => {
      for await (const change of subscription) {
        if (change.kind === "decision") read.push(change.decisionId);
        if (read.length === 5) break;
      }
    })();
    await drained;
    expect(read).toEqual(["d-8", "d-9", "d-10", "d-11", "d-12"]);
    expect(feed.subscriberCount()).toBe(0);
    await feed.close();
  });

  it("ends every subscription on close", async () => {
    const feed = createLiveFeed({ db: database.db, logger: silentLogger });
    const subscription = feed.subscribe({});
    const next = subscription.next();
    await expect.poll(() => feed.subscriberCount()).toBe(1);
    await feed.close();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(feed.subscriberCount()).toBe(0);
  });

  it("packs notifications into payloads under NOTIFY's 8,000-byte limit, in order", () => {
    const items = Array.from({ length: 500 }, (_, index) => ({ k: "d", id: `${index}`.padStart(36, "0") }));
    const payloads = packPayloads("origin", items);
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8_000);
    expect(payloads.flatMap((payload) => JSON.parse(payload).c)).toEqual(items);
  });
});
