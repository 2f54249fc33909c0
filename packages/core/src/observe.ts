import type { z } from "zod";
import { type MetricSample, metricSampleSchema } from "./metrics.ts";

/** Per-replica averages of the live samples; each custom metric is averaged over the samples that carry it. */
export const fleetMetricsSchema = metricSampleSchema.omit({ instanceId: true, at: true });
export type FleetMetrics = z.output<typeof fleetMetricsSchema>;

export interface FleetObservation {
  averages: FleetMetrics;
  /** Samples that went into the averages. */
  liveSamples: number;
  /** True when no per-instance sample was live and the latest fleet-average sample was used. */
  fleetAverage: boolean;
  /**
   * How many replicas the averages describe: every current replica for a fleet average, otherwise the
   * reporting instances (at most the current replicas).
   */
  describedReplicas: number;
}

/** Above this many samples, de-duplicate instances with a Map instead of a linear scan. */
const LINEAR_DEDUP_LIMIT = 32;

/**
 * Picks the live samples (age ≤ maxAgeSeconds at `now`), keeps the latest per instance and averages them.
 * Per-instance samples win over fleet-average samples (those without `instanceId`); the latest fleet-average
 * sample is used only when no instance reported. Returns null when nothing is live.
 */
export function observeFleet(
  samples: readonly MetricSample[],
  currentReplicas: number,
  maxAgeSeconds: number,
  now: number,
): FleetObservation | null {
  const oldest = now - maxAgeSeconds * 1000;
  let fleet: MetricSample | undefined;
  const instances: MetricSample[] = [];
  const byId = samples.length > LINEAR_DEDUP_LIMIT ? new Map<string, number>() : undefined;

  for (const sample of samples) {
    if (sample.at < oldest) continue;
    const id = sample.instanceId;
    if (id === undefined) {
      if (fleet === undefined || sample.at > fleet.at) fleet = sample;
      continue;
    }
    let index = -1;
    if (byId) {
      index = byId.get(id) ?? -1;
    } else {
      const last = id.length - 1;
      const lastChar = id.charCodeAt(last);
      for (let i = 0; i < instances.length; i++) {
        const other = instances[i]!.instanceId!;
        // Ids rarely share length and last character; checking those first skips most full comparisons.
        if (other.length === id.length && (last < 0 || other.charCodeAt(last) === lastChar) && other === id) {
          index = i;
          break;
        }
      }
    }
    if (index < 0) {
      byId?.set(id, instances.length);
      instances.push(sample);
    } else if (sample.at > instances[index]!.at) {
      instances[index] = sample;
    }
  }

  if (instances.length > 0) {
    return {
      averages: average(instances),
      liveSamples: instances.length,
      fleetAverage: false,
      describedReplicas: Math.min(instances.length, currentReplicas),
    };
  }
  if (fleet !== undefined) {
    return {
      averages: average([fleet]),
      liveSamples: 1,
      fleetAverage: true,
      describedReplicas: currentReplicas,
    };
  }
  return null;
}

function average(samples: readonly MetricSample[]): FleetMetrics {
  let cpu = 0;
  let memory = 0;
  let requests = 0;
  let latency = 0;
  let errors = 0;
  let customSums: Record<string, number> | undefined;
  let customCounts: Record<string, number> | undefined;
  for (const s of samples) {
    cpu += s.cpuPercent;
    memory += s.memoryPercent;
    requests += s.requestRate;
    latency += s.avgLatencyMs;
    errors += s.errorRatePercent;
    if (s.custom !== undefined) {
      customSums ??= {};
      customCounts ??= {};
      for (const name in s.custom) {
        customSums[name] = (customSums[name] ?? 0) + s.custom[name]!;
        customCounts[name] = (customCounts[name] ?? 0) + 1;
      }
    }
  }
  const n = samples.length;
  let custom: Record<string, number> | undefined;
  if (customSums !== undefined && customCounts !== undefined) {
    custom = {};
    for (const name in customSums) custom[name] = customSums[name]! / customCounts[name]!;
  }
  return {
    cpuPercent: cpu / n,
    memoryPercent: memory / n,
    requestRate: requests / n,
    avgLatencyMs: latency / n,
    errorRatePercent: errors / n,
    custom,
  };
}
