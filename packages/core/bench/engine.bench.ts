/**
 * Decisions per second per strategy, on one core (one Node thread).
 * Realistic state: 10 per-instance samples, 20 recommendations over the last 300 s, 3 scale events.
 * Baseline, measured in the same run: JSON.parse of the same state (its serialized form), so the ratio
 * decisions/s ÷ parses/s compares across machines.
 * Run: pnpm --filter @proxyscale/core bench
 */
import { cpus } from "node:os";
import {
  computeLoadScore,
  DEFAULT_POLICY,
  decide,
  type ObservedState,
  parsePolicy,
  type ScalingPolicy,
} from "../src/index.ts";

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const VARIANTS = 64;

/** VARIANTS states with different loads, so no branch or value is constant across iterations. */
function states(): ObservedState[] {
  return Array.from({ length: VARIANTS }, (_, v) => {
    const load = 10 + ((v * 37) % 85);
    return {
      currentReplicas: 4 + (v % 5),
      unhealthyReplicas: v % 7 === 0 ? 1 : 0,
      samples: Array.from({ length: 10 }, (_, i) => ({
        instanceId: `replica-${i}`,
        at: NOW - 1000 * (1 + ((v + i) % 20)),
        cpuPercent: Math.min(100, load + ((i * 3) % 10)),
        memoryPercent: 40 + ((v + i) % 30),
        requestRate: 20 * load + i,
        avgLatencyMs: 15 + (i % 5),
        errorRatePercent: (v + i) % 3,
      })),
      recentEvents: [
        { at: NOW - 250_000, fromReplicas: 3, toReplicas: 4 },
        { at: NOW - 120_000 - v * 100, fromReplicas: 4, toReplicas: 5 },
        { at: NOW - 40_000 - v * 200, fromReplicas: 5, toReplicas: 4 + (v % 5) },
      ],
      recommendations: Array.from({ length: 20 }, (_, i) => ({
        at: NOW - 15_000 * (i + 1),
        replicas: 4 + ((v + i) % 5),
      })),
    };
  });
}

interface Result {
  name: string;
  opsPerSecond: number;
}

let sink = 0;

/** Median ops/s of `rounds` timed rounds of `iterations` calls, after a warm-up. */
function measure(name: string, iterations: number, body: (i: number) => number, rounds = 5): Result {
  for (let i = 0; i < iterations; i++) sink += body(i);
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += body(i);
    const elapsedNs = Number(process.hrtime.bigint() - start);
    rates.push((iterations / elapsedNs) * 1e9);
  }
  rates.sort((a, b) => a - b);
  return { name, opsPerSecond: rates[Math.floor(rates.length / 2)]! };
}

const inputs = states();
const serialized = inputs.map((s) => JSON.stringify(s));
const policies: Record<string, ScalingPolicy> = {
  threshold: DEFAULT_POLICY,
  "targetTracking (behavior, 300 s window)": parsePolicy({
    strategy: "targetTracking",
    targetCpuPercent: 60,
  }),
  step: parsePolicy({ strategy: "step" }),
};
const N = 300_000;

const baseline = measure("baseline: JSON.parse(state)", N / 4, (i) => {
  const parsed = JSON.parse(serialized[i % VARIANTS]!) as ObservedState;
  return parsed.currentReplicas;
});
const scoreLoop = measure("reference: computeLoadScore × 10 samples", N, (i) => {
  const s = inputs[i % VARIANTS]!.samples;
  let total = 0;
  for (const sample of s) total += computeLoadScore(sample, DEFAULT_POLICY);
  return total;
});
const results = Object.entries(policies).map(([name, policy]) =>
  measure(name, N, (i) => {
    const decision = decide(policy, inputs[i % VARIANTS]!, NOW + (i % 1000));
    return decision.desiredReplicas + decision.explanation.length;
  }),
);

const format = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(`Node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, one thread\n`);
console.log("| workload | ops/s | ns/op | ratio to JSON.parse baseline |");
console.log("| --- | ---: | ---: | ---: |");
for (const r of [baseline, scoreLoop, ...results]) {
  console.log(
    `| ${r.name} | ${format(r.opsPerSecond)} | ${(1e9 / r.opsPerSecond).toFixed(0)} | ${(r.opsPerSecond / baseline.opsPerSecond).toFixed(2)} |`,
  );
}
if (sink === Number.NEGATIVE_INFINITY) console.log(sink);
