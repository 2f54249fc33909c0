import { describe, expect, it } from "vitest";
import { fitHoltWinters, forecastCurve, forecastDemand } from "../src/forecast/index.ts";

/** Mulberry32: a seeded RNG so the noise, and so the test, is reproducible. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Known parameters: base 1000 req/s, daily amplitude 600, trend 50 req/s per day, uniform noise ±40. */
const demandAt = (minute: number) =>
  1000 + 600 * Math.sin((2 * Math.PI * minute) / 1440) + (50 * minute) / 1440;

function series(minutes: number, seed: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: minutes }, (_, minute) => demandAt(minute) + (random() - 0.5) * 80);
}

const mape = (pairs: Array<[number, number]>) =>
  (100 * pairs.reduce((sum, [actual, predicted]) => sum + Math.abs(actual - predicted) / actual, 0)) /
  pairs.length;

describe("Holt-Winters forecaster", () => {
  const history = series(7 * 1440, 42);
  const model = fitHoltWinters(history);
  // Forecast each 15-minute bucket of the next 6 hours against the noise-free truth at its midpoint.
  const horizons = Array.from({ length: 24 }, (_, i) => (i + 1) * 15);
  const truth = (h: number) => demandAt(history.length + h - 7.5);

  it("forecasts a seasonal series with trend within 5% MAPE over the next 6 hours", () => {
    expect(model).toBeDefined();
    if (!model) return;
    const error = mape(horizons.map((h) => [truth(h), forecastDemand(model, h)]));
    expect(error).toBeLessThan(5);
  });

  it("beats a naive last-value forecaster, which fails the same bound", () => {
    if (!model) throw new Error("no model");
    const last = history.at(-1) ?? 0;
    const naive = mape(horizons.map((h) => [truth(h), last]));
    const fitted = mape(horizons.map((h) => [truth(h), forecastDemand(model, h)]));
    expect(naive).toBeGreaterThan(5);
    expect(fitted).toBeLessThan(naive / 3);
  });

  it("reads as a continuous curve through the bucket forecasts at their centres, every minute within 3% of the truth", () => {
    if (!model) throw new Error("no model");
    for (const h of horizons) expect(forecastCurve(model, h - 7.5)).toBeCloseTo(forecastDemand(model, h), 9);
    // No jump at a bucket's edge: a minute's change stays near the series' own slope (≤ 2.7 req/s a minute).
    for (let minute = 0; minute < 360; minute++) {
      expect(Math.abs(forecastCurve(model, minute + 1) - forecastCurve(model, minute))).toBeLessThan(4);
      expect(Math.abs(forecastCurve(model, minute) / demandAt(history.length + minute) - 1)).toBeLessThan(
        0.03,
      );
    }
  });

  it("declines to fit under one day of history", () => {
    expect(fitHoltWinters(series(1439, 1))).toBeUndefined();
    expect(fitHoltWinters(series(1440, 1))).toBeDefined();
  });

  it("rejects a bucket size that does not divide a day", () => {
    expect(() => fitHoltWinters(history, { bucketMinutes: 7 })).toThrow(/bucketMinutes/);
  });
});
