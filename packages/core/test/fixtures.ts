import { DEFAULT_RECONCILE_SECONDS, type MetricSample, type ObservedState } from "../src/index.ts";

/** A fixed instant: tests pin time instead of reading a clock. */
export const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

export const seconds = (n: number) => n * 1000;

/** One replica's (or the fleet's) reading taken `ageSeconds` before NOW. */
export function sample(values: Partial<MetricSample> = {}, ageSeconds = 5): MetricSample {
  return {
    at: NOW - seconds(ageSeconds),
    cpuPercent: 50,
    memoryPercent: 50,
    requestRate: 500,
    avgLatencyMs: 20,
    errorRatePercent: 0,
    ...values,
  };
}

/** Per-instance samples with the given cpu readings (other metrics idle). */
export function cpuSamples(...cpu: number[]): MetricSample[] {
  return cpu.map((value, i) =>
    sample({ instanceId: `r${i}`, cpuPercent: value, memoryPercent: 0, requestRate: 0, errorRatePercent: 0 }),
  );
}

/** A fleet-average sample whose load score is exactly `score` (cpu = memory = request share = errors = score). */
export function scoreSample(score: number, ageSeconds = 5): MetricSample {
  return sample(
    { cpuPercent: score, memoryPercent: score, requestRate: score * 10, errorRatePercent: score },
    ageSeconds,
  );
}

/** A proxy registered an hour before NOW, reconciled every 10 s, with nothing in flight. */
export function state(overrides: Partial<ObservedState> = {}): ObservedState {
  const samples = overrides.samples ?? [];
  return {
    currentReplicas: 3,
    unhealthyReplicas: 0,
    samples,
    recentEvents: [],
    recommendations: [],
    lastSampleAt: samples.length === 0 ? null : Math.max(...samples.map((s) => s.at)),
    createdAt: NOW - seconds(3_600),
    activeEvent: null,
    reconcileIntervalMs: seconds(DEFAULT_RECONCILE_SECONDS),
    ...overrides,
  };
}
