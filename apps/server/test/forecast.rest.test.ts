import { seededFleetRate, storeDailyRollups } from "@proxyscale/db/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, registerProxy, token, unique } from "./support.ts";

const MINUTE = 60_000;
const forecastPath = (proxyId: string, query = "") => `/api/proxy/scaling/forecast/${proxyId}${query}`;
interface ForecastPoint {
  at: number;
  actual: number | null;
  forecast: number | null;
}
/** The seeded rate at a 15-minute bucket's midpoint, which its mean approximates. */
const truthOf = (point: ForecastPoint) => seededFleetRate(point.at + 7.5 * MINUTE);

forEachDriver("demand forecast", (suite) => {
  let operator: Client;
  let stranger: Client;
  let admin: Client;

  beforeAll(async () => {
    operator = client(suite().url, await token({ role: "operator", sub: unique("forecast-owner") }));
    stranger = client(suite().url, await token({ role: "operator", sub: unique("forecast-stranger") }));
    admin = client(suite().url, await token({ role: "admin", sub: unique("forecast-admin") }));
  });

  describe("GET /api/proxy/scaling/forecast/:proxyId", () => {
    it("returns actual vs forecast over the past and a forecast that follows the daily season ahead", async () => {
      const proxyId = await registerProxy(operator);
      await storeDailyRollups(suite().database, proxyId, 2 * 1440);
      const before = Date.now();
      const response = await operator.request("GET", forecastPath(proxyId, "?hoursBack=24&hoursAhead=6"));
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      const body = response.body as {
        now: number;
        bucketMinutes: number;
        historyMinutes: number;
        unavailableReason: string | null;
        points: ForecastPoint[];
      };
      expect(body.unavailableReason).toBeNull();
      expect(body.historyMinutes).toBe(2 * 1440);
      expect(body.bucketMinutes).toBe(15);
      expect(body.now).toBeGreaterThanOrEqual(before);
      const past = body.points.filter((point) => point.actual !== null);
      const ahead = body.points.filter((point) => point.at >= body.now);
      expect(past.length).toBeGreaterThanOrEqual(95);
      expect(ahead.length).toBeGreaterThanOrEqual(23);
      expect(ahead.every((point) => point.actual === null && point.forecast !== null)).toBe(true);
      // Past actuals are the seeded rates; every forecast (one-step in the past, ahead in the future) tracks
      // the sinusoid, which swings 1200 req/s a day, within 100 req/s.
      for (const point of past) expect(Math.abs(point.actual! - truthOf(point))).toBeLessThan(5);
      for (const point of body.points) expect(Math.abs(point.forecast! - truthOf(point))).toBeLessThan(100);
      const forecasts = body.points.map((point) => point.forecast!);
      expect(Math.max(...forecasts) - Math.min(...forecasts)).toBeGreaterThan(800);
    });

    it("says why there is no forecast under a day of history, with the actuals it has", async () => {
      const proxyId = await registerProxy(operator);
      await storeDailyRollups(suite().database, proxyId, 120);
      const response = await operator.request("GET", forecastPath(proxyId));
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      expect(response.body.unavailableReason).toBe("not enough history for a forecast (2 h of 24 h)");
      expect(response.body.points).toHaveLength(8);
      expect(
        response.body.points.every(
          (point: ForecastPoint) => point.actual !== null && point.forecast === null,
        ),
      ).toBe(true);
    });

    it("answers 404 to another owner and 200 to an admin", async () => {
      const proxyId = await registerProxy(operator);
      const other = await stranger.request("GET", forecastPath(proxyId));
      expect(other.status).toBe(404);
      expect(JSON.stringify(other.body)).not.toContain("points");
      expect((await admin.request("GET", forecastPath(proxyId))).status).toBe(200);
    });

    it("answers 400 naming hoursBack, hoursAhead and proxyId for bad input", async () => {
      const proxyId = await registerProxy(operator);
      const tooFar = await operator.request("GET", forecastPath(proxyId, "?hoursBack=0&hoursAhead=25"));
      expect(tooFar.status).toBe(400);
      expect(tooFar.body.zodIssues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ field: "hoursBack", message: "must be at least 1" }),
          expect.objectContaining({ field: "hoursAhead", message: "must be at most 24" }),
        ]),
      );
      const badId = await operator.request("GET", forecastPath("not-a-uuid"));
      expect(badId.status).toBe(400);
      expect(badId.body.zodIssues).toEqual([
        expect.objectContaining({ field: "proxyId", message: "must be a proxy id (uuid)" }),
      ]);
    });
  });
});
