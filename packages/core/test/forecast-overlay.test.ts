import { describe, expect, it } from "vitest";
import {
  demandForecastOverlay,
  demandForecastSchema,
  demandRefitDue,
  fitHoltWinters,
  forecastDemand,
  PREDICTIVE_REFIT_MINUTES,
} from "../src/index.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** 2026-03-02 00:00 UTC: the series below peaks at 06:00 and bottoms at 18:00 of each day. */
const DAY_START = Date.UTC(2026, 2, 2);
const rateAt = (at: number) => 1000 + 600 * Math.sin((2 * Math.PI * at) / (1440 * MINUTE));

/** `minutes` of per-minute fleet demand ending at `endsAt`. */
function history(minutes: number, endsAt: number) {
  const startsAt = endsAt - minutes * MINUTE;
  return { perMinute: Array.from({ length: minutes }, (_, i) => rateAt(startsAt + i * MINUTE)), endsAt };
}

describe("demandForecastOverlay", () => {
  const now = DAY_START + 3 * 1440 * MINUTE + 3 * HOUR;
  const demand = history(3 * 1440, now);
  const overlay = demandForecastOverlay(demand, { now, hoursBack: 24, hoursAhead: 6 });

  it("covers the past window with actuals and one-step forecasts, and the future with forecasts only", () => {
    expect(demandForecastSchema.parse(overlay)).toEqual(overlay);
    expect(overlay.unavailableReason).toBeNull();
    expect(overlay.points).toHaveLength((24 + 6) * 4);
    expect(overlay.points[0]!.at).toBe(now - 24 * HOUR);
    const past = overlay.points.filter((point) => point.at < now);
    const future = overlay.points.filter((point) => point.at >= now);
    expect(past).toHaveLength(96);
    expect(future).toHaveLength(24);
    expect(past.every((point) => point.actual !== null && point.forecast !== null)).toBe(true);
    expect(future.every((point) => point.actual === null && point.forecast !== null)).toBe(true);
  });

  it("follows the daily season: actuals are the bucket means and forecasts track them", () => {
    for (const point of overlay.points) {
      const truth = rateAt(point.at + 7.5 * MINUTE);
      if (point.actual !== null) expect(point.actual).toBeCloseTo(truth, -1);
      expect(Math.abs(point.forecast! - truth)).toBeLessThan(60);
    }
  });

  it("forecasts the future exactly as the predictive strategy's model does", () => {
    const model = fitHoltWinters(demand.perMinute)!;
    const future = overlay.points.filter((point) => point.at >= now);
    future.forEach((point, h) => {
      expect(point.forecast).toBe(forecastDemand(model, (h + 1) * 15));
    });
  });

  it("has actuals but no forecast, with the reason, under a day of history", () => {
    const short = demandForecastOverlay(history(600, now), { now, hoursBack: 24 });
    expect(short.unavailableReason).toBe("not enough history for a forecast (10 h of 24 h)");
    expect(short.historyMinutes).toBe(600);
    expect(short.points).toHaveLength(40);
    expect(short.points.every((point) => point.actual !== null && point.forecast === null)).toBe(true);
  });

  it("is empty, with the reason, without any history", () => {
    const none = demandForecastOverlay({ perMinute: [], endsAt: now }, { now });
    expect(none.points).toEqual([]);
    expect(none.unavailableReason).toBe("not enough history for a forecast (0 h of 24 h)");
  });
});

describe("demandRefitDue", () => {
  const fittedAt = DAY_START;
  it("refits when nothing is fitted, after PREDICTIVE_REFIT_MINUTES, and when the clock went back", () => {
    expect(demandRefitDue(undefined, fittedAt)).toBe(true);
    expect(demandRefitDue(fittedAt, fittedAt + PREDICTIVE_REFIT_MINUTES * MINUTE - 1)).toBe(false);
    expect(demandRefitDue(fittedAt, fittedAt + PREDICTIVE_REFIT_MINUTES * MINUTE)).toBe(true);
    expect(demandRefitDue(fittedAt, fittedAt - 1)).toBe(true);
  });
});
