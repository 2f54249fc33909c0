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
      lastSampleAt: NOW - 1000,
      createdAt: NOW - 86_400_000,
      activeEvent: null,
      reconcileIntervalMs: 10_000,
    };
  });
}

interface Workload {
  name: string;
  iterations: number;
  body: (i: number) => number;
}

let sink = 0;

/** ops/s of one timed round. */
function round(workload: Workload): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < workload.iterations; i++) sink += workload.body(i);
  return (workload.iterations / Number(process.hrtime.bigint() - start)) * 1e9;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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
const N = 100_000;
const ROUNDS = 9;

const baseline: Workload = {
  name: "baseline: JSON.parse(state)",
  iterations: N / 10,
  body: (i) => (JSON.parse(serialized[i % VARIANTS]!) as ObservedState).currentReplicas,
};
const workloads: Workload[] = [
  {
    name: "reference: computeLoadScore × 10 samples",
    iterations: N,
    body: (i) => {
      let total = 0;
      for (const sample of inputs[i % VARIANTS]!.samples) total += computeLoadScore(sample, DEFAULT_POLICY);
      return total;
    },
  },
  ...Object.entries(policies).map(([name, policy]) => ({
    name,
    iterations: N,
    body: (i: number) => {
      const decision = decide(policy, inputs[i % VARIANTS]!, NOW + (i % 1000));
      return decision.desiredReplicas + decision.explanation.length;
    },
  })),
];

// Warm up, then interleave the rounds so that a busy machine slows baseline and workloads alike; the ratio of
// each round is taken against the baseline measured just before it.
for (const w of [baseline, ...workloads]) round(w);
const rates = new Map<Workload, number[]>([baseline, ...workloads].map((w) => [w, []]));
const ratios = new Map<Workload, number[]>(workloads.map((w) => [w, []]));
for (let r = 0; r < ROUNDS; r++) {
  const base = round(baseline);
  rates.get(baseline)!.push(base);
  for (const w of workloads) {
    const rate = round(w);
    rates.get(w)!.push(rate);
    ratios.get(w)!.push(rate / base);
  }
}

const format = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(`Node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, one thread\n`);
console.log("| workload | ops/s (median) | ns/op | ratio to JSON.parse baseline (median) |");
console.log("| --- | ---: | ---: | ---: |");
console.log(
  `| ${baseline.name} | ${format(median(rates.get(baseline)!))} | ${(1e9 / median(rates.get(baseline)!)).toFixed(0)} | 1.00 |`,
);
for (const w of workloads) {
  const rate = median(rates.get(w)!);
  console.log(
    `| ${w.name} | ${format(rate)} | ${(1e9 / rate).toFixed(0)} | ${median(ratios.get(w)!).toFixed(2)} |`,
  );
}
if (sink === Number.NEGATIVE_INFINITY) console.log(sink);
