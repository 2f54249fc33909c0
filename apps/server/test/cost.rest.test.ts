import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, registerProxy, token, unique } from "./support.ts";

const HOUR = 3_600_000;
const policyPath = (proxyId: string) => `/api/proxy/scaling/policies/${proxyId}`;
const fieldsOf = (body: { zodIssues?: Array<{ field: string; message: string }> }) =>
  (body.zodIssues ?? []).map((issue) => issue.field);

forEachDriver("cost and schedules", (suite) => {
  let operator: Client;
  let admin: Client;

  beforeAll(async () => {
    const sub = unique("cost-owner");
    operator = client(suite().url, await token({ role: "operator", sub }));
    admin = client(suite().url, await token({ role: "admin", sub: unique("cost-admin") }));
  });

  describe("GET /api/proxy/scaling/summary/:proxyId", () => {
    it("returns this month's spend so far and the month's projection at the current count", async () => {
      const proxyId = await registerProxy(operator);
      const stored = await admin.request("POST", policyPath(proxyId), {
        body: { minReplicas: 1, maxReplicas: 4, costPerReplicaHour: 2, monthlyBudget: 500, timeZone: "UTC" },
      });
      expect(stored.status, JSON.stringify(stored.body)).toBe(201);
      // Registered three hours ago with one replica and no scale since: it ran 1 replica from then (or the month's start).
      await suite().database.db.execute(
        sql`update proxies set created_at = now() - interval '3 hours' where id = ${proxyId}`,
      );
      const before = Date.now();
      const response = await operator.request("GET", `/api/proxy/scaling/summary/${proxyId}`);
      const after = Date.now();
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      const spend = response.body.spend;
      expect(spend).toMatchObject({ timeZone: "UTC", costPerReplicaHour: 2, monthlyBudget: 500 });
      const monthStart = Date.parse(spend.monthStart);
      const monthEnd = Date.parse(spend.monthEnd);
      const ranFrom = Math.max(monthStart, before - 3 * HOUR);
      expect(spend.replicaHours).toBeGreaterThan((before - ranFrom) / HOUR - 0.05);
      expect(spend.replicaHours).toBeLessThan((after - ranFrom) / HOUR + 0.05);
      expect(spend.spent).toBeCloseTo(spend.replicaHours * 2, 9);
      expect(spend.projected).toBeGreaterThan(spend.spent + (2 * (monthEnd - after)) / HOUR - 0.01);
      expect(spend.projected).toBeLessThan(spend.spent + (2 * (monthEnd - before)) / HOUR + 0.01);
    });

    it("has no spend for a policy without costPerReplicaHour", async () => {
      const proxyId = await registerProxy(operator);
      const response = await operator.request("GET", `/api/proxy/scaling/summary/${proxyId}`);
      expect(response.status).toBe(200);
      expect(response.body.spend).toBeNull();
    });
  });

  describe("policy validation", () => {
    it("answers 400 naming the cron field of a bad schedule and timeZone of an unknown zone", async () => {
      const proxyId = await registerProxy(operator);
      const badCron = await admin.request("POST", policyPath(proxyId), {
        body: { schedules: [{ name: "peak", cron: "at nine", durationMinutes: 60, minReplicas: 3 }] },
      });
      expect(badCron.status).toBe(400);
      expect(fieldsOf(badCron.body)).toEqual(["schedules.0.cron"]);
      const badZone = await admin.request("POST", policyPath(proxyId), {
        body: { timeZone: "Europe/Atlantis" },
      });
      expect(badZone.status).toBe(400);
      expect(badZone.body.zodIssues).toEqual([
        expect.objectContaining({
          field: "timeZone",
          message: "must be an IANA time zone such as Europe/Berlin",
        }),
      ]);
    });

    it("stores a schedule and reads it back", async () => {
      const proxyId = await registerProxy(operator);
      const schedules = [{ name: "business", cron: "0 9 * * 1-5", durationMinutes: 540, minReplicas: 3 }];
      const stored = await admin.request("POST", policyPath(proxyId), {
        body: { timeZone: "Europe/Berlin", schedules },
      });
      expect(stored.status, JSON.stringify(stored.body)).toBe(201);
      const read = await operator.request("GET", policyPath(proxyId));
      expect(read.body.policy).toMatchObject({ timeZone: "Europe/Berlin", schedules });
    });
  });
});
