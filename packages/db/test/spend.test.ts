import { parsePolicy } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { createProxy, loadObservedStates, loadReplicaHoursThisMonth, upsertPolicy } from "../src/index.ts";
import { forEachDriver, unique } from "./drivers.ts";

const at = (iso: string) => Date.parse(iso);

forEachDriver("replica-hours this month", ({ database }) => {
  async function proxyWithScales(
    createdAt: string,
    currentReplicas: number,
    scales: Array<{ completedAt: string | null; from: number; to: number; status?: string }>,
  ) {
    const db = database().db;
    const ownerId = unique("owner");
    const proxy = await createProxy(db, {
      ownerId,
      name: unique("proxy"),
      currentReplicas,
      actorId: ownerId,
    });
    await db.execute(sql`update proxies set created_at = ${createdAt}::timestamptz where id = ${proxy.id}`);
    for (const scale of scales) {
      const status = scale.status ?? "completed";
      await db.execute(sql`insert into proxy_scaling_events
          (proxy_id, event_type, previous_replicas, new_replicas, triggered_by, status, error, created_at, started_at, completed_at)
        values (${proxy.id}, ${scale.to > scale.from ? "scale_up" : "scale_down"}, ${scale.from}, ${scale.to}, 'auto',
          ${status}, ${status === "failed" ? "actuator down" : null}, ${scale.completedAt ?? createdAt}::timestamptz, ${scale.completedAt ?? createdAt}::timestamptz,
          ${scale.completedAt}::timestamptz)`);
    }
    return proxy;
  }

  it("integrates the counts completed scales left, from the month's start in the proxy's time zone", async () => {
    // Registered last month; ran 2 until 1 March 10:00 UTC, 5 until 12:00, then 3. Now 1 March 14:00 UTC.
    const proxy = await proxyWithScales("2026-02-10T00:00:00Z", 3, [
      { completedAt: "2026-02-20T00:00:00Z", from: 1, to: 2 },
      { completedAt: "2026-03-01T10:00:00Z", from: 2, to: 5 },
      { completedAt: "2026-03-01T12:00:00Z", from: 5, to: 3 },
      { completedAt: "2026-03-01T13:00:00Z", from: 3, to: 9, status: "failed" },
    ]);
    const now = at("2026-03-01T14:00:00Z");
    const utc = await loadReplicaHoursThisMonth(database().db, {
      proxies: [{ id: proxy.id, currentReplicas: 3, createdAt: at("2026-02-10T00:00:00Z"), timeZone: "UTC" }],
      now,
    });
    // 2 × 10 h + 5 × 2 h + 3 × 2 h.
    expect(utc.get(proxy.id)).toBeCloseTo(20 + 10 + 6, 9);
    // In Berlin March began at 2026-02-28T23:00Z: one more hour at 2 replicas.
    const berlin = await loadReplicaHoursThisMonth(database().db, {
      proxies: [
        {
          id: proxy.id,
          currentReplicas: 3,
          createdAt: at("2026-02-10T00:00:00Z"),
          timeZone: "Europe/Berlin",
        },
      ],
      now,
    });
    expect(berlin.get(proxy.id)).toBeCloseTo(2 + 20 + 10 + 6, 9);
  });

  it("counts from registration, at the current count when nothing scaled, and only for budgeted proxies in the loop's state", async () => {
    const proxy = await proxyWithScales("2026-03-01T08:00:00Z", 4, []);
    const now = at("2026-03-01T10:30:00Z");
    const hours = await loadReplicaHoursThisMonth(database().db, {
      proxies: [{ id: proxy.id, currentReplicas: 4, createdAt: at("2026-03-01T08:00:00Z") }],
      now,
    });
    expect(hours.get(proxy.id)).toBeCloseTo(4 * 2.5, 9);

    const unbudgeted = await loadObservedStates(database().db, {
      proxyIds: [proxy.id],
      now,
      historySeconds: 3600,
      reconcileIntervalMs: 10_000,
    });
    expect(unbudgeted.get(proxy.id)?.state.replicaHoursThisMonth).toBeUndefined();
    await upsertPolicy(database().db, {
      proxyId: proxy.id,
      policy: parsePolicy({ costPerReplicaHour: 1, monthlyBudget: 100 }),
      actorId: "test",
    });
    const budgeted = await loadObservedStates(database().db, {
      proxyIds: [proxy.id],
      now,
      historySeconds: 3600,
      reconcileIntervalMs: 10_000,
    });
    expect(budgeted.get(proxy.id)?.state.replicaHoursThisMonth).toBeCloseTo(10, 9);
  });
});
